#!/usr/bin/env python3
"""Scan-to-commit benchmark (issue 4): how long from a gun's bytes or key events to the committed movement.

Prints ONE JSON object on stdout; progress goes to stderr.

Both paths run the agent's real pipeline (appliance/scanning/readers.py `Scanners`: reader thread → queue →
one worker → StationDesk.handle → one BEGIN IMMEDIATE transaction with the movement, the scan log row and the
station session), on a fresh signed ledger with `synchronous=FULL`, a station in receive mode at BER-A-01:
- serial: a real pty pair; the clock starts just before the scan's bytes (a GS1-128 code with lot and expiry,
  then CR) are written to the master side, and stops when the desk's transaction has committed;
- HID: real `evdev.InputEvent` key events (an EAN-13 typed on a US layout, then Enter) handed to the real
  HidReader through its device seam (a pipe woken by select(), as tests/test_hid_reader.py does: this machine
  has no /dev/input); the clock starts before the events are handed over.
Scans go one at a time (the next after the previous one committed), as from one gun. The baseline in the same
run is the ledger alone: `Ledger.post(Move("receive", ...))` of the same items on its own fresh database, so
the overhead of the scan path (decoding, interpretation, resolution, session, scan log) is visible.

Options: --scans N (per path, default 2000), --quick (200), --synchronous FULL|NORMAL.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

from evdev import InputEvent, ecodes  # noqa: E402

from bench_ledger import bench_key, machine_info, setup_small, target  # noqa: E402
from appliance.config import ScannerConfig  # noqa: E402
from appliance.ledger.requests import Move  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402
from appliance.scanning.gs1 import check_digit  # noqa: E402
from appliance.scanning.hid_reader import DeviceInfo  # noqa: E402
from appliance.scanning.readers import Scanners  # noqa: E402
from appliance.scanning.scan import Scan  # noqa: E402
from appliance.scanning.station import StationDesk  # noqa: E402

SITE = "BER"
N_SKUS = 50
TARGET_P99_MS = 15.0
GUN = DeviceInfo("/dev/input/event9", ("/dev/input/by-id/usb-Bench_Gun-event-kbd",), 0x0C2E, 0x0B61, "Bench Gun")


def log(msg: str) -> None:
    print(f"[bench-scan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ean13(n: int) -> str:
    body = f"400638{n:06d}"
    return body + str(check_digit(body))


def gtin14(ean: str) -> str:
    return "0" + ean


def percentiles(ms: list[float]) -> dict:
    ordered = sorted(ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 3)
    return {"n": len(ms), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 3),
            "mean": round(statistics.fmean(ms), 3)}


def fresh_ledger(path: Path, synchronous: str) -> Ledger:
    db = setup_small(path, synchronous, n_skus=N_SKUS)
    key = bench_key(db)
    with db.atomic("IMMEDIATE"):
        for i in range(1, N_SKUS + 1):
            db.execute_sql("INSERT INTO barcode (code, variant_id) VALUES (?, ?)", (ean13(i), i))
    return Ledger(db, SITE, key)


class Timed:
    """The worker's handler: the real desk, with the moment each scan's transaction returned."""

    def __init__(self, desk: StationDesk) -> None:
        self.desk = desk
        self.done: queue.Queue = queue.Queue()

    def __call__(self, scan: Scan, gs: tuple[str, ...]):
        feedback = self.desk.handle(scan, gs)
        self.done.put((time.perf_counter(), feedback))
        return feedback

    def wait(self):
        return self.done.get(timeout=10)


def prime(desk: StationDesk, station: str) -> None:
    for raw in ("CMD-RECEIVE", "BER-A-01"):
        feedback = desk.handle(Scan(station, "bench", raw, time.time()))
        assert feedback.level == "ok", feedback


def check_feedback(feedback, failures: list) -> None:
    if feedback.level != "ok" or len(feedback.movement_ids) != 1:
        failures.append(feedback.message)


def bench_serial(ledger: Ledger, n: int) -> tuple[list[float], list]:
    desk = StationDesk(ledger.db, ledger)
    prime(desk, "bench-serial")
    timed = Timed(desk)
    master, slave = os.openpty()
    port = os.ttyname(slave)
    scanners = Scanners([ScannerConfig(kind="serial", station="bench-serial", port=port, terminator="CR",
                                       gs="")], timed)
    scanners.start()
    failures: list = []
    try:
        deadline = time.monotonic() + 10
        while not scanners.status()[0].connected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the serial reader did not open {port}")
            time.sleep(0.01)
        lat = []
        for i in range(n):
            sku = 1 + i % N_SKUS
            code = f"]C101{gtin14(ean13(sku))}10L{i % 7}\x1d17271231\r".encode("latin-1")
            start = time.perf_counter()
            os.write(master, code)
            end, feedback = timed.wait()
            lat.append((end - start) * 1e3)
            check_feedback(feedback, failures)
    finally:
        scanners.stop()
        os.close(master)
        os.close(slave)
    return lat, failures


class PipeGun:
    """An evdev.InputDevice stand-in: a real fd for select(), real InputEvents from read()."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.fd = self.r
        self.pending: queue.SimpleQueue = queue.SimpleQueue()

    def send(self, events) -> None:
        for event in events:
            self.pending.put(event)
        os.write(self.w, b"x")

    def read(self):
        try:
            os.read(self.r, 4096)
        except BlockingIOError:
            pass
        while not self.pending.empty():
            yield self.pending.get()

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def key_events(text: str) -> list[InputEvent]:
    now = time.time()
    sec, usec = int(now), int((now % 1) * 1e6)
    out = []
    for ch in text + "\n":
        code = ecodes.KEY_ENTER if ch == "\n" else ecodes.ecodes[f"KEY_{ch}"]
        out.append(InputEvent(sec, usec, ecodes.EV_KEY, code, 1))
        out.append(InputEvent(sec, usec, ecodes.EV_KEY, code, 0))
    return out


