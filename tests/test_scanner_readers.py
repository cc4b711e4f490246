"""The configured scanners running together: real pty pairs for serial guns, real unix sockets and files for
replay, fake evdev devices through HidReader's seams (real InputEvents) for HID guns. The station desk is a
plain function here; scans through the real desk are tested with the desk."""

from __future__ import annotations

import logging
import os
import queue
import select
import signal
import socket
import threading
import time

import pytest
from test_hid_reader import PipeDevice, keys, wait
from test_serial_reader import Pty

from appliance.app import App
from appliance.config import Config, DatabaseConfig, ScannerConfig, SiteConfig
from appliance.scanning import readers
from appliance.scanning.feedback import Feedback
from appliance.scanning.hid_reader import DeviceInfo
from appliance.scanning.readers import Scanners, ScannerStatus

HONEYWELL = DeviceInfo("/dev/input/event5", ("/dev/input/by-id/usb-Honeywell_1900-event-kbd",), 0x0C2E, 0x0B61,
                       "Honeywell Imaging & Mobility 1900")
SYMBOL = DeviceInfo("/dev/input/event7", (), 0x05E0, 0x1200, "Symbol Bar Code Scanner")


class Desk:
    """Stands in for StationDesk.handle: records (scan, gs_substitutes); a scan of BAD is an error, of WARN a
    warning, of BOOM an exception."""

    def __init__(self):
        self.seen: queue.Queue = queue.Queue()

    def __call__(self, scan, gs_substitutes):
        self.seen.put((scan, gs_substitutes))
        if scan.raw == "BOOM":
            raise RuntimeError("the desk fell over")
        level = {"BAD": "error", "WARN": "warning"}.get(scan.raw, "ok")
        return Feedback(scan.station, level, f"{level}: {scan.raw}")

    def next(self):
        return self.seen.get(timeout=5)


@pytest.fixture
def desk():
    return Desk()


@pytest.fixture
def running():
    """Start Scanners and make sure they are stopped whatever the test does."""
    started = []

    def start(configs, handle, **kw):
        scanners = Scanners(configs, handle, **kw)
        scanners.start()
        started.append(scanners)
        return scanners
    yield start
    for scanners in started:
        scanners.stop()


def read_reply(master: int, size: int, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size:
        ready, _, _ = select.select([master], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"no reply from the reader; got {got!r}"
        got += os.read(master, size - len(got))
    return got


def send_lines(path, *payloads: bytes) -> None:
    for payload in payloads:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))
            client.sendall(payload)


def status_of(scanners, station) -> ScannerStatus:
    return next(s for s in scanners.status() if s.station == station)


# Serial --------------------------------------------------------------------------------------------------------

def test_a_serial_scan_reaches_the_desk_with_its_gs_and_the_reply_comes_back(tmp_path, desk, running):
    gun = Pty(tmp_path / "usb-Datalogic-if00")
    config = ScannerConfig(kind="serial", station="packing", port=str(gun.link), terminator="CR", gs="~",
                           ok_reply="07", error_reply="1B 42")
    scanners = running([config], desk)
    wait(lambda: status_of(scanners, "packing").connected)
    gun.send(b"]C10109501101530003~10AB-1\r")
    scan, gs = desk.next()
    assert (scan.station, scan.device, scan.raw, gs) == ("packing", f"serial:{gun.link}",
                                                          "]C10109501101530003~10AB-1", ("~",))
    assert read_reply(gun.master, 1) == b"\x07"
    gun.send(b"WARN\rBAD\r")          # no warning reply configured: only the error's bytes come back
    assert [desk.next()[0].raw for _ in range(2)] == ["WARN", "BAD"]
    assert read_reply(gun.master, 2) == b"\x1bB"
    assert status_of(scanners, "packing") == ScannerStatus("serial", "packing", f"serial:{gun.link}", True, 3, 0)


def test_a_reply_to_a_gun_that_is_not_connected_is_dropped(tmp_path):
    from appliance.scanning.serial_reader import SerialReader
    reader = SerialReader(str(tmp_path / "absent"), "packing", lambda scan: None)
    assert reader.reply(b"\x07") is False


# Replay --------------------------------------------------------------------------------------------------------

def test_a_replay_socket_scan_reaches_the_desk(tmp_path, desk, running):
    path = tmp_path / "scan.sock"
    scanners = running([ScannerConfig(kind="replay", station="demo", path=path, socket=True)], desk)
    wait(lambda: status_of(scanners, "demo").connected)
    send_lines(path, b"4006381333931\n]C1010950110153000317141231<GS>10AB\n")
    first, second = desk.next(), desk.next()
    assert (first[0].station, first[0].raw, first[1]) == ("demo", "4006381333931", ("<GS>",))
    assert second[0].raw == "]C1010950110153000317141231\x1d10AB"
    assert scanners.stop() is True
    assert not path.exists()


