"""USB HID barcode guns through evdev: find the configured devices, grab them (so scans never type into the
console or a browser), turn their key events into scans with the layout each gun emulates, and follow
unplug, replug and devices that appear after start, without restarting the agent (DESIGN.md §4).

A gun is chosen by a `/dev/input/by-id/...` path, by `vendor:product` (hex, as `lsusb` prints it), or by a
name pattern (fnmatch, e.g. `*Honeywell*`). Decoding is hid_decoder.HidDecoder (pure); this module only opens
devices and moves events.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.scanning.scan import Scan

logger = logging.getLogger(__name__)

RESCAN_S = 1.0


@dataclass(frozen=True)
class DeviceInfo:
    path: str            # /dev/input/eventN
    links: tuple[str, ...]   # /dev/input/by-id/... names pointing at it
    vendor: int
    product: int
    name: str


def matches(spec: str, device: DeviceInfo) -> bool:
    """Whether a configured scanner `spec` selects `device`."""
    if spec.startswith("/dev/"):
        return spec == device.path or spec in device.links
    if ":" in spec and all(len(part) == 4 for part in spec.split(":")):
        try:
            vendor, product = (int(part, 16) for part in spec.split(":"))
        except ValueError:
            return False
        return (vendor, product) == (device.vendor, device.product)
    return fnmatch.fnmatchcase(device.name, spec)


def check_spec(spec: str) -> str:
    """A config value as it will be matched; raises ValueError naming the spec and the three forms."""
    if spec.startswith("/dev/"):
        return spec
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) == 2 and all(len(p) == 4 for p in parts):
            try:
                [int(p, 16) for p in parts]
                return spec.lower()
            except ValueError:
                pass
        raise ValueError(f"scanner {spec!r}: vendor:product is two 4-digit hex numbers, e.g. 0c2e:0b61")
    if not spec.strip():
        raise ValueError("scanner: empty device; give a /dev/input/by-id path, vendor:product or a name pattern")
    return spec


def system_devices(by_id_dir: str = "/dev/input/by-id") -> list[DeviceInfo]:
    """The input devices present now (evdev), with their by-id links."""
    import evdev
    links: dict[str, list[str]] = {}
    if os.path.isdir(by_id_dir):
        for entry in os.listdir(by_id_dir):
            full = os.path.join(by_id_dir, entry)
            links.setdefault(os.path.realpath(full), []).append(full)
    found = []
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue   # vanished between listing and opening
        with device:
            found.append(DeviceInfo(path, tuple(links.get(path, ())), device.info.vendor, device.info.product,
                                    device.name))
    return found


@dataclass
class Gun:
    """One configured scanner: which device it selects, its station and the decoder for its layout."""

    spec: str
    station: str
    decoder: object   # hid_decoder.HidDecoder: feed(event) -> str | None
    device: object | None = None   # the open evdev.InputDevice
    path: str | None = None


class HidReader:
    """Runs in an agent thread: opens and grabs the configured guns, reads them with select(), and rescans
    for missing ones every RESCAN_S. `list_devices` and `open_device` are seams for tests."""

    def __init__(self, guns: Iterable[Gun], on_scan: Callable[[Scan], None], *,
                 list_devices: Callable[[], list[DeviceInfo]] = system_devices,
                 open_device: Callable[[str], object] | None = None) -> None:
        self.guns = list(guns)
        self.on_scan = on_scan
        self.list_devices = list_devices
        self.open_device = open_device or _open_grabbed
        self.connected = 0

    def run(self, stop: threading.Event) -> None:
        next_scan = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_scan and any(g.device is None for g in self.guns):
                self._attach_missing()
                next_scan = now + RESCAN_S
            open_guns = {g.device.fd: g for g in self.guns if g.device is not None}
            if not open_guns:
                stop.wait(min(RESCAN_S, max(next_scan - time.monotonic(), 0.05)))
                continue
            ready, _, _ = select.select(list(open_guns), [], [], 0.2)
            for fd in ready:
                self._drain(open_guns[fd])
            # A scan broken off mid-code is dropped (and logged) once its gun has been quiet for the timeout,
            # not only when the next trigger pull comes. evdev timestamps are on the wall clock.
            now = time.time()
            for gun in open_guns.values():
                expire = getattr(gun.decoder, "expire", None)
                if expire is not None:
                    expire(now)

    def _attach_missing(self) -> None:
        try:
            present = self.list_devices()
        except OSError as exc:
            logger.warning("cannot list input devices: %s", exc)
            return
        taken = {g.path for g in self.guns if g.device is not None}
        for gun in self.guns:
            if gun.device is not None:
                continue
            for info in present:
                if info.path not in taken and matches(gun.spec, info):
                    try:
                        gun.device = self.open_device(info.path)
                    except OSError as exc:
                        logger.warning("scanner %s (%s): cannot open %s: %s", gun.station, gun.spec, info.path, exc)
                        break
                    gun.path = info.path
                    taken.add(info.path)
                    self.connected += 1
                    logger.info("scanner %s: %s (%s) grabbed", gun.station, info.name, info.path)
                    break

    def _drain(self, gun: Gun) -> None:
        try:
            events = list(gun.device.read())
        except BlockingIOError:
            return
        except OSError as exc:
            # Unplugged (ENODEV): let go and look for it again.
            logger.warning("scanner %s at %s lost: %s", gun.station, gun.path, exc)
            try:
                gun.device.close()
            except OSError:
                pass
            gun.device = gun.path = None
            # Keys held at the unplug are never released: start the replugged gun from a clean state.
            reset = getattr(gun.decoder, "reset", None)
            if reset is not None:
                reset("scanner unplugged", time.time())
            return
        for event in events:
            text = gun.decoder.feed(event)
            if text is not None:
                self.on_scan(Scan(gun.station, f"hid:{gun.spec}", text, event.timestamp()))


def _open_grabbed(path: str):
    import evdev
    device = evdev.InputDevice(path)
    try:
        device.grab()   # exclusive: the scan must not also reach the console or a focused browser
    except OSError:
        device.close()
        raise
    return device