def bench_hid(ledger: Ledger, n: int) -> tuple[list[float], list]:
    desk = StationDesk(ledger.db, ledger)
    prime(desk, "bench-hid")
    timed = Timed(desk)
    guns: dict[str, PipeGun] = {}

    def open_device(path: str) -> PipeGun:
        guns[path] = PipeGun()
        return guns[path]
    scanners = Scanners([ScannerConfig(kind="hid", station="bench-hid", device="0c2e:0b61", layout="us")], timed,
                        list_devices=lambda: [GUN], open_device=open_device)
    scanners.start()
    failures: list = []
    try:
        deadline = time.monotonic() + 10
        while GUN.path not in guns:
            if time.monotonic() > deadline:
                raise RuntimeError("the HID reader did not open the bench gun")
            time.sleep(0.01)
        lat = []
        for i in range(n):
            events = key_events(ean13(1 + i % N_SKUS))
            start = time.perf_counter()
            guns[GUN.path].send(events)
            end, feedback = timed.wait()
            lat.append((end - start) * 1e3)
            check_feedback(feedback, failures)
    finally:
        scanners.stop()
        for gun in guns.values():
            gun.close()
    return lat, failures


def bench_posts(ledger: Ledger, n: int, first: int) -> list[float]:
    lat = []
    for i in range(first, first + n):
        move = Move("receive", sku=f"BENCH-{1 + i % N_SKUS:03d}", location="BER-A-01", qty=1, lot=f"L{i % 7}",
                    expiry="2027-12-31")
        start = time.perf_counter()
        ledger.post(move, op_id=f"bench:{i}", device="bench")
        lat.append((time.perf_counter() - start) * 1e3)
    return lat


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 scans per path (a smoke run)")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.scans
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        work = Path(tmp)
        info = machine_info(work)
        results = {}
        # Interleave the three arms in rounds so that machine noise hits them alike.
        rounds = 4
        per = max(1, n // rounds)
        ledgers = {name: fresh_ledger(work / f"{name}.db", args.synchronous) for name in ("serial", "hid", "post")}
        lat: dict[str, list[float]] = {"serial": [], "hid": [], "post": []}
        failures: dict[str, list] = {"serial": [], "hid": []}
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}: {per} scans per path")
            got, bad = bench_serial(ledgers["serial"], per)
            lat["serial"] += got
            failures["serial"] += bad
            got, bad = bench_hid(ledgers["hid"], per)
            lat["hid"] += got
            failures["hid"] += bad
            lat["post"] += bench_posts(ledgers["post"], per, first=r * per)
        for name in lat:
            results[name] = percentiles(lat[name])
        counts = {name: ledgers[name].db.execute_sql("SELECT count(*) FROM movement").fetchone()[0] for name in ledgers}
        for ledger in ledgers.values():
            ledger.db.close()
    serial, hid, post = results["serial"], results["hid"], results["post"]
    out = {
        "benchmark": "scan",
        "scans_per_path": rounds * per,
        "synchronous": args.synchronous,
        "targets": {
            "serial_scan_to_commit_p99_ms": target(serial["p99"], f"<= {TARGET_P99_MS:g}", TARGET_P99_MS,
                                                    what="bytes written on a pty -> movement committed"),
            "hid_scan_to_commit_p99_ms": target(hid["p99"], f"<= {TARGET_P99_MS:g}", TARGET_P99_MS,
                                                 what="evdev key events handed to the reader -> movement committed"),
        },
        "latency_ms": {"serial": serial, "hid": hid, "ledger_post": post},
        "overhead_vs_ledger_post": {
            "serial_p50_ratio": round(serial["p50"] / post["p50"], 2),
            "hid_p50_ratio": round(hid["p50"] / post["p50"], 2),
            "serial_p50_extra_ms": round(serial["p50"] - post["p50"], 3),
            "hid_p50_extra_ms": round(hid["p50"] - post["p50"], 3),
        },
        "sanity": {
            "failures": {name: len(v) for name, v in failures.items()},
            "first_failures": {name: v[:3] for name, v in failures.items() if v},
            "movements": counts,
            "ok": not any(failures.values()) and counts["serial"] == counts["hid"] == counts["post"] == rounds * per,
        },
        "machine": info,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