def test_a_replay_file_is_delivered_once_at_start(tmp_path, desk, running):
    path = tmp_path / "morning.scans"
    path.write_text("# delivery\nCMD-RECEIVE\n4006381333931\n", encoding="utf-8")
    scanners = running([ScannerConfig(kind="replay", station="dock-1", path=path, gs="")], desk)
    assert [desk.next()[0].raw for _ in range(2)] == ["CMD-RECEIVE", "4006381333931"]
    wait(lambda: status_of(scanners, "dock-1").connected)
    time.sleep(0.2)
    assert desk.seen.empty()
    assert status_of(scanners, "dock-1").scans == 2


def test_a_missing_replay_file_is_logged_and_the_others_go_on(tmp_path, desk, running, caplog):
    sock = tmp_path / "scan.sock"
    scanners = running([ScannerConfig(kind="replay", station="demo", path=tmp_path / "nope.scans"),
                        ScannerConfig(kind="replay", station="dock-1", path=sock, socket=True)], desk)
    wait(lambda: status_of(scanners, "dock-1").connected)
    send_lines(sock, b"X1\n")
    assert desk.next()[0].raw == "X1"
    assert not status_of(scanners, "demo").connected
    assert "scanner demo: cannot replay" in caplog.text


# The worker ----------------------------------------------------------------------------------------------------

def test_a_handler_exception_is_logged_with_the_scan_and_the_worker_goes_on(tmp_path, desk, running, caplog):
    gun = Pty(tmp_path / "usb-gun")
    path = tmp_path / "scan.sock"
    scanners = running([ScannerConfig(kind="replay", station="demo", path=path, socket=True),
                        ScannerConfig(kind="serial", station="packing", port=str(gun.link), error_reply="15")],
                       desk)
    wait(lambda: status_of(scanners, "demo").connected and status_of(scanners, "packing").connected)
    with caplog.at_level(logging.ERROR, logger="appliance.scanning.readers"):
        send_lines(path, b"BOOM\nafter<GS>boom\n")
        assert [desk.next()[0].raw for _ in range(2)] == ["BOOM", "after\x1dboom"]
        gun.send(b"BOOM\r")
        assert desk.next()[0].raw == "BOOM"
        assert read_reply(gun.master, 1) == b"\x15"   # a failed scan is an error to the person at the gun
        gun.send(b"OK-1\r")
        assert desk.next()[0].raw == "OK-1"
    assert "scan BOOM at demo (replay:" in caplog.text and "the desk fell over" in caplog.text
    assert (status_of(scanners, "demo").scans, status_of(scanners, "demo").failed) == (2, 1)
    assert status_of(scanners, "packing").failed == 1


def test_stop_joins_every_thread_within_its_bound(tmp_path, desk):
    gun = Pty(tmp_path / "usb-gun")
    scanners = Scanners([ScannerConfig(kind="serial", station="packing", port=str(gun.link)),
                         ScannerConfig(kind="replay", station="demo", path=tmp_path / "s.sock", socket=True),
                         ScannerConfig(kind="hid", station="dock-1", device="*Honeywell*", layout="us",
                                       terminator="enter")],
                        desk, list_devices=lambda: [])
    before = set(threading.enumerate())
    scanners.start()
    wait(lambda: all(s.connected for s in scanners.status() if s.kind != "hid"))
    started = set(threading.enumerate()) - before
    assert {t.name for t in started} == {"scan-worker", "scanner-serial-packing", "scanner-replay-demo",
                                         "scanner-hid"}
    began = time.monotonic()
    assert scanners.stop(timeout_s=3) is True
    assert time.monotonic() - began < 3
    assert not any(t.is_alive() for t in started)


def test_scans_delivered_before_stop_are_still_handled(tmp_path, running):
    handled, release = [], threading.Event()

    def slow(scan, gs):
        release.wait(5)
        handled.append(scan.raw)
        return Feedback(scan.station, "ok", "")
    path = tmp_path / "s.sock"
    scanners = running([ScannerConfig(kind="replay", station="demo", path=path, socket=True)], slow)
    wait(lambda: status_of(scanners, "demo").connected)
    send_lines(path, b"A\nB\nC\n")
    wait(lambda: status_of(scanners, "demo").scans == 3)
    threading.Timer(0.2, release.set).start()
    assert scanners.stop(timeout_s=5) is True
    assert handled == ["A", "B", "C"]


# HID -----------------------------------------------------------------------------------------------------------

