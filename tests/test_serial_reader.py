"""Serial guns through real pty pairs: scans, partial reads, unplug (the pty closes) and replug under the same
stable name, as /dev/serial/by-id gives it."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

from appliance.scanning.serial_reader import SerialReader, terminator_bytes


class Pty:
    """A gun: writes go to the master side; the reader opens `link`, a symlink to the slave side."""

    def __init__(self, link):
        self.link = link
        self.plug()

    def plug(self):
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        os.close(slave)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(self.slave_name, self.link)

    def send(self, data: bytes):
        os.write(self.master, data)

    def unplug(self):
        os.close(self.master)
        os.unlink(self.link)


@pytest.fixture
def gun(tmp_path):
    return Pty(tmp_path / "usb-Honeywell_1902-if00")


def start(gun, **kw):
    scans = queue.Queue()
    reader = SerialReader(str(gun.link), "dock-1", scans.put, reconnect_s=0.05, **kw)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    assert reader.connected.wait(5)
    return reader, scans, stop, thread


def next_raw(scans):
    return scans.get(timeout=5).raw


def test_scans_split_at_the_terminator_across_partial_reads(gun):
    reader, scans, stop, thread = start(gun)
    try:
        gun.send(b"]C101095011015300031714123110AB-123\x1d21XY")
        time.sleep(0.05)                      # the rest arrives in a later read
        gun.send(b"Z\r4006381333931\rBER-A-01\r")
        assert next_raw(scans) == "]C101095011015300031714123110AB-123\x1d21XYZ"
        assert next_raw(scans) == "4006381333931"
        scan = scans.get(timeout=5)
        assert (scan.raw, scan.station, scan.device) == ("BER-A-01", "dock-1", f"serial:{gun.link}")
    finally:
        stop.set()
        thread.join(5)


def test_unplug_and_replug_under_the_same_name(gun):
    reader, scans, stop, thread = start(gun)
    try:
        gun.send(b"111\r")
        assert next_raw(scans) == "111"
        gun.send(b"half-a-sc")
        time.sleep(0.05)
        gun.unplug()
        deadline = time.monotonic() + 5
        while reader.connected.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gun.plug()
        assert reader.connected.wait(5)
        gun.send(b"222\r")
        assert next_raw(scans) == "222"        # the half scan from before the unplug is gone
        assert reader.reconnects == 1
    finally:
        stop.set()
        thread.join(5)


def test_prefix_suffix_and_crlf(gun):
    reader, scans, stop, thread = start(gun, terminator="CRLF", strip_prefix="\x02", strip_suffix="\x03")
    try:
        gun.send(b"\x02ABC-1\x03\r\n\r\n\x02DEF\x03\r\n")
        assert [next_raw(scans), next_raw(scans)] == ["ABC-1", "DEF"]
    finally:
        stop.set()
        thread.join(5)


def test_a_port_that_is_not_there_yet_is_waited_for(tmp_path):
    link = tmp_path / "later"
    scans = queue.Queue()
    reader = SerialReader(str(link), "packing", scans.put, reconnect_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        assert not reader.connected.is_set()
        gun = Pty(link)
        assert reader.connected.wait(5)
        gun.send(b"X1\r")
        assert next_raw(scans) == "X1"
    finally:
        stop.set()
        thread.join(5)


def test_a_runaway_stream_without_terminator_is_dropped_not_hoarded():
    got = []
    reader = SerialReader("/nonexistent", "s", got.append)
    reader.feed(b"x" * 5000)
    reader.feed(b"OK\r")
    assert [s.raw for s in got] == ["OK"]


@pytest.mark.parametrize("name, expected", [("CR", b"\r"), ("crlf", b"\r\n"), ("0x04", b"\x04"), ("TAB", b"\t")])
def test_terminators(name, expected):
    assert terminator_bytes(name) == expected


@pytest.mark.parametrize("name", ["0xZZ", "semicolon", "0x123"])
def test_bad_terminators_are_named(name):
    with pytest.raises(ValueError, match=name):
        terminator_bytes(name)
