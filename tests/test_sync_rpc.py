"""Reserve and release for another site, decided by the owner (rpc.py), without MQTT in between."""

from __future__ import annotations

import pytest
from sync_sites import build_box, open_box

from appliance.errors import InvalidInput
from appliance.ledger.requests import Move
from appliance.sync import rpc
from appliance.sync.messages import ReleaseRequest, ReleaseResponse, ReserveRequest, ReserveResponse


@pytest.fixture
def waw(tmp_path):
    build_box(tmp_path / "WAW.db", "WAW", ["BER"])
    ledger = open_box(tmp_path / "WAW.db", "WAW")
    ledger.post(Move("receive", sku="DOG-5", location="WAW-A-01", qty=5))
    yield ledger
    ledger.db.close()


@pytest.fixture
def ber(tmp_path):
    build_box(tmp_path / "BER.db", "BER", ["WAW"])
    ledger = open_box(tmp_path / "BER.db", "BER")
    yield ledger
    ledger.db.close()


def reserve(key="order-1", qty=3, location="WAW-A-01", req_id="r1"):
    return ReserveRequest(req_id, key, "DOG-5", location, qty, 600)


def held(ledger):
    return ledger.db.execute_sql("SELECT count(*), coalesce(sum(qty), 0) FROM reservation WHERE status = 'held'"
                                 ).fetchone()


def test_a_retried_reserve_gets_the_first_hold_back(waw):
    first = rpc.answer_reserve(waw, "BER", reserve(req_id="r1"))
    again = rpc.answer_reserve(waw, "BER", reserve(req_id="r2"))
    assert first.status == again.status == "HELD" and first.reservation_id == again.reservation_id
    assert (again.req_id, again.expires_at) == ("r2", first.expires_at)
    assert held(waw) == (1, 3)


def test_a_reserve_beyond_what_is_available_is_rejected_with_the_available_quantity(waw):
    answer = rpc.answer_reserve(waw, "BER", reserve(qty=9))
    assert (answer.status, answer.available) == ("REJECTED", 5) and held(waw) == (0, 0)


def test_a_reserve_for_a_location_the_owner_does_not_own_is_rejected(waw):
    answer = rpc.answer_reserve(waw, "BER", reserve(location="BER-A-01"))
    assert answer.status == "REJECTED" and "not a location of WAW" in answer.reason


def test_release_is_idempotent_and_says_when_nothing_is_held(waw):
    rpc.answer_reserve(waw, "BER", reserve())
    for req_id in ("x1", "x2"):
        assert rpc.answer_release(waw, "BER", ReleaseRequest(req_id, "order-1")).status == "RELEASED"
    assert held(waw) == (0, 0)
    assert rpc.answer_release(waw, "BER", ReleaseRequest("x3", "order-2")).status == "NOT_HELD"
    # After the release, a retried reserve under the same key does not hold again.
    assert rpc.answer_reserve(waw, "BER", reserve(req_id="r9")).status == "REJECTED"


def test_keys_are_per_requester(waw):
    rpc.answer_reserve(waw, "BER", reserve(qty=2))
    assert rpc.answer_reserve(waw, "PAR", reserve(qty=2)).status == "HELD"
    assert held(waw) == (2, 4)


def test_requester_records_answers_and_deadlines(ber):
    key = rpc.request_reserve(ber.db, "WAW", "DOG-5", "WAW-A-01", 2, idem_key="k1")
    assert rpc.request_reserve(ber.db, "WAW", "DOG-5", "WAW-A-01", 2, idem_key="k1") == key
    with pytest.raises(InvalidInput, match="another request"):
        rpc.request_reserve(ber.db, "WAW", "DOG-5", "WAW-A-01", 3, idem_key="k1")
    owner, message = rpc.message_for(rpc.due_requests(ber.db)[0])
    assert owner == "WAW" and isinstance(message, ReserveRequest) and message.idem_key == "k1"
    rpc.record_timeout(ber.db, key)
    assert rpc.list_requests(ber.db)[0]["status"] == "UNKNOWN"
    assert rpc.due_requests(ber.db)               # still retried until the deadline
    rpc.record_answer(ber.db, ReserveResponse(message.req_id, "k1", "HELD", reservation_id=7,
                                              expires_at="2026-11-23T10:00:00.000000Z"))
    row = rpc.list_requests(ber.db)[0]
    assert (row["status"], row["reservation_id"]) == ("HELD", 7) and not rpc.due_requests(ber.db)
    release_key = rpc.request_release(ber.db, "k1")
    _, release = rpc.message_for(next(r for r in rpc.due_requests(ber.db) if r[0] == release_key))
    assert isinstance(release, ReleaseRequest) and release.idem_key == "k1"
    rpc.record_answer(ber.db, ReleaseResponse(release.req_id, "k1", "RELEASED"))
    assert {r["idem_key"]: r["status"] for r in rpc.list_requests(ber.db)} == {"k1": "RELEASED",
                                                                              release_key: "RELEASED"}


def test_a_request_past_its_deadline_stays_unknown_and_is_no_longer_sent(ber):
    rpc.request_reserve(ber.db, "WAW", "DOG-5", "WAW-A-01", 2, idem_key="late", deadline_s=-1)
    assert rpc.due_requests(ber.db) == []
    row = rpc.list_requests(ber.db)[0]
    assert (row["status"], row["reason"]) == ("UNKNOWN", "no answer before the deadline")


def test_an_owner_still_recovering_answers_unknown_not_rejected(waw):
    waw.db.execute_sql("UPDATE site SET recovering = 1 WHERE id = 'WAW'")
    answer = rpc.answer_reserve(waw, "BER", reserve())
    assert answer.status == "UNKNOWN" and "recovering" in answer.reason and held(waw) == (0, 0)
    waw.db.execute_sql("UPDATE site SET recovering = 0 WHERE id = 'WAW'")
    assert rpc.answer_reserve(waw, "BER", reserve(req_id="r2")).status == "HELD"
