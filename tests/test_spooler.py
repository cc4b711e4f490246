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


def test_an_escpos_job_cut_off_part_way_is_uncertain_not_sent_again(tmp_path):
    from printer_sims import FakeRawPrinter
    with FakeRawPrinter() as raw:
        app = make_app(tmp_path, printer=[{"name": "till", "kind": "escpos_network", "host": "127.0.0.1",
                                           "port": raw.port, "default": True, "width_mm": 72.0, "height_mm": 40.0,
                                           "media": "continuous", "timeout_s": 2.0}])
        try:
            printer = app.config.printers[0]
            (job_id,) = queue_labels(app)
            raw.drop_after = 10   # part of the label may be on paper already
            spooler = Spooler(app, retry_base_s=1, now=lambda: at(0))
            assert spooler.pass_once(printer, at(0)) is False
            job = queue.require(app.db.connection(), job_id)
            assert job.state == "uncertain" and "part of the label may have printed" in job.last_error
            assert open_alerts(app) == {("printer_error", "till")}
            drain(spooler, printer, 5)
            assert raw.connections == 1   # never repeated on its own
            with app.ledger.write() as ops:
                queue.requeue(ops.conn, job_id, clock.to_ts(at(6)))
            drain(spooler, printer, 6)
            assert queue.require(app.db.connection(), job_id).state == "done" and raw.connections == 2
            assert raw.jobs[-1].startswith(b"\x1b@") and b"BER-A-01" in raw.jobs[-1]   # no ~JX for ESC/POS
            assert open_alerts(app) == set()
        finally:
            app.close()


def test_a_pallet_of_transfers_gets_an_sscc_label_and_a_transfer_document(app, zebra):
    from appliance.errors import InvalidInput, UnknownTransfer
    from appliance.ledger.requests import Move
    from appliance.printing.service import transfer_data
    app.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=10),
                     Move("receive", sku="CAT-2", location="BER-A-01", qty=10)])
    codes = [app.ledger.transfer(sku, "BER-A-01", "WAW-A-01", qty).movements[0].ref_id
             for sku, qty in (("DOG-5", 4), ("CAT-2", 6))]
    conn = app.db.connection()
    pallet, document = transfer_data(conn, codes)
    assert (pallet["from_site"], pallet["to_site"], pallet["total_qty"]) == ("BER", "WAW", 10)
    assert [(line["sku"], line["qty"]) for line in document["lines"]] == [("DOG-5", 4), ("CAT-2", 6)]
    with app.ledger.write() as ops:
        for label, data in (("sscc", pallet), ("transfer_document", document)):
            queue_label(ops.conn, app.config, label, data, now=clock.to_ts(at(0)))
    drain(Spooler(app, now=lambda: at(0)), app.config.printers[0], 0)
    sscc_format, document_format = zebra.formats
    assert b">;>800" in sscc_format or b">800" in sscc_format   # GS1-128 opening with AI (00)
    assert b"(00) 000000000" in sscc_format and codes[0].encode() in document_format
    with pytest.raises(UnknownTransfer):
        transfer_data(conn, ["BER-TR-999999"])
    with pytest.raises(InvalidInput, match="at least one"):
        transfer_data(conn, [])