def hid_config(station, device, **kw):
    return ScannerConfig(kind="hid", station=station, device=device, **{"layout": "us", "terminator": "enter",
                                                                         **kw})


def test_hid_guns_each_reach_the_desk_with_their_own_station_layout_and_gs(monkeypatch, desk, running):
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.05)
    devices = {}

    def open_device(path):
        devices[path] = PipeDevice()
        return devices[path]
    scanners = running([hid_config("dock-1", "0c2e:0b61", gs="~"), hid_config("packing", "*Symbol*", layout="de")],
                       desk, list_devices=lambda: [HONEYWELL, SYMBOL], open_device=open_device)
    wait(lambda: len(devices) == 2)
    devices[HONEYWELL.path].send(keys("ABC"))
    scan, gs = desk.next()
    assert (scan.station, scan.raw, scan.device, gs) == ("dock-1", "abc", "hid:0c2e:0b61", ("~",))
    devices[SYMBOL.path].send(keys("XY"))       # a German-layout gun: the Y key types z
    scan, gs = desk.next()
    assert (scan.station, scan.raw, gs) == ("packing", "xz", ("<GS>",))
    assert [(s.station, s.connected, s.scans) for s in scanners.status()] == [("dock-1", True, 1),
                                                                             ("packing", True, 1)]


def test_hid_guns_without_usable_input_devices_wait_quietly(monkeypatch, desk, running, caplog):
    """No /dev/input (or no evdev): logged once, retried, and a gun that appears later is still grabbed."""
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.02)
    usable = threading.Event()
    calls = []

    def list_devices():
        calls.append(1)
        if not usable.is_set():
            raise FileNotFoundError(2, "No such file or directory", "/dev/input")
        return [HONEYWELL]
    devices = {}
    scanners = running([hid_config("dock-1", "0c2e:0b61")], desk, list_devices=list_devices,
                       open_device=lambda path: devices.setdefault(path, PipeDevice()))
    wait(lambda: len(calls) > 5)
    assert not status_of(scanners, "dock-1").connected
    assert caplog.text.count("input devices cannot be listed") == 1
    usable.set()
    wait(lambda: status_of(scanners, "dock-1").connected)
    devices[HONEYWELL.path].send(keys("Q1"))
    assert desk.next()[0].raw == "q1"


def test_a_reader_that_crashes_is_restarted(monkeypatch, desk, running, caplog):
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.02)
    monkeypatch.setattr(readers, "RESTART_FIRST_S", 0.05)
    crashes = []

    def list_devices():
        if not crashes:
            crashes.append(1)
            raise RuntimeError("evdev bug")
        return [HONEYWELL]
    devices = {}
    scanners = running([hid_config("dock-1", "0c2e:0b61")], desk, list_devices=list_devices,
                       open_device=lambda path: devices.setdefault(path, PipeDevice()))
    wait(lambda: status_of(scanners, "dock-1").connected)
    assert "scanner reader scanner-hid failed; restarting" in caplog.text
    devices[HONEYWELL.path].send(keys("Z"))
    assert desk.next()[0].raw == "z"


# The agent -----------------------------------------------------------------------------------------------------

def test_the_agent_runs_the_scanners_and_stops_them(tmp_path, ledger, db_path, monkeypatch):
    from appliance import agent

    class FakeDesk:
        made = []

        def __init__(self, db, ledger, *, idle_timeout_s, config=None):
            self.args = (db, ledger, idle_timeout_s)
            self.seen = queue.Queue()
            FakeDesk.made.append(self)

        def handle(self, scan, gs_substitutes):
            self.seen.put(scan)
            return Feedback(scan.station, "ok", "")
    monkeypatch.setattr(agent, "StationDesk", FakeDesk)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    sock = tmp_path / "scan.sock"
    config = Config(site=SiteConfig(id="BER"), database=DatabaseConfig(path=db_path),
                    scanners=(ScannerConfig(kind="replay", station="dock-1", path=sock, socket=True),))
    app = App(config, ledger.db)
    app.ledger = ledger
    stop = threading.Event()
    seen = queue.Queue()

    def scan_then_stop():
        try:
            wait(lambda: sock.exists())
            send_lines(sock, b"BER-A-01\n")
            seen.put(FakeDesk.made[0].seen.get(timeout=5).raw)
        finally:
            stop.set()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    helper = threading.Thread(target=scan_then_stop, daemon=True)
    helper.start()
    try:
        assert agent.run_agent(app, stop) == 0   # in the main thread: it installs signal handlers
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    helper.join(5)
    assert seen.get(timeout=1) == "BER-A-01"
    assert FakeDesk.made[0].args == (ledger.db, ledger, 300.0)
    assert not sock.exists()   # the scanners were stopped with the agent
