"""The 'scanner gone' alert: real Scanners over real pty pairs (serial guns unplugged by closing the pty) and
HidReader's seams with real evdev InputEvents (HID guns), a real ledger file, passes driven at explicit times."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest
from purchasing_tools import make_app
from test_hid_reader import PipeDevice, keys, wait
from test_serial_reader import Pty

from appliance import clock
from appliance.config import ConfigError, ScannerConfig, load_config
from appliance.notify.alerts import Alert, raise_alert
from appliance.scanning.feedback import Feedback
from appliance.scanning.hid_reader import DeviceInfo
from appliance.scanning.readers import Scanners
from appliance.scanning.scanner_watch import KIND, Changes, ScannerWatch

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)   # 10:00 in Berlin, the site's time zone
HONEYWELL = DeviceInfo("/dev/input/event5", ("/dev/input/by-id/usb-Honeywell_1900-event-kbd",), 0x0C2E, 0x0B61,
                       "Honeywell Imaging & Mobility 1900")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def app(tmp_path):
    # A webhook makes every raise and resolve queue a notification: counting them shows "told once".
    app = make_app(tmp_path, webhook=[{"name": "chat", "url": "http://127.0.0.1:9/hook"}])
    yield app
    app.close()


class Desk:
    def __init__(self):
        self.seen: queue.Queue = queue.Queue()

    def __call__(self, scan, gs_substitutes):
        self.seen.put(scan.raw)
        return Feedback(scan.station, "ok", "")


@pytest.fixture
def running():
    started = []

    def start(configs, handle=None, **kw):
        scanners = Scanners(configs, handle or Desk(), **kw)
        scanners.start()
        started.append(scanners)
        return scanners
    yield start
    for scanners in started:
        scanners.stop()


def connected(scanners, station, kind):
    return next(s.connected for s in scanners.status() if (s.station, s.kind) == (station, kind))


def alerts(app):
    rows = app.db.execute_sql("SELECT subject, severity, site_id, message, detail, first_seen, last_seen, seen_count,"
                              " resolved_at FROM alert WHERE kind = ? ORDER BY id", (KIND,)).fetchall()
    names = ("subject", "severity", "site", "message", "detail", "first_seen", "last_seen", "seen_count", "resolved")
    return [dict(zip(names, row[:4] + (json.loads(row[4]),) + row[5:])) for row in rows]


def open_subjects(app):
    return {a["subject"] for a in alerts(app) if a["resolved"] is None}


def notifications(app):
    return [tuple(row) for row in app.db.execute_sql(
        "SELECT a.subject, d.event FROM alert_delivery d JOIN alert a ON a.id = d.alert_id WHERE a.kind = ?"
        " ORDER BY d.id", (KIND,))]


def rows_written(app):
    # check() runs in this thread, on this thread's connection: every row it inserts or updates counts here.
    return app.db.connection().total_changes


# Unplugged guns ------------------------------------------------------------------------------------------------

def test_an_unplugged_serial_gun_is_alerted_once_after_the_grace_and_resolved_when_it_is_back(tmp_path, app,
                                                                                              running):
    gun = Pty(tmp_path / "usb-Datalogic_Gryphon-if00")
    scanners = running([ScannerConfig(kind="serial", station="packing", port=str(gun.link))])
    watch = ScannerWatch(app, scanners)            # the grace from [alerts] scanner_gone_s: 30 s by default
    subject = f"serial:{gun.link}@packing"
    wait(lambda: connected(scanners, "packing", "serial"))
    assert watch.check(at(0)) == Changes()
    gun.unplug()
    wait(lambda: not connected(scanners, "packing", "serial"))
    assert watch.check(at(5)) == Changes()         # the first pass that sees it gone
    assert watch.check(at(35)) == Changes()        # gone for exactly the grace: not longer
    assert alerts(app) == []
    assert watch.check(at(36)) == Changes(raised=(subject,))
    [alert] = alerts(app)
    assert alert == {
        "subject": subject, "severity": "warning", "site": "BER",
        "message": f"scanner serial:{gun.link} at station packing disconnected since 2026-03-02 10:00:05 CET",
        "detail": {"station": "packing", "device": f"serial:{gun.link}", "kind": "serial",
                   "last_connected": "2026-03-02T09:00:00.000000Z", "since": "2026-03-02T09:00:05.000000Z",
                   "grace_s": 30.0},
        "first_seen": clock.to_ts(at(36)), "last_seen": clock.to_ts(at(36)), "seen_count": 1, "resolved": None}

    written = rows_written(app)
    for seconds in (41, 60, 600, 3600):             # still gone: nothing new, nothing written
        assert watch.check(at(seconds)) == Changes()
    assert rows_written(app) == written
    assert alerts(app)[0]["last_seen"] == clock.to_ts(at(36))

    gun.plug()
    wait(lambda: connected(scanners, "packing", "serial"))
    assert watch.check(at(3605)) == Changes(resolved=(subject,))
    assert alerts(app)[0]["resolved"] == clock.to_ts(at(3605))
    written = rows_written(app)
    assert watch.check(at(3610)) == Changes()
    assert rows_written(app) == written
    assert notifications(app) == [(subject, "raised"), (subject, "resolved")]


def test_an_unplugged_hid_gun_is_alerted_after_the_grace_and_resolved_when_plugged_in_again(monkeypatch, tmp_path,
                                                                                              app, running):
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.05)
    present = [HONEYWELL]
    devices = {}

    def open_device(path):
        devices[path] = PipeDevice()
        return devices[path]
    desk = Desk()
    scanners = running([ScannerConfig(kind="hid", station="dock-1", device="0c2e:0b61", layout="us",
                                      terminator="enter")], desk,
                       list_devices=lambda: list(present), open_device=open_device)
    watch = ScannerWatch(app, scanners, grace_s=10)
    subject = "hid:0c2e:0b61@dock-1"
    wait(lambda: connected(scanners, "dock-1", "hid"))
    devices[HONEYWELL.path].send(keys("A1"))
    assert desk.seen.get(timeout=5) == "a1"
    assert watch.check(at(0)) == Changes()
    devices[HONEYWELL.path].unplug()
    present.clear()
    wait(lambda: not connected(scanners, "dock-1", "hid"))
    assert watch.check(at(1)) == Changes()
    assert watch.check(at(11)) == Changes()
    assert watch.check(at(12)) == Changes(raised=(subject,))
    assert alerts(app)[0]["message"] == ("scanner hid:0c2e:0b61 at station dock-1 disconnected since "
                                         "2026-03-02 10:00:01 CET")
    assert watch.check(at(20)) == Changes()

    present.append(HONEYWELL)
    wait(lambda: connected(scanners, "dock-1", "hid"))
    devices[HONEYWELL.path].send(keys("Z9"))       # the gun grabbed again scans again
    assert desk.seen.get(timeout=5) == "z9"
    assert watch.check(at(25)) == Changes(resolved=(subject,))
    assert notifications(app) == [(subject, "raised"), (subject, "resolved")]


# Guns missing since start --------------------------------------------------------------------------------------

def test_guns_never_connected_since_start_are_alerted_after_the_grace_and_replay_feeds_are_not(tmp_path, running):
    app = make_app(tmp_path, alerts={"scanner_gone_s": 20})
    try:
        port = tmp_path / "usb-Datalogic_Gryphon-if00"   # not plugged in yet
        scanners = running([ScannerConfig(kind="serial", station="dock-1", port=str(port)),
                            ScannerConfig(kind="hid", station="dock-1", device="*Symbol*", layout="us",
                                          terminator="enter"),
                            ScannerConfig(kind="replay", station="demo", path=tmp_path / "missing.scans")],
                           list_devices=lambda: [])
        watch = ScannerWatch(app, scanners)
        serial, hid = f"serial:{port}@dock-1", "hid:*Symbol*@dock-1"   # one station, two guns, two subjects
        assert watch.check(at(0)) == Changes()       # the start
        assert watch.check(at(20)) == Changes()
        assert watch.check(at(21)) == Changes(raised=(hid, serial))
        gone = {a["subject"]: a for a in alerts(app)}
        assert set(gone) == {hid, serial}              # the replay file that is missing raises nothing
        assert gone[serial]["message"] == (f"scanner serial:{port} at station dock-1 not connected: never seen "
                                           "since the agent started at 2026-03-02 10:00:00 CET")
        assert gone[hid]["detail"] == {"station": "dock-1", "device": "hid:*Symbol*", "kind": "hid",
                                       "last_connected": None, "since": "2026-03-02T09:00:00.000000Z",
                                       "grace_s": 20.0}
        assert watch.check(at(40)) == Changes()

        Pty(port)                                      # plugged in late: the reader opens it
        wait(lambda: connected(scanners, "dock-1", "serial"))
        assert watch.check(at(45)) == Changes(resolved=(serial,))
        assert open_subjects(app) == {hid}
    finally:
        app.close()


def test_alerts_left_open_by_an_earlier_run_are_kept_resolved_or_not_raised_twice(tmp_path, app, running):
    port = tmp_path / "usb-Datalogic_Gryphon-if00"     # still missing after the restart
    serial = f"serial:{port}@packing"
    with app.ledger.write() as ops:
        for subject in (serial, "hid:0c2e:0b61@dock-9"):   # dock-9's gun was taken out of the config since
            raise_alert(ops.conn, Alert(KIND, subject, "from before the restart"), clock.to_ts(at(-3600)), None)
    scanners = running([ScannerConfig(kind="serial", station="packing", port=str(port))])
    watch = ScannerWatch(app, scanners)
    assert watch.check(at(0)) == Changes(resolved=("hid:0c2e:0b61@dock-9",))
    assert watch.check(at(10)) == Changes()          # within the grace the open one is not resolved...
    written = rows_written(app)
    assert watch.check(at(31)) == Changes()          # ...and after it not raised again
    assert rows_written(app) == written
    assert open_subjects(app) == {serial} and len(alerts(app)) == 2
    Pty(port)
    wait(lambda: connected(scanners, "packing", "serial"))
    assert watch.check(at(40)) == Changes(resolved=(serial,))
    assert open_subjects(app) == set()


def test_without_any_scanner_the_alerts_of_guns_no_longer_configured_are_resolved(app):
    with app.ledger.write() as ops:
        raise_alert(ops.conn, Alert(KIND, "hid:0c2e:0b61@dock-1", "from before"), clock.to_ts(at(-60)), None)
    watch = ScannerWatch(app, None)
    assert watch.check(at(0)) == Changes(resolved=("hid:0c2e:0b61@dock-1",))
    assert watch.check(at(60)) == Changes()


# Failures and the thread ---------------------------------------------------------------------------------------

def test_a_failed_write_is_logged_once_and_made_by_a_later_pass(tmp_path, app, running, caplog):
    port = tmp_path / "usb-absent"
    scanners = running([ScannerConfig(kind="serial", station="packing", port=str(port))])
    watch = ScannerWatch(app, scanners)
    app.db.execute_sql("PRAGMA busy_timeout = 100")  # this thread's connection, the one check() writes with
    blocker = sqlite3.connect(app.config.database.path)
    blocker.execute("BEGIN IMMEDIATE")                # another process holds the write lock
    try:
        assert watch.check(at(0)) == Changes()
        with caplog.at_level(logging.INFO, logger="appliance.scanning.scanner_watch"):
            assert watch.check(at(31)) == Changes()
            assert watch.check(at(36)) == Changes()
            assert caplog.text.count("cannot record scanner alerts (database is locked)") == 1
            assert alerts(app) == []
            blocker.rollback()
            assert watch.check(at(41)) == Changes(raised=(f"serial:{port}@packing",))
            assert "scanner alerts recorded again" in caplog.text
    finally:
        blocker.close()
    assert alerts(app)[0]["first_seen"] == clock.to_ts(at(41))


def test_the_thread_raises_and_resolves_on_its_own_and_stops(tmp_path, app, running):
    gun = Pty(tmp_path / "usb-Datalogic_Gryphon-if00")
    scanners = running([ScannerConfig(kind="serial", station="packing", port=str(gun.link))])
    subject = f"serial:{gun.link}@packing"
    wait(lambda: connected(scanners, "packing", "serial"))
    watch = ScannerWatch(app, scanners, poll_s=0.05, grace_s=0.2)
    watch.start()
    try:
        gun.unplug()
        wait(lambda: open_subjects(app) == {subject}, timeout=10)
        gun.plug()
        wait(lambda: alerts(app)[0]["resolved"] is not None, timeout=10)
    finally:
        assert watch.stop() is True
    assert "scanner-watch" not in {t.name for t in threading.enumerate()}
    assert notifications(app) == [(subject, "raised"), (subject, "resolved")]


# Config --------------------------------------------------------------------------------------------------------

MINIMAL = '[site]\nid = "BER"\n\n[database]\npath = "data/appliance.db"\n'


def load(tmp_path, alerts_section: str):
    path = tmp_path / "appliance.toml"
    path.write_text(MINIMAL + alerts_section, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize("line, expected", [("", 30.0), ("scanner_gone_s = 45", 45.0),
                                            ("scanner_gone_s = 2.5", 2.5), ("scanner_gone_s = 86400", 86400.0)])
def test_scanner_gone_s_defaults_to_30_seconds_and_takes_any_positive_number(tmp_path, line, expected):
    config = load(tmp_path, f"[alerts]\n{line}\n")
    assert config.alerts.scanner_gone_s == expected
    assert type(config.alerts.scanner_gone_s) is float


@pytest.mark.parametrize("value, reason", [
    ("0", "must be more than 0 and at most 86400"),
    ("-5", "must be more than 0 and at most 86400"),
    ("86401", "must be more than 0 and at most 86400"),
    ("inf", "must be more than 0 and at most 86400"),
    ("nan", "must be more than 0 and at most 86400"),
    ('"30"', "must be a number, not a string"),
    ("true", "must be a number, not a boolean"),
])
def test_a_bad_scanner_gone_s_is_refused_naming_the_key_value_and_reason(tmp_path, value, reason):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[alerts]\nscanner_gone_s = {value}\n")
    [error] = caught.value.errors
    assert f"alerts.scanner_gone_s = " in error and reason in error, error
