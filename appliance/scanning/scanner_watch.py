"""Barcode guns gone: a configured HID or serial scanner that is not connected for longer than
`[alerts] scanner_gone_s` raises 'scanner_gone', resolved as soon as it is connected again.

The readers already wait for a missing gun and take it back when it returns (HID rescans /dev/input, serial
reopens its port); this tells someone that a gun is missing. A gun that was never connected counts from the
watch's first pass (the agent's start): one nobody plugged in is as useless as one pulled later. Replay
scanners are demo and test feeds, not hardware that can go missing, and are not watched.

The subject is `<device>@<station>` (`serial:/dev/ttyUSB0@packing`): a station may have several guns, and a
second gun added to a station must not rename the first one's alert.

Every pass reads the scanners' status in memory and the open alerts from the database, and writes only when an
alert is raised or resolved (an SD card lives longer on fewer writes). Open alerts are read rather than
remembered, so a write that failed is made again by the next pass, and an alert left open by an earlier run
of the agent is resolved once its gun is back (or the gun is no longer configured).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.notify.alerts import Alert, Recipients, open_subjects, raise_alert, resolve_alert
from appliance.scanning.readers import Scanners, ScannerStatus

logger = logging.getLogger(__name__)

KIND = "scanner_gone"
WATCHED_KINDS = ("hid", "serial")
POLL_S = 5.0
STOP_TIMEOUT_S = 5.0


def subject_of(status: ScannerStatus) -> str:
    return f"{status.device}@{status.station}"


@dataclass(frozen=True)
class Changes:
    """What one pass wrote: the subjects raised and resolved (both empty on most passes)."""
    raised: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()


@dataclass
class _Seen:
    last_connected: datetime | None = None   # the last pass that found it connected
    down_since: datetime | None = None       # the first pass that found it not connected


class ScannerWatch:
    """Build with the app and the running `Scanners`, then start() and, at the end, stop(); or drive check(now).

    `scanners` None (no [[scanner]] entries) still resolves the alerts of guns taken out of the config.
    `grace_s` defaults to `[alerts] scanner_gone_s`."""

    def __init__(self, app, scanners: Scanners | None, *, poll_s: float = POLL_S, grace_s: float | None = None) -> None:
        self.app = app
        self.scanners = scanners
        self.poll_s = poll_s
        self.grace = timedelta(seconds=app.config.alerts.scanner_gone_s if grace_s is None else grace_s)
        self._recipients = Recipients(app.config)
        self._zone = ZoneInfo(app.config.site.timezone)
        self._seen: dict[str, _Seen] = {}
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("scanner watch already started")
        self._thread = threading.Thread(target=self._run, name="scanner-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the thread; False (and a warning) when it is still running after `timeout_s`."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout_s)
        if thread.is_alive():
            logger.warning("scanner watch still running %.1fs after stop", timeout_s)
            return False
        return True

    def _run(self) -> None:
        try:
            while True:
                try:
                    self.check(clock.utcnow())
                except Exception:   # noqa: BLE001 - a bug in one pass must not end the watch for good
                    logger.exception("scanner watch pass failed; next pass in %.0fs", self.poll_s)
                if self._stop.wait(self.poll_s):
                    return
        finally:
            self.app.db.close()   # this thread's connection

    # -- one pass --------------------------------------------------------------------------------------

    def check(self, now: datetime) -> Changes:
        """One pass at `now` (aware UTC); call the first one at start, a gun never connected is missing from then
        on. A failed write is logged and leaves the alerts as they were: the next pass tries again."""
        gone: dict[str, Alert] = {}
        back: set[str] = set()
        watched: set[str] = set()
        for status in self.scanners.status() if self.scanners is not None else ():
            if status.kind not in WATCHED_KINDS:
                continue
            subject = subject_of(status)
            watched.add(subject)
            seen = self._seen.setdefault(subject, _Seen())
            if status.connected:
                seen.last_connected, seen.down_since = now, None
                back.add(subject)
                continue
            if seen.down_since is None:
                seen.down_since = now   # for a gun never connected, the first pass: the agent's start
            # Within the grace a gun is neither gone nor back: an alert an earlier run left open stays open, rather
            # than being resolved now and raised (and sent) again once the grace is over.
            if now - seen.down_since > self.grace:
                gone[subject] = self._alert(status, seen)
        try:
            changes = self._record(now, gone, back, watched)
        except Exception as exc:   # noqa: BLE001 - database busy, disk full...: the next pass tries again
            if not self._failing:   # once, not every few seconds for as long as it lasts
                logger.warning("cannot record scanner alerts (%s); trying again every %.0fs", exc, self.poll_s)
            self._failing = True
            return Changes()
        if self._failing and (changes.raised or changes.resolved):
            logger.info("scanner alerts recorded again")
        self._failing = False
        return changes

    def _record(self, now: datetime, gone: dict[str, Alert], back: set[str], watched: set[str]) -> Changes:
        opened = open_subjects(self.app.db.connection(), KIND)   # a read: nothing is written on a quiet pass
        to_raise = [subject for subject in sorted(gone) if subject not in opened]
        # Back, or no longer configured: nothing would ever resolve the alert of a gun taken out of the config.
        to_resolve = sorted((opened & back) | (opened - watched))
        if not to_raise and not to_resolve:
            return Changes()
        now_ts = clock.to_ts(now)
        raised, resolved = [], []
        with self.app.ledger.write(device="agent") as ops:
            for subject in to_raise:
                if raise_alert(ops.conn, gone[subject], now_ts, self._recipients)[1]:
                    raised.append(subject)
            for subject in to_resolve:
                if resolve_alert(ops.conn, KIND, subject, now_ts, self._recipients) is not None:
                    resolved.append(subject)
        for subject in raised:
            logger.warning("%s", gone[subject].message)
        for subject in resolved:
            logger.info("scanner %s is %s", subject, "connected again" if subject in back else "no longer configured")
        return Changes(tuple(raised), tuple(resolved))

    def _alert(self, status: ScannerStatus, seen: _Seen) -> Alert:
        since = self._local(seen.down_since)
        if seen.last_connected is None:
            message = (f"scanner {status.device} at station {status.station} not connected: never seen since "
                       f"the agent started at {since}")
        else:
            message = f"scanner {status.device} at station {status.station} disconnected since {since}"
        detail: dict[str, Any] = {
            "station": status.station, "device": status.device, "kind": status.kind,
            "last_connected": clock.to_ts(seen.last_connected) if seen.last_connected else None,
            "since": clock.to_ts(seen.down_since), "grace_s": self.grace.total_seconds()}
        return Alert(KIND, subject_of(status), message, site=self.app.config.site.id, detail=detail)

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%Y-%m-%d %H:%M:%S %Z")
