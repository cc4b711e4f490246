"""The spooler against a real loopback "Zebra" (tests/printer_sims.FakeZebra): jobs queued in ledger transactions
come out exactly once through an offline printer, a connection dropped mid-job, paper out and an agent restart.

Passes are driven with explicit times (`pass_once(printer, now)`), so backoffs are stepped over, not slept;
one test runs the real threads.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from printer_sims import FakeZebra
from purchasing_tools import make_app, open_alerts

from appliance import clock
from appliance.printing import queue
from appliance.printing.service import location_data, queue_label, variant_data
from appliance.printing.spooler import Spooler

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def zebra():
    printer = FakeZebra()
    printer.start()
    yield printer
    printer.stop()


def make(tmp_path, zebra, **printer):
    entry = {"name": "dock-zebra", "kind": "zpl_tcp", "host": "127.0.0.1", "port": zebra.port, "default": True,
             "timeout_s": 2.0, **printer}
    return make_app(tmp_path, printer=[entry])


@pytest.fixture
def app(tmp_path, zebra):
    app = make(tmp_path, zebra)
    yield app
    app.close()


def queue_labels(app, n: int = 1, copies: int = 1, *, at_s: float = 0) -> list[int]:
    ids = []
    with app.ledger.write(user="admin") as ops:
        for i in range(n):
            data = location_data(ops.conn, "BER-A-01" if i % 2 == 0 else "BER-A-02")
            ids.append(queue_label(ops.conn, app.config, "location", data, now=clock.to_ts(at(at_s)),
                                   copies=copies).id)
    return ids


def drain(spooler: Spooler, printer, start_s: float, *, limit: int = 100) -> float:
    """Run passes at 1 s steps until a pass sends nothing and nothing is due; the time reached."""
    now = start_s
    for _ in range(limit):
        if not spooler.pass_once(printer, at(now)):
            if not queue.due(spooler.app.db.connection(), printer.name, clock.to_ts(at(now + 10_000))):
                return now
            now += 1
    raise AssertionError("the queue did not drain")


def states(app) -> dict[int, str]:
    return dict(app.db.execute_sql("SELECT id, state FROM print_job ORDER BY id").fetchall())


def test_queued_jobs_print_once_each_in_order_with_their_copies(app, zebra):
    ids = queue_labels(app, 3, copies=2)
    spooler = Spooler(app, now=lambda: at(0))
    drain(spooler, app.config.printers[0], 0)
    assert zebra.labels == 6 and len(zebra.formats) == 3
    assert [b"BER-A-01" in f for f in zebra.formats] == [True, False, True]
    assert all(b"^PQ2" in f for f in zebra.formats)
    jobs = [queue.require(app.db.connection(), job_id) for job_id in ids]
    assert [(j.state, j.attempts) for j in jobs] == [("done", 1)] * 3
    assert all(j.sent_at for j in jobs)
    assert open_alerts(app) == set()


def test_an_offline_printer_holds_the_queue_raises_one_alert_and_prints_everything_once_when_back(app, zebra):
    printer = app.config.printers[0]
    zebra.stop()
    ids = queue_labels(app, 2)
    spooler = Spooler(app, retry_base_s=5, retry_max_s=60, now=lambda: at(0))
    assert spooler.pass_once(printer, at(0)) is False
    assert open_alerts(app) == {("printer_error", "dock-zebra")}
    message = app.db.execute_sql("SELECT message FROM alert WHERE kind = 'printer_error'").fetchone()[0]
    assert "not reachable" in message and "2 jobs waiting" in message
    job = queue.require(app.db.connection(), ids[0])
    assert job.state == "queued" and "not reachable" in job.last_error
    # Backed off: nothing is tried again before the backoff is over, and the backoff doubles.
    assert spooler.pass_once(printer, at(3)) is False
    assert spooler._resume_at["dock-zebra"] == at(5)
    spooler.pass_once(printer, at(5))
    assert spooler._resume_at["dock-zebra"] == at(15)
    notifications = app.db.execute_sql("SELECT count(*) FROM alert").fetchone()[0]
    assert notifications == 1   # one alert for the whole outage, however many passes
    zebra.start()   # the printer is back, on the same address
    drain(spooler, printer, 15)
    assert len(zebra.formats) == 2
    assert states(app) == {ids[0]: "done", ids[1]: "done"}
    assert open_alerts(app) == set()


def test_a_connection_dropped_mid_job_is_sent_again_once_after_cancelling_the_partial_format(tmp_path, zebra):
    app = make(tmp_path, zebra, status=False)
    try:
        printer = app.config.printers[0]
        (first, second) = queue_labels(app, 2)
        zebra.drop_after = 20   # the first job's connection dies after 20 bytes
        spooler = Spooler(app, retry_base_s=1, now=lambda: at(0))
        assert spooler.pass_once(printer, at(0)) is False
        job = queue.require(app.db.connection(), first)
        assert job.state == "queued" and job.partial and job.attempts == 1
        assert zebra.formats == []   # half a format prints nothing
        drain(spooler, printer, 1)
        assert len(zebra.formats) == 2 and b"BER-A-01" in zebra.formats[0] and b"BER-A-02" in zebra.formats[1]
        done = queue.require(app.db.connection(), first)
        assert done.state == "done" and done.attempts == 2 and not done.partial
        assert states(app)[second] == "done"
    finally:
        app.close()


def test_paper_out_holds_jobs_without_sending_and_the_alert_says_so(app, zebra):
    printer = app.config.printers[0]
    zebra.set_status(paper_out=True)
    (job_id,) = queue_labels(app)
    spooler = Spooler(app, retry_base_s=2, now=lambda: at(0))
    assert spooler.pass_once(printer, at(0)) is False
    assert zebra.formats == [] and queue.require(app.db.connection(), job_id).attempts == 0
    message = app.db.execute_sql("SELECT message FROM alert WHERE kind = 'printer_error' AND resolved_at IS NULL"
                                 ).fetchone()[0]
    assert "paper out" in message
    zebra.set_status(paper_out=False)
    drain(spooler, printer, 2)
    assert len(zebra.formats) == 1 and open_alerts(app) == set()


def test_a_job_caught_mid_send_by_a_restart_is_uncertain_and_printed_only_when_asked(app, zebra):
    printer = app.config.printers[0]
    (job_id,) = queue_labels(app)
    with app.ledger.write() as ops:
        assert queue.claim(ops.conn, job_id, clock.to_ts(at(0)))   # the agent died here, mid-send
    spooler = Spooler(app, now=lambda: at(1))
    assert spooler.recover() == [job_id]
    job = queue.require(app.db.connection(), job_id)
    assert job.state == "uncertain" and "reprint or cancel" in job.last_error
    drain(spooler, printer, 1)
    assert zebra.formats == []   # never repeated on its own
    with app.ledger.write() as ops:
        again = queue.requeue(ops.conn, job_id, clock.to_ts(at(2)))
    assert again.id == job_id and again.state == "queued"
    drain(spooler, printer, 2)
    assert len(zebra.formats) == 1
    assert zebra.received.startswith(b"~HS") or b"~JX" in zebra.received   # the retry cancels a half format first
    assert b"~JX^XA" in zebra.received.replace(b"~HS", b"")


def test_jobs_waiting_longer_than_the_give_up_time_fail_with_the_reason(app, zebra):
    printer = app.config.printers[0]
    zebra.stop()
    (job_id,) = queue_labels(app)
    spooler = Spooler(app, give_up_hours=1, now=lambda: at(0))
    spooler.pass_once(printer, at(0))
    assert states(app)[job_id] == "queued"
    spooler._resume_at.clear()
    spooler.pass_once(printer, at(3601))
    job = queue.require(app.db.connection(), job_id)
    assert job.state == "failed" and job.last_error.startswith("gave up after 1 h")


def test_cancel_and_reprint(app, zebra):
    printer = app.config.printers[0]
    first, second = queue_labels(app, 2)
    with app.ledger.write() as ops:
        assert queue.cancel(ops.conn, second, clock.to_ts(at(0))).state == "cancelled"
    spooler = Spooler(app, now=lambda: at(0))
    drain(spooler, printer, 0)
    assert len(zebra.formats) == 1
    with app.ledger.write() as ops:
        reprint = queue.requeue(ops.conn, first, clock.to_ts(at(1)))
        with pytest.raises(queue.JobStateError):
            queue.cancel(ops.conn, first, clock.to_ts(at(1)))   # done is done
    assert reprint.id != first and reprint.reprint_of == first
    drain(spooler, printer, 1)
    assert len(zebra.formats) == 2 and zebra.formats[0] == zebra.formats[1]


def test_the_running_spooler_prints_a_job_committed_by_another_connection(app, zebra):
    spooler = Spooler(app, poll_s=0.05)
    spooler.start()
    try:
        with app.ledger.write(user="admin") as ops:
            data = variant_data(ops.conn, app.config, "DOG-5")
            job = queue_label(ops.conn, app.config, "variant", data, now=ops.ts)
        deadline = time.monotonic() + 30
        while queue.require(app.db.connection(), job.id).state != "done":
            assert time.monotonic() < deadline, "the spooler did not print the job"
            time.sleep(0.02)
        assert len(zebra.formats) == 1 and b"DOG-5" in zebra.formats[0]
    finally:
        assert spooler.stop() is True
    assert not any(t.name.startswith("spool-") for t in threading.enumerate())
