"""The configured scanners, running: one thread per reader (one for all HID guns, which share a select()), and
ONE worker thread that hands every scan to the station desk in arrival order.

One worker, not one per gun: the desk's workflows are per station but the ledger has one write path, and scans
handled in the order they arrived are what the people at the guns expect. Readers only move bytes into the
queue, so a slow transaction never makes a gun drop keys or bytes. After each scan the worker sends a serial
gun the reply configured for the feedback level (a beep or an LED command).

A reader thread that dies is restarted with a growing delay (device readers restart within a budget); a
handler that raises is logged with the scan and the worker goes on with the next one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from appliance.config import ScannerConfig
from appliance.scanning.feedback import Feedback
from appliance.scanning.hid_decoder import HidDecoder
from appliance.scanning.hid_reader import RESCAN_S, DeviceInfo, Gun, HidReader, system_devices
from appliance.scanning.replay_reader import SocketReplay, replay_file
from appliance.scanning.scan import Scan
from appliance.scanning.serial_reader import SerialReader

logger = logging.getLogger(__name__)

# What the worker calls for each scan: StationDesk.handle, or a plain function in tests.
Handler = Callable[[Scan, tuple[str, ...]], Feedback]

RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ScannerStatus:
    """One configured scanner as the UI shows it."""

    kind: str
    station: str
    device: str        # hid:<spec>, serial:<port>, replay:<path>
    connected: bool    # hid: device grabbed; serial: port open; replay: socket listening / file read
    scans: int         # scans read from it since start
    failed: int        # of those, scans the handler raised on


class _Source:
    """One configured scanner: its config, how to tell whether it is connected, how to reply to it, counts.
    The counts are written by one reader thread (scans) and the worker (failed) each, read by status()."""

    def __init__(self, config: ScannerConfig, device: str, connected: Callable[[], bool],
                 reply: Callable[[bytes], bool] | None = None) -> None:
        self.config = config
        self.device = device
        self.connected = connected
        self.reply = reply
        self.scans = 0
        self.failed = 0


class Scanners:
    """Build with the configured scanners and the handler, then start() and, at the end, stop().

    `list_devices` and `open_device` are HidReader's seams, for tests without /dev/input.
    """

    def __init__(self, configs: Iterable[ScannerConfig], handle: Handler, *,
                 list_devices: Callable[[], list[DeviceInfo]] = system_devices,
                 open_device: Callable[[str], object] | None = None) -> None:
        self._handle = handle
        self._queue: queue.Queue[tuple[_Source, Scan] | None] = queue.Queue()
        self._stop = threading.Event()
        self._sources: list[_Source] = []
        self._runners: list[tuple[str, Callable[[threading.Event], None]]] = []
        self._readers: list[threading.Thread] = []
        self._worker: threading.Thread | None = None
        guns: list[Gun] = []
        hid_sources: dict[str, _Source] = {}
        for config in configs:
            if config.kind == "hid":
                gun = Gun(config.device, config.station,
                          HidDecoder(config.layout, terminators=(config.terminator,),
                                     timeout_s=config.timeout_ms / 1000))
                source = _Source(config, f"hid:{config.device}", lambda gun=gun: gun.device is not None)
                guns.append(gun)
                hid_sources[source.device] = source   # HidReader names a scan's gun by this device string
            elif config.kind == "serial":
                source = _Source(config, f"serial:{config.port}", lambda: False)
                reader = SerialReader(config.port, config.station, partial(self._deliver, source),
                                      baud=config.baud, parity=config.parity, terminator=config.terminator,
                                      strip_prefix=config.strip_prefix, strip_suffix=config.strip_suffix)
                source.connected, source.reply = reader.connected.is_set, reader.reply
                self._runners.append((f"scanner-serial-{config.station}", reader.run))
            elif config.socket:
                source = _Source(config, f"replay:{config.path}", lambda: False)
                replay = SocketReplay(config.path, config.station, partial(self._deliver, source))
                source.connected = replay.ready.is_set
                self._runners.append((f"scanner-replay-{config.station}", replay.run))
            else:
                source = _Source(config, f"replay:{config.path}", lambda: False)
                self._runners.append((f"scanner-replay-{config.station}", partial(self._replay_file, source)))
            self._sources.append(source)
        if guns:
            hid = HidReader(guns, partial(self._deliver_hid, hid_sources), list_devices=_quiet(list_devices),
                            open_device=open_device)
            self._runners.append(("scanner-hid", hid.run))

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("scanners already started")
        for source in self._sources:
            logger.info("scanner %s: %s", source.config.station, source.device)
        self._worker = threading.Thread(target=self._work, name="scan-worker", daemon=True)
        self._worker.start()
        for name, run in self._runners:
            thread = threading.Thread(target=self._supervise, args=(name, run), name=name, daemon=True)
            thread.start()
            self._readers.append(thread)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the readers, let the worker finish the scans they already delivered, join everything within
        `timeout_s` in all. False (and a warning naming them) when threads are still running."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._readers:
            thread.join(max(deadline - time.monotonic(), 0))
        if self._worker is not None:
            self._queue.put(None)   # after the readers' last scans: those are handled, not dropped
            self._worker.join(max(deadline - time.monotonic(), 0))
        alive = [t.name for t in [*self._readers, self._worker] if t is not None and t.is_alive()]
        if alive:
            logger.warning("scanner threads still running %.1fs after stop: %s", timeout_s, ", ".join(alive))
        return not alive

    def status(self) -> list[ScannerStatus]:
        return [ScannerStatus(s.config.kind, s.config.station, s.device, bool(s.connected()), s.scans, s.failed)
                for s in self._sources]

    # -- reader side -----------------------------------------------------------------------------------

    def _deliver(self, source: _Source, scan: Scan) -> None:
        source.scans += 1
        self._queue.put((source, scan))

    def _deliver_hid(self, sources: dict[str, _Source], scan: Scan) -> None:
        source = sources.get(scan.device)
        if source is None:   # cannot happen while HidReader names scans hid:<spec>; say so if it changes
            logger.error("scan %s from unknown HID device %s dropped", scan.visible(), scan.device)
            return
        self._deliver(source, scan)

    def _replay_file(self, source: _Source, stop: threading.Event) -> None:
        """A replay file is delivered once, at start; a missing file is logged, not retried."""
        try:
            count = replay_file(source.config.path, source.config.station, partial(self._deliver, source))
        except (OSError, UnicodeDecodeError) as exc:
            logger.error("scanner %s: cannot replay %s: %s", source.config.station, source.config.path, exc)
            return
        source.connected = lambda: True
        logger.info("scanner %s: replayed %d scans from %s", source.config.station, count, source.config.path)

    def _supervise(self, name: str, run: Callable[[threading.Event], None]) -> None:
        delay = RESTART_FIRST_S
        while not self._stop.is_set():
            try:
                run(self._stop)
                return   # stopped, or a file replay that is done
            except Exception:
                logger.exception("scanner reader %s failed; restarting in %.0fs", name, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)

    # -- worker side -----------------------------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self._dispatch(*item)

    def _dispatch(self, source: _Source, scan: Scan) -> None:
        try:
            feedback = self._handle(scan, source.config.gs_substitutes)
        except Exception:
            source.failed += 1
            logger.exception("scan %s at %s (%s) failed", scan.visible(), scan.station, scan.device)
            level = "error"   # the person at the gun must not take silence for success
        else:
            logger.info("scan %s at %s: %s %s", scan.visible(), scan.station, feedback.level, feedback.message)
            level = feedback.level
        data = source.config.reply(level)
        if data and source.reply is not None:
            source.reply(data)


def _quiet(list_devices: Callable[[], list[DeviceInfo]]) -> Callable[[], list[DeviceInfo]]:
    """HidReader lists devices every RESCAN_S; where that fails (no evdev, no /dev/input, no permission) say so
    once rather than every second, and keep trying: a gun plugged in later is still found."""
    failing = False

    def listing() -> list[DeviceInfo]:
        nonlocal failing
        try:
            found = list_devices()
        except (ImportError, OSError) as exc:
            if not failing:
                logger.warning("HID scanners are configured but input devices cannot be listed (%s); "
                               "retrying every %.0fs", exc, RESCAN_S)
            failing = True
            return []
        if failing:
            logger.info("input devices can be listed again")
            failing = False
        return found
    return listing
