"""The HID reader's device handling: choosing guns by path, vendor:product or name; reading several at once;
unplug and replug. This machine has no /dev/input, so devices are pipes delivering real evdev.InputEvent
objects to the real decoder (its layouts are tested in test_hid_decoder.py)."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest
from evdev import InputEvent, ecodes

from appliance.scanning.hid_decoder import HidDecoder
from appliance.scanning.hid_reader import DeviceInfo, Gun, HidReader, check_spec, matches

HONEYWELL = DeviceInfo("/dev/input/event5", ("/dev/input/by-id/usb-Honeywell_1900-event-kbd",), 0x0C2E, 0x0B61,
                       "Honeywell Imaging & Mobility 1900")
KEYBOARD = DeviceInfo("/dev/input/event2", (), 0x046D, 0xC31C, "Logitech USB Keyboard")


@pytest.mark.parametrize("spec, device, expected", [
    ("/dev/input/by-id/usb-Honeywell_1900-event-kbd", HONEYWELL, True),
    ("/dev/input/event5", HONEYWELL, True),
    ("0c2e:0b61", HONEYWELL, True),
    ("0C2E:0B61", HONEYWELL, True),
    ("0c2e:0b61", KEYBOARD, False),
    ("*Honeywell*", HONEYWELL, True),
    ("*Honeywell*", KEYBOARD, False),
    ("/dev/input/event2", HONEYWELL, False),
])
def test_matching(spec, device, expected):
    assert matches(spec, device) is expected


@pytest.mark.parametrize("spec, message", [("0c2e:zz61", "two 4-digit hex"), ("12:34:56", "two 4-digit hex"),
                                           ("  ", "empty device")])
def test_bad_specs_are_explained(spec, message):
    with pytest.raises(ValueError, match=message):
        check_spec(spec)


class PipeDevice:
    """Stands in for an evdev.InputDevice: a real fd for select(), real InputEvents from read()."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.fd = self.r
        self.pending: queue.Queue = queue.Queue()
        self.gone = False

    def send(self, events):
        for event in events:
            self.pending.put(event)
        os.write(self.w, b"x")

    def read(self):
        if self.gone:
            raise OSError(19, "No such device")
        try:
            os.read(self.r, 4096)
        except BlockingIOError:
            pass
        while not self.pending.empty():
            yield self.pending.get()

    def unplug(self):
        self.gone = True
        os.write(self.w, b"x")

    def close(self):
        os.close(self.r)
        os.close(self.w)


def keys(text, t=1000.0):
    out = []
    for i, ch in enumerate(text + "\n"):
        code = ecodes.KEY_ENTER if ch == "\n" else ecodes.ecodes[f"KEY_{ch}"]
        out.append(InputEvent(int(t), int((t % 1) * 1e6) + i * 1000, ecodes.EV_KEY, code, 1))
        out.append(InputEvent(int(t), int((t % 1) * 1e6) + i * 1000 + 500, ecodes.EV_KEY, code, 0))
    return out


def test_two_guns_each_on_its_station_and_replug(monkeypatch):
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.05)
    present = {HONEYWELL.path: HONEYWELL, KEYBOARD.path: KEYBOARD}
    other = DeviceInfo("/dev/input/event7", (), 0x05E0, 0x1200, "Symbol Bar Code Scanner")
    devices = {}

    def open_device(path):
        devices[path] = PipeDevice()
        return devices[path]
    scans = queue.Queue()
    guns = [Gun("0c2e:0b61", "dock-1", HidDecoder("us")), Gun("*Symbol*", "packing", HidDecoder("de"))]
    reader = HidReader(guns, scans.put, list_devices=lambda: list(present.values()), open_device=open_device)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(lambda: HONEYWELL.path in devices)
        assert KEYBOARD.path not in devices              # the office keyboard is never grabbed
        devices[HONEYWELL.path].send(keys("ABC"))
        scan = scans.get(timeout=5)
        assert (scan.station, scan.raw, scan.device) == ("dock-1", "abc", "hid:0c2e:0b61")
        present[other.path] = other                      # plugged in after start
        wait(lambda: other.path in devices)
        devices[other.path].send(keys("XY"))                # a German-layout gun: the Y key types z
        scan = scans.get(timeout=5)
        assert (scan.station, scan.raw) == ("packing", "xz")
        devices[HONEYWELL.path].unplug()                 # unplugged: let go, look again
        del present[HONEYWELL.path]
        wait(lambda: guns[0].device is None)
        present[HONEYWELL.path] = HONEYWELL
        wait(lambda: guns[0].device is not None and reader.connected == 3)
        guns[0].device.send(keys("Z"))
        assert scans.get(timeout=5).raw == "z"
    finally:
        stop.set()
        thread.join(5)


def wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_scan_broken_off_mid_code_is_discarded_once_the_gun_is_quiet(monkeypatch):
    monkeypatch.setattr("appliance.scanning.hid_reader.RESCAN_S", 0.05)
    devices = {}

    def open_device(path):
        devices[path] = PipeDevice()
        return devices[path]
    scans = queue.Queue()
    decoder = HidDecoder("us", timeout_s=0.1)
    reader = HidReader([Gun("0c2e:0b61", "dock-1", decoder)], scans.put, list_devices=lambda: [HONEYWELL],
                       open_device=open_device)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(lambda: HONEYWELL.path in devices)
        devices[HONEYWELL.path].send(keys("ABC", t=time.time())[:4])   # A and B, then the gun goes quiet
        wait(lambda: decoder.counts["discarded"] == 1)                 # without another key arriving
        assert decoder.discarded[-1].partial == "ab" and "no key for" in decoder.discarded[-1].reason
        devices[HONEYWELL.path].send(keys("XY", t=time.time()))
        assert scans.get(timeout=5).raw == "xy"                        # the next scan is whole
    finally:
        stop.set()
        thread.join(5)
