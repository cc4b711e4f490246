"""A writer killed with SIGKILL at random points loses nothing it reported and leaves nothing half-written.

The worker (`python tests/workers.py stream ...`) posts receives, ships and two-movement batches with unique
op_ids and, after each post returns, appends `op_id ids` to a report file and fsyncs it. The test kills it after
a random short delay, starts the next one, and in the end checks the database against the reports.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import workers
from workers import build_site, open_ledger, stream_moves

from appliance.ledger.check import check
from appliance.ledger.queries import load_movements

ROUNDS = 12
WORKER = Path(workers.__file__).resolve()


def read_report(report: Path) -> dict[str, list[int]]:
    """Reported op_id -> movement ids; a line cut short by the kill (no newline yet) was not reported."""
    if not report.exists():
        return {}
    reported = {}
    for line in report.read_text(encoding="ascii").splitlines(keepends=True):
        if line.endswith("\n"):
            op_id, ids = line.split()
            assert op_id not in reported, f"{op_id} reported twice"
            reported[op_id] = [int(i) for i in ids.split(",")]
    return reported


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.mark.slow
def test_a_writer_killed_at_random_points_loses_nothing_it_reported(db_path, tmp_path):
    build_site(db_path)
    report = tmp_path / "reported.txt"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    for round_no in range(ROUNDS):
        worker = subprocess.Popen([sys.executable, str(WORKER), "stream", str(db_path), str(report), f"r{round_no}"],
                                  stdin=subprocess.DEVNULL)
        try:
            # Kill it while it is posting (not while Python starts): after its first report, at a random moment.
            wait_for(lambda: f"r{round_no}-0" in read_report(report) or worker.poll() is not None, 30,
                     f"round {round_no} to post")
            assert worker.poll() is None, f"worker exited with {worker.returncode} (seed {seed})"
            time.sleep(rng.uniform(0, 0.3))
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait()
        assert worker.returncode == -signal.SIGKILL

    reported = read_report(report)
    ledger = open_ledger(db_path)
    try:
        conn = ledger.db.connection()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check(conn) == [], f"seed {seed}"

        # Every reported post is there exactly once, with the ids it reported.
        for op_id, ids in reported.items():
            assert [m.id for m in load_movements(conn, "m.op_id = ?", (op_id,))] == ids, f"{op_id} (seed {seed})"

        # All or nothing: each committed op_id has all its movements; per round, the committed posts are the
        # reported ones plus at most the one that was killed between its commit and its report.
        committed = defaultdict(int)
        for op_id, n in conn.execute("SELECT op_id, count(*) FROM movement GROUP BY op_id"):
            committed[op_id] = n
        assert {row[0] for row in conn.execute("SELECT op_id FROM op")} == set(committed)
        for op_id, n in committed.items():
            assert n == len(stream_moves(int(op_id.split("-")[1]))), op_id
        for round_no in range(ROUNDS):
            done = sorted(int(o.split("-")[1]) for o in committed if o.startswith(f"r{round_no}-"))
            told = sorted(int(o.split("-")[1]) for o in reported if o.startswith(f"r{round_no}-"))
            assert done == list(range(len(done))) and len(done) - len(told) in (0, 1), (round_no, seed)
        assert len(reported) >= ROUNDS

        # The sequence is still gapless, and re-posting a committed op_id (the ones committed but not reported,
        # and a sample of the reported ones) replays instead of writing.
        count = conn.execute("SELECT count(*) FROM movement").fetchone()[0]
        assert conn.execute("SELECT max(seq), count(*) FROM movement").fetchone() == (count, count)
        unreported = sorted(set(committed) - set(reported))
        for op_id in unreported + rng.sample(sorted(reported), min(50, len(reported))):
            again = ledger.post(stream_moves(int(op_id.split("-")[1])), op_id=op_id)
            assert again.replayed and (op_id not in reported or again.ids == reported[op_id])
        assert conn.execute("SELECT count(*) FROM movement").fetchone()[0] == count
        assert check(conn) == []
    finally:
        ledger.db.close()
