"""The writer gate: ledger writers of one file queue on a flock before BEGIN IMMEDIATE, across processes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time

from appliance.ledger.requests import Move
from appliance.ledger.service import WriteGate

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_write_waits_for_the_gate_another_process_holds_then_goes_through(ledger, db_path):
    gate = f"{db_path}-writer.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, gate], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done = threading.Event()

        def post():
            ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
            done.set()
        thread = threading.Thread(target=post)
        thread.start()
        assert not done.wait(0.5), "the write went past a gate another process holds"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert done.wait(30), "the write did not go through once the gate was free"
        thread.join()
    finally:
        holder.kill()
        holder.communicate()


def test_the_gate_is_released_when_a_write_fails(ledger, db_path):
    try:
        ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=5))
    except Exception:
        pass
    fd = os.open(f"{db_path}-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the failed write kept it
    finally:
        os.close(fd)


def test_threads_of_one_process_take_turns(tmp_path):
    gate = WriteGate(str(tmp_path / "x.db"))
    inside, overlaps = [], []

    def work():
        for _ in range(20):
            with gate.held():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.001)
                inside.pop()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_an_in_memory_database_has_no_gate():
    with WriteGate(":memory:").held():
        pass
