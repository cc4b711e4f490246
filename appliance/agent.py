"""`appliance agent`: the long-running process of a box (DESIGN.md §1). It hosts multi-site sync, the expiry of
reservations, the barcode scanners ([[scanner]] entries, handled by the station desk) and the zeroconf
advertisement of the web UI (one per box, so not in the web workers), the reorder trigger's watcher (within
tens of milliseconds of any committed movement) and the scheduled jobs (appliance/jobs: reservation expiry,
reorder sweep, alert delivery, backups, the nightly check...); the print spooler joins it.

Sync is on when the config has an [mqtt] section. The agent then first refuses local writes until it knows
whether its peers hold movements of this site that this box lacks (a restored backup), pulls them back,
and only then lets the dock write again (Engine.begin_recovery).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

from appliance.app import App
from appliance.discovery import Advertiser
from appliance.jobs.scheduler import JobScheduler
from appliance.printing.spooler import Spooler
from appliance.purchasing.reorder import ReorderWatcher
from appliance.scanning.readers import Scanners
from appliance.scanning.scanner_watch import ScannerWatch
from appliance.scanning.station import StationDesk
from appliance.sync.engine import Engine
from appliance.sync.link import Link
from appliance.sync.messages import Status

logger = logging.getLogger(__name__)


def notify_systemd(state: str) -> None:
    """sd_notify(3) without a dependency: one datagram to $NOTIFY_SOCKET when systemd set it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]   # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def start_scanners(app: App) -> Scanners | None:
    """The configured scanners, running, each scan handled by the station desk; None when there are none.
    Guns that are missing (no /dev/input, unplugged, a port not there yet) are waited for by their readers,
    so a box whose scanners are absent still runs sync."""
    if not app.config.scanners:
        return None
    desk = StationDesk(app.db, app.ledger, idle_timeout_s=app.config.scanning.idle_timeout_s, config=app.config)
    scanners = Scanners(app.config.scanners, desk.handle)
    scanners.start()
    return scanners


def run_agent(app: App, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    site = app.config.site.id
    mqtt = app.config.mqtt
    ledger = app.ledger
    if mqtt is None:
        notify_systemd("READY=1")
        # A box whose sync was turned off must not stay locked by an unfinished recovery.
        app.db.execute_sql("UPDATE site SET recovering = 0 WHERE id = ?", (site,))
        logger.info("agent for %s started; sync is off (no [mqtt] section)", site)
        advertiser = Advertiser(app.config)   # nothing unless [web] advertise
        advertiser.start()
        scheduler = JobScheduler(app)   # built before anything runs: only start() touches the database
        watcher = ReorderWatcher(app)
        scanners = start_scanners(app)
        scanner_watch = ScannerWatch(app, scanners)   # also without scanners: resolves alerts of guns taken out
        spooler = Spooler(app)
        try:
            scheduler.start()
            watcher.start()
            scanner_watch.start()
            spooler.start()
            stop.wait()
        finally:
            spooler.stop()
            scanner_watch.stop()   # before the scanners: readers shutting down are not guns gone
            watcher.stop()
            scheduler.stop()   # it waits for a running job, which may still need the database
            if scanners is not None:
                scanners.stop()
            advertiser.stop()
        return 0
    link = Link(site, mqtt, mqtt.password)
    engine = Engine(ledger, mqtt, link)
    engine.begin_recovery()
    # Ready only now: units that write (the web app) are ordered after the agent, so that a box restored
    # from a backup cannot take a write before the agent has locked them out (systemd Type=notify).
    notify_systemd("READY=1")
    link.start()
    logger.info("agent for %s started; sync with %s:%d", site, mqtt.host, mqtt.port)
    scanners = scanner_watch = None
    spooler = Spooler(app)
    advertiser = Advertiser(app.config)
    scheduler = JobScheduler(app)
    watcher = ReorderWatcher(app)
    try:
        # Only after begin_recovery: on a restored box a scan's write must meet the lock, not slip in before it.
        # The same holds for the jobs; while recovery lasts their writes are refused and recorded as skipped.
        scanners = start_scanners(app)
        scanner_watch = ScannerWatch(app, scanners)
        scanner_watch.start()
        advertiser.start()
        scheduler.start()
        watcher.start()
        spooler.start()   # after begin_recovery, like the jobs: its writes meet the recovery lock
        while not stop.is_set():
            engine.turn()
    finally:
        spooler.stop()
        if scanner_watch is not None:
            scanner_watch.stop()
        watcher.stop()
        scheduler.stop()
        if scanners is not None:
            scanners.stop()   # before sync: no scan may start a write while sync shuts down
        advertiser.stop()
        link.stop(Status(site, "offline"))
        if engine.recovering_until is not None:
            logger.warning("stopped before recovery finished: writes stay refused until the agent runs again")
        logger.info("agent stopped")
    return 0
