"""The ledger's rules, kind by kind, against a real SQLite file (DESIGN.md §2).

Every test that uses the `ledger` fixture ends with `check()` finding nothing, unless it corrupts the
database on purpose (`@corrupts`).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest
from workers import FOREIGN_KEY, FOREIGN_LOCATION, SITE, register_key

from appliance import clock
from appliance.errors import (ForeignLocation, InsufficientStock, InvalidInput, InvalidQuantity, NotReversible,
                              OpIdReused, ReservationClosed, TransferClosed, UnknownLocation, UnknownMovement,
                              UnknownReservation, UnknownSku, UnknownTransfer, UnknownUser)
from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.movement_token import Body, encode_body
from appliance.ledger.requests import Move
from appliance.sync.inbox import Inbox
from appliance.sync.tokens import sign

A1, A2 = "BER-A-01", "BER-A-02"
SKU = "DOG-5"


def corrupts(test):
    """Mark a test that damages the database on purpose: the consistency check after it is skipped."""
    test.corrupts = True
    return test


@pytest.fixture(autouse=True)
def ledger_stays_consistent(request):
    if "ledger" not in request.fixturenames or getattr(request.function, "corrupts", False):
        yield
        return
    ledger = request.getfixturevalue("ledger")  # set up first, so it is still open after the test
    yield
    assert check(ledger.db.connection()) == []


# --- helpers -------------------------------------------------------------------------------------------------

def post(ledger, kind, qty, sku=SKU, location=A1, **fields):
    return ledger.post(Move(kind, sku=sku, location=location, qty=qty, **fields))


def receive(ledger, qty, sku=SKU, location=A1, **fields):
    return post(ledger, "receive", qty, sku, location, **fields)


def level(ledger, sku=SKU, location=A1, lot=None) -> tuple[int, int, int]:
    """(on hand, reserved, in transit) of one variant at one location (one lot, if given)."""
    lines = queries.stock_levels(ledger.db.connection(), sku=sku, location=location, by_lot=lot is not None,
                                 include_empty=True)
    if lot is not None:
        lines = [line for line in lines if line.lot == lot]
    return (sum(x.on_hand for x in lines), sum(x.reserved for x in lines), sum(x.in_transit for x in lines))


def deltas(result) -> list[tuple]:
    return [(m.kind, m.lot, m.d_on_hand, m.d_reserved, m.d_in_transit) for m in result.movements]


def head_seq(ledger) -> int:
    return ledger.db.execute_sql("SELECT head_seq FROM site WHERE id = ?", (SITE,)).fetchone()[0]


def movement_count(ledger) -> int:
    return ledger.db.execute_sql("SELECT count(*) FROM movement").fetchone()[0]


def reservation(ledger, res_id) -> dict:
    row = ledger.db.execute_sql(
        "SELECT qty, qty_consumed, qty_released, status FROM reservation WHERE id = ?", (res_id,)).fetchone()
    return dict(zip(("qty", "consumed", "released", "status"), row))


def transfer_row(ledger, code) -> dict:
    row = ledger.db.execute_sql(
        "SELECT qty_sent, qty_received, qty_short, qty_over, status, closed_at FROM transfer WHERE code = ?",
        (code,)).fetchone()
    return dict(zip(("sent", "received", "short", "over", "status", "closed_at"), row))


def reserve_id(result) -> int:
    return int(result.movements[0].ref_id)


# --- quantities and signs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("move", [
    Move("receive", sku=SKU, location=A1, qty=0),
    Move("receive", sku=SKU, location=A1, qty=-1),
    Move("return_in", sku=SKU, location=A1, qty=0),
    Move("ship", sku=SKU, location=A1, qty=0),
    Move("ship", sku=SKU, location=A1, qty=-3),
    Move("damage", sku=SKU, location=A1, qty=-1),
    Move("return_out", sku=SKU, location=A1, qty=0),
    Move("reserve", sku=SKU, location=A1, qty=0),
    Move("release", sku=SKU, location=A1, qty=0),
    Move("release", reservation_id=1, qty=-1),
    Move("ship", reservation_id=1, qty=0),
    Move("transfer_out", sku=SKU, location=A1, to_location=A2, qty=0),
    Move("transfer_in", transfer="BER-TR-000001", qty=0),
    Move("transfer_in", transfer="BER-TR-000001", qty=-1, close=True),
    Move("adjust", sku=SKU, location=A1, qty=0),
    Move("count", sku=SKU, location=A1, qty=-1),
    Move("receive", sku=SKU, location=A1, qty=1.5),
    Move("receive", sku=SKU, location=A1, qty=True),
    Move("receive", sku=SKU, location=A1, qty="3"),
    Move("receive", sku=SKU, location=A1, qty=10**9 + 1),
    Move("adjust", sku=SKU, location=A1, qty=-(10**9 + 1)),
], ids=lambda m: f"{m.kind}:{m.qty!r}{':close' if m.close else ''}{':res' if m.reservation_id else ''}")
def test_invalid_quantities_are_refused_before_anything_is_written(ledger, move):
    with pytest.raises(InvalidQuantity) as caught:
        ledger.post(move)
    assert caught.value.details["field"] == "qty"
    assert movement_count(ledger) == 0 and head_seq(ledger) == 0


def _reserved(ledger):
    return ledger.reserve(SKU, A1, 4)


def _sent(ledger):
    return ledger.transfer(SKU, A1, A2, 4).movements[0].ref_id


# (name, preparation after receiving 10 DOG-5 at BER-A-01 -> value, move built from that value, deltas of the
# movements written: (kind, on hand, reserved, in transit))
SIGNS = [
    ("receive", None, lambda _: Move("receive", sku=SKU, location=A1, qty=4), [("receive", 4, 0, 0)]),
    ("return_in", None, lambda _: Move("return_in", sku=SKU, location=A1, qty=4), [("return_in", 4, 0, 0)]),
    ("ship", None, lambda _: Move("ship", sku=SKU, location=A1, qty=4), [("ship", -4, 0, 0)]),
    ("damage", None, lambda _: Move("damage", sku=SKU, location=A1, qty=4), [("damage", -4, 0, 0)]),
    ("return_out", None, lambda _: Move("return_out", sku=SKU, location=A1, qty=4), [("return_out", -4, 0, 0)]),
    ("adjust up", None, lambda _: Move("adjust", sku=SKU, location=A1, qty=4), [("adjust", 4, 0, 0)]),
    ("adjust down", None, lambda _: Move("adjust", sku=SKU, location=A1, qty=-4), [("adjust", -4, 0, 0)]),
    ("count less", None, lambda _: Move("count", sku=SKU, location=A1, qty=7), [("count", -3, 0, 0)]),
    ("count more", None, lambda _: Move("count", sku=SKU, location=A1, qty=12), [("count", 2, 0, 0)]),
    ("count same", None, lambda _: Move("count", sku=SKU, location=A1, qty=10), [("count", 0, 0, 0)]),
    ("reserve", None, lambda _: Move("reserve", sku=SKU, location=A1, qty=4), [("reserve", 0, 4, 0)]),
    ("release", _reserved, lambda r: Move("release", reservation_id=reserve_id(r), qty=3),
     [("release", 0, -3, 0)]),
    ("release by location", _reserved, lambda _: Move("release", sku=SKU, location=A1, qty=4),
     [("release", 0, -4, 0)]),
    ("consume", _reserved, lambda r: Move("ship", reservation_id=reserve_id(r), qty=4), [("ship", -4, -4, 0)]),
    ("transfer_out", None, lambda _: Move("transfer_out", sku=SKU, location=A1, to_location=A2, qty=4),
     [("transfer_out", -4, 0, 4)]),
    ("transfer_in", _sent, lambda code: Move("transfer_in", transfer=code, qty=4), [("transfer_in", 4, 0, -4)]),
]


@pytest.mark.parametrize("prepare, make, expected", [s[1:] for s in SIGNS], ids=[s[0] for s in SIGNS])
def test_each_kind_writes_deltas_of_the_right_sign(ledger, prepare, make, expected):
    receive(ledger, 10)
    move = make(prepare(ledger) if prepare else None)
    before = {loc: level(ledger, location=loc) for loc in (A1, A2)}
    result = ledger.post(move)
    assert [(m.kind, m.d_on_hand, m.d_reserved, m.d_in_transit) for m in result.movements] == expected
    assert not result.replayed
    # The projection moved by exactly the deltas written (in transit shows at the destination).
    after = {loc: level(ledger, location=loc) for loc in (A1, A2)}
    moved = {loc: [after[loc][i] - before[loc][i] for i in range(3)] for loc in (A1, A2)}
    want = {A1: [0, 0, 0], A2: [0, 0, 0]}
    for m in result.movements:
        want[m.location][0] += m.d_on_hand
        want[m.location][1] += m.d_reserved
        want[m.to_location or m.location][2] += m.d_in_transit
    assert moved == want


def test_a_receipt_records_the_variant_cost_unless_given(ledger):
    assert receive(ledger, 1).movements[0].unit_cost == 1299
    assert receive(ledger, 1, unit_cost=1100).movements[0].unit_cost == 1100
    assert receive(ledger, 1, sku="CAT-2").movements[0].unit_cost is None


def test_movements_record_who_where_and_when(ledger, fake_clock):
    result = receive(ledger, 2, ref_type="po", ref_id="PO-7", reason="delivery", note="pallet 1")
    m = result.movements[0]
    assert (m.origin, m.epoch, m.seq, m.sku, m.location) == (SITE, 1, 1, SKU, A1)
    assert (m.ref_type, m.ref_id, m.reason, m.note, m.ts) == ("po", "PO-7", "delivery", "pallet 1", fake_clock.last_ts)
    m = ledger.post(Move("ship", sku=SKU, location=A1, qty=1), user="admin", device="gun-1").movements[0]
    assert (m.user, m.device) == ("admin", "gun-1")
    assert queries.load_movements(ledger.db.connection(), "m.id = ?", (m.id,)) == [m]


def test_an_unknown_or_disabled_user_cannot_post(ledger):
    with pytest.raises(UnknownUser):
        ledger.post(Move("receive", sku=SKU, location=A1, qty=1), user="nobody")
    ledger.db.execute_sql("UPDATE app_user SET active = 0 WHERE login = 'admin'")
    with pytest.raises(InvalidInput):
        ledger.post(Move("receive", sku=SKU, location=A1, qty=1), user="admin")
    assert movement_count(ledger) == 0


# --- what a request names must exist and belong to this site -------------------------------------------------

NAMED = [
    lambda sku, loc: Move("receive", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("return_in", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("ship", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("damage", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("return_out", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("adjust", sku=sku, location=loc, qty=-1),
    lambda sku, loc: Move("count", sku=sku, location=loc, qty=0),
    lambda sku, loc: Move("reserve", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("release", sku=sku, location=loc, qty=1),
    lambda sku, loc: Move("transfer_out", sku=sku, location=loc, to_location=A2, qty=1),
]
NAMED_IDS = ["receive", "return_in", "ship", "damage", "return_out", "adjust", "count", "reserve", "release",
             "transfer_out"]


@pytest.mark.parametrize("make", NAMED, ids=NAMED_IDS)
@pytest.mark.parametrize("sku, location, error", [
    ("NOPE-1", A1, UnknownSku),
    (SKU, "BER-Z-99", UnknownLocation),
    (SKU, FOREIGN_LOCATION, ForeignLocation),
])
def test_unknown_and_foreign_names_are_refused(ledger, make, sku, location, error):
    receive(ledger, 5)
    receive(ledger, 5, location=A2)
    with pytest.raises(error) as caught:
        ledger.post(make(sku, location))
    if error is ForeignLocation:
        assert caught.value.details == {"location": FOREIGN_LOCATION, "owner": "WAW", "site": SITE}
    assert movement_count(ledger) == 2


def test_a_transfer_to_an_unknown_destination_is_refused(ledger):
    receive(ledger, 5)
    with pytest.raises(UnknownLocation):
        ledger.transfer(SKU, A1, "BER-Z-99", 1)
    assert level(ledger) == (5, 0, 0)


def test_a_transfer_to_another_site_is_allowed_and_its_receipt_is_theirs(ledger):
    receive(ledger, 5)
    out = ledger.transfer(SKU, A1, FOREIGN_LOCATION, 2)
    assert deltas(out) == [("transfer_out", "", -2, 0, 2)]
    assert out.movements[0].to_location == FOREIGN_LOCATION
    assert level(ledger) == (3, 0, 0)
    assert level(ledger, location=FOREIGN_LOCATION) == (0, 0, 2)
    assert queries.totals_by_site(ledger.db.connection(), SKU)["WAW"]["in_transit"] == 2
    with pytest.raises(ForeignLocation):
        ledger.transfer_in(out.movements[0].ref_id, 2)


def test_a_batch_is_all_or_nothing(ledger):
    receive(ledger, 5)
    with pytest.raises(UnknownSku):
        ledger.post([Move("ship", sku=SKU, location=A1, qty=2), Move("receive", sku="NOPE-1", location=A1, qty=1)])
    assert level(ledger) == (5, 0, 0) and movement_count(ledger) == 1 and head_seq(ledger) == 1
    result = ledger.post([Move("ship", sku=SKU, location=A1, qty=2), Move("receive", sku="CAT-2", location=A2, qty=1)])
    assert [m.seq for m in result.movements] == [2, 3]
    with pytest.raises(InvalidInput):
        ledger.post([])


# --- availability -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda q: Move("ship", sku=SKU, location=A1, qty=q),
    lambda q: Move("damage", sku=SKU, location=A1, qty=q),
    lambda q: Move("return_out", sku=SKU, location=A1, qty=q),
    lambda q: Move("transfer_out", sku=SKU, location=A1, to_location=A2, qty=q),
    lambda q: Move("reserve", sku=SKU, location=A1, qty=q),
], ids=["ship", "damage", "return_out", "transfer_out", "reserve"])
def test_consuming_kinds_are_limited_by_available_stock(ledger, make):
    receive(ledger, 10)
    ledger.reserve(SKU, A1, 4)
    with pytest.raises(InsufficientStock) as caught:
        ledger.post(make(7))
    assert caught.value.available == 6
    assert caught.value.details["requested"] == 7 and caught.value.code == "insufficient_stock"
    assert level(ledger) == (10, 4, 0)
    ledger.post(make(6))
    on_hand, reserved, _ = level(ledger)
    assert on_hand - reserved == 0


def test_nothing_on_hand_means_nothing_available(ledger):
    with pytest.raises(InsufficientStock) as caught:
        post(ledger, "ship", 1)
    assert caught.value.available == 0


def test_a_downward_adjustment_is_limited_only_by_stock_on_hand(ledger):
    receive(ledger, 10)
    ledger.reserve(SKU, A1, 4)
    with pytest.raises(InsufficientStock) as caught:
        post(ledger, "adjust", -11)
    assert caught.value.available == 10
    post(ledger, "adjust", -8)  # stock that is gone is gone, even when promised
    assert level(ledger) == (2, 4, 0)
    assert queries.available(ledger.db.connection(), SKU, A1) == -2
    with pytest.raises(InsufficientStock) as caught:
        post(ledger, "ship", 1)
    assert caught.value.available == -2


def test_a_count_writes_the_difference_and_a_count_without_one_is_still_written(ledger):
    receive(ledger, 10)
    ledger.reserve(SKU, A1, 4)
    assert deltas(post(ledger, "count", 10)) == [("count", "", 0, 0, 0)]
    assert deltas(post(ledger, "count", 1)) == [("count", "", -9, 0, 0)]
    assert level(ledger) == (1, 4, 0)
    assert deltas(post(ledger, "count", 3, sku="CAT-2")) == [("count", "", 3, 0, 0)]
    assert level(ledger, sku="CAT-2") == (3, 0, 0)
    assert [m.reason for m in queries.history(ledger.db.connection(), kind="count")] == ["count"] * 3


def test_stock_held_in_lots_is_counted_lot_by_lot(ledger):
    receive(ledger, 5, lot="L1", expiry="2026-06-01")
    receive(ledger, 3, lot="L2", expiry="2026-07-01")
    with pytest.raises(InvalidInput) as caught:
        post(ledger, "count", 8)
    assert caught.value.details["field"] == "lot"
    result = post(ledger, "count", 4, lot="L2")
    assert deltas(result) == [("count", "L2", 1, 0, 0)] and result.movements[0].expiry == "2026-07-01"
    assert level(ledger, lot="L1") == (5, 0, 0) and level(ledger, lot="L2") == (4, 0, 0)


# --- first expiry, first out ----------------------------------------------------------------------------------

def test_stock_leaves_earliest_expiry_first_across_lots(ledger):
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    receive(ledger, 5)  # no lot, no expiry: last
    receive(ledger, 5, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="MID", expiry="2026-06-01")
    first = post(ledger, "ship", 7)
    assert [(m.lot, m.d_on_hand, m.expiry) for m in first.movements] == [("EARLY", -5, "2026-04-01"),
                                                                         ("MID", -2, "2026-06-01")]
    second = post(ledger, "damage", 9)
    assert [(m.lot, m.d_on_hand) for m in second.movements] == [("MID", -3), ("LATE", -5), ("", -1)]
    assert post(ledger, "adjust", -2).movements[0].lot == ""
    assert level(ledger) == (2, 0, 0)


def test_a_named_lot_is_taken_from_that_lot_only(ledger):
    receive(ledger, 5, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    assert deltas(post(ledger, "ship", 2, lot="LATE")) == [("ship", "LATE", -2, 0, 0)]
    with pytest.raises(InsufficientStock) as caught:
        post(ledger, "ship", 4, lot="LATE")
    assert caught.value.available == 3
    with pytest.raises(InsufficientStock):
        post(ledger, "ship", 1, lot="NONE")
    with pytest.raises(InsufficientStock):
        post(ledger, "adjust", -4, lot="LATE")
    assert level(ledger, lot="EARLY") == (5, 0, 0) and level(ledger, lot="LATE") == (3, 0, 0)


# --- reservations -------------------------------------------------------------------------------------------

def test_reserve_then_release_part_and_then_the_rest(ledger, fake_clock):
    receive(ledger, 10)
    res = reserve_id(ledger.reserve(SKU, A1, 6, ref="SO-1"))
    assert reservation(ledger, res) == {"qty": 6, "consumed": 0, "released": 0, "status": "held"}
    assert level(ledger) == (10, 6, 0)
    assert deltas(ledger.release(res, 2)) == [("release", "", 0, -2, 0)]
    assert reservation(ledger, res)["status"] == "held" and level(ledger) == (10, 4, 0)
    with pytest.raises(InsufficientStock) as caught:
        ledger.release(res, 5)
    assert caught.value.available == 4
    assert deltas(ledger.release(res)) == [("release", "", 0, -4, 0)]  # qty 0: whatever remains
    assert reservation(ledger, res) == {"qty": 6, "consumed": 0, "released": 6, "status": "released"}
    assert level(ledger) == (10, 0, 0)
    with pytest.raises(ReservationClosed):
        ledger.release(res)
    with pytest.raises(UnknownReservation):
        ledger.release(999)


def test_release_by_location_takes_the_oldest_reservations_first(ledger):
    receive(ledger, 10)
    first = reserve_id(ledger.reserve(SKU, A1, 3, ref="SO-1"))
    second = reserve_id(ledger.reserve(SKU, A1, 3, ref="SO-2"))
    result = post(ledger, "release", 4)
    assert [m.ref_id for m in result.movements] == [str(first), str(second)]
    assert reservation(ledger, first)["status"] == "released" and reservation(ledger, second)["released"] == 1
    with pytest.raises(InsufficientStock):
        post(ledger, "release", 3)
    # ref_id narrows the release to the reservations of one order.
    with pytest.raises(InsufficientStock):
        post(ledger, "release", 1, ref_id="SO-1")
    post(ledger, "release", 2, ref_id="SO-2")
    assert level(ledger) == (10, 0, 0)


def test_consume_a_reservation_in_parts(ledger):
    receive(ledger, 10)
    res = reserve_id(ledger.reserve(SKU, A1, 5))
    assert deltas(ledger.consume(res, 3)) == [("ship", "", -3, -3, 0)]
    assert reservation(ledger, res) == {"qty": 5, "consumed": 3, "released": 0, "status": "held"}
    with pytest.raises(InsufficientStock) as caught:
        ledger.consume(res, 3)
    assert caught.value.available == 2
    ledger.consume(res, 2)
    assert reservation(ledger, res)["status"] == "consumed"
    assert level(ledger) == (5, 0, 0)
    with pytest.raises(ReservationClosed):
        ledger.consume(res, 1)
    with pytest.raises(UnknownReservation):
        ledger.consume(999, 1)
    with pytest.raises(InvalidInput):
        ledger.post(Move("ship", reservation_id=reserve_id(ledger.reserve(SKU, A1, 1)), sku="CAT-2", qty=1))


def test_consume_a_reservation_when_the_stock_is_held_in_lots(ledger):
    receive(ledger, 3, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    res = reserve_id(ledger.reserve(SKU, A1, 4))
    assert level(ledger, lot="") == (0, 4, 0)
    result = ledger.consume(res, 4)
    # The goods leave from the lots (first expiry first), the promise is released where it was held.
    assert deltas(result) == [("ship", "EARLY", -3, 0, 0), ("ship", "LATE", -1, 0, 0), ("release", "", 0, -4, 0)]
    assert {m.ref_id for m in result.movements} == {str(res)}
    assert reservation(ledger, res)["status"] == "consumed"
    assert level(ledger) == (4, 0, 0) and level(ledger, lot="") == (0, 0, 0)


def test_expire_reservations_uses_the_injected_clock(ledger, fake_clock):
    receive(ledger, 10)
    soon = clock.to_ts(fake_clock.last + timedelta(hours=1))
    later = clock.to_ts(fake_clock.last + timedelta(hours=2))
    first = reserve_id(ledger.reserve(SKU, A1, 2, expires_at=soon))
    second = reserve_id(ledger.reserve(SKU, A1, 3, expires_at=later))
    forever = reserve_id(ledger.reserve(SKU, A1, 1))
    partly = reserve_id(ledger.reserve(SKU, A1, 4, expires_at=soon))
    ledger.consume(partly, 1)
    assert ledger.expire_reservations() == []
    fake_clock.advance(hours=1)
    assert ledger.expire_reservations() == [first, partly]
    assert reservation(ledger, first)["status"] == "expired"
    assert reservation(ledger, partly) == {"qty": 4, "consumed": 1, "released": 3, "status": "expired"}
    assert level(ledger) == (9, 4, 0)
    expired = queries.history(ledger.db.connection(), kind="release", newest_first=False)
    assert [(m.ref_id, m.d_reserved, m.reason, m.device) for m in expired] == [
        (str(first), -2, "expired", "scheduler"), (str(partly), -3, "expired", "scheduler")]
    # An explicit moment wins over the clock.
    assert ledger.expire_reservations(now=fake_clock.last + timedelta(days=1)) == [second]
    assert reservation(ledger, forever)["status"] == "held"
    assert ledger.expire_reservations(now=fake_clock.last + timedelta(days=365)) == []
    assert level(ledger) == (9, 1, 0)


# --- transfers ------------------------------------------------------------------------------------------------

def test_a_transfer_goes_in_transit_and_arrives_in_parts(ledger):
    receive(ledger, 10)
    out = ledger.transfer(SKU, A1, A2, 6)
    code = out.movements[0].ref_id
    assert code == "BER-TR-000001" and out.movements[0].ref_type == "transfer"
    assert transfer_row(ledger, code) == {"sent": 6, "received": 0, "short": 0, "over": 0, "status": "in_transit",
                                          "closed_at": None}
    assert level(ledger, location=A1) == (4, 0, 0) and level(ledger, location=A2) == (0, 0, 6)
    assert deltas(ledger.transfer_in(code, 2)) == [("transfer_in", "", 2, 0, -2)]
    assert transfer_row(ledger, code)["status"] == "partial"
    assert level(ledger, location=A2) == (2, 0, 4)
    # By row id too, and the rest arrives plus one more than was sent: booked visibly.
    result = ledger.transfer_in("1", 5)
    assert deltas(result) == [("transfer_in", "", 4, 0, -4), ("discrepancy", "", 1, 0, 0)]
    assert result.movements[1].reason == "over_receipt"
    row = transfer_row(ledger, code)
    assert (row["received"], row["over"], row["short"], row["status"]) == (6, 1, 0, "received")
    assert row["closed_at"] is not None
    assert level(ledger, location=A2) == (7, 0, 0)
    with pytest.raises(TransferClosed):
        ledger.transfer_in(code, 1)


def test_closing_a_transfer_books_the_shortfall(ledger):
    receive(ledger, 10)
    code = ledger.transfer(SKU, A1, A2, 6).movements[0].ref_id
    result = ledger.transfer_in(code, 2, close=True)
    assert deltas(result) == [("transfer_in", "", 2, 0, -2), ("discrepancy", "", 0, 0, -4)]
    assert result.movements[1].reason == "short_receipt"
    row = transfer_row(ledger, code)
    assert (row["received"], row["short"], row["status"]) == (2, 4, "closed")
    assert level(ledger, location=A2) == (2, 0, 0)
    with pytest.raises(TransferClosed):
        ledger.transfer_in(code, 1)
    with pytest.raises(TransferClosed):
        ledger.transfer_in(code, 0, close=True)


def test_closing_with_nothing_received_writes_it_all_off(ledger):
    receive(ledger, 10)
    code = ledger.transfer(SKU, A1, A2, 3).movements[0].ref_id
    assert deltas(ledger.transfer_in(code, 0, close=True)) == [("discrepancy", "", 0, 0, -3)]
    assert transfer_row(ledger, code)["status"] == "closed"


def test_a_transfer_of_lots_arrives_lot_by_lot(ledger):
    receive(ledger, 3, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    out = ledger.transfer(SKU, A1, A2, 6)
    assert deltas(out) == [("transfer_out", "EARLY", -3, 0, 3), ("transfer_out", "LATE", -3, 0, 3)]
    code = out.movements[0].ref_id
    assert deltas(ledger.transfer_in(code, 4)) == [("transfer_in", "EARLY", 3, 0, -3),
                                                   ("transfer_in", "LATE", 1, 0, -1)]
    with pytest.raises(InvalidInput):
        ledger.post(Move("transfer_in", transfer=code, qty=1, lot="EARLY"))
    assert deltas(ledger.post(Move("transfer_in", transfer=code, qty=2, lot="LATE"))) == [
        ("transfer_in", "LATE", 2, 0, -2)]
    assert level(ledger, location=A2, lot="EARLY") == (3, 0, 0)
    assert level(ledger, location=A2, lot="LATE") == (3, 0, 0)
    assert transfer_row(ledger, code)["status"] == "received"


def test_transfer_requests_that_cannot_work(ledger):
    receive(ledger, 10)
    with pytest.raises(InvalidInput):
        ledger.transfer(SKU, A1, A1, 1)
    with pytest.raises(UnknownTransfer):
        ledger.transfer_in("BER-TR-000099", 1)
    code = ledger.transfer(SKU, A1, A2, 2).movements[0].ref_id
    with pytest.raises(InvalidInput):
        ledger.post(Move("transfer_in", transfer=code, qty=1, sku="CAT-2"))
    with pytest.raises(InvalidInput):
        ledger.post(Move("transfer_in", transfer="", qty=1))
    assert transfer_row(ledger, code)["status"] == "in_transit"


# --- reversals -----------------------------------------------------------------------------------------------

def _on_l1(kind, qty):
    return lambda led: led.post(Move(kind, sku=SKU, location=A1, qty=qty, lot="L1"))


REVERSIBLE = {
    "receive": _on_l1("receive", 4), "return_in": _on_l1("return_in", 4), "ship": _on_l1("ship", 4),
    "damage": _on_l1("damage", 4), "return_out": _on_l1("return_out", 4), "adjust up": _on_l1("adjust", 4),
    "adjust down": _on_l1("adjust", -4), "count": _on_l1("count", 7), "count same": _on_l1("count", 10),
}


@pytest.mark.parametrize("make", REVERSIBLE.values(), ids=REVERSIBLE.keys())
def test_a_reversal_undoes_a_movement_and_only_once(ledger, make):
    receive(ledger, 10, lot="L1", expiry="2026-05-01")
    before = level(ledger, lot="L1")
    m = make(ledger).movements[0]
    reversal = ledger.reverse(m.id, "typo", user="admin")
    r = reversal.movements[0]
    assert (r.kind, r.reverses_id, r.d_on_hand, r.lot, r.reason, r.user) == (
        "reversal", m.id, -m.d_on_hand, "L1", "typo", "admin")
    assert (r.expiry, r.ref_type, r.ref_id, r.unit_cost) == (m.expiry, m.ref_type, m.ref_id, m.unit_cost)
    assert level(ledger, lot="L1") == before
    # The original is untouched.
    assert queries.load_movements(ledger.db.connection(), "m.id = ?", (m.id,)) == [m]
    with pytest.raises(NotReversible) as caught:
        ledger.reverse(m.id, "again")
    assert caught.value.details["reversed_by"] == r.id
    with pytest.raises(NotReversible):
        ledger.reverse(r.id, "undo the undo")


def test_reversing_a_receipt_whose_stock_is_gone_is_refused(ledger):
    first = receive(ledger, 5).movements[0]
    post(ledger, "ship", 3)
    with pytest.raises(InsufficientStock) as caught:
        ledger.reverse(first.id, "wrong pallet")
    assert caught.value.available == 2
    # Nor may it take stock that is promised.
    second = receive(ledger, 5).movements[0]
    ledger.reserve(SKU, A1, 6)
    with pytest.raises(InsufficientStock):
        ledger.reverse(second.id, "wrong pallet")
    assert level(ledger) == (7, 6, 0)


@pytest.mark.parametrize("pick", ["reserve", "release", "consume", "transfer_out", "transfer_in", "over_receipt",
                                  "short_receipt"])
def test_reservations_transfers_and_discrepancies_are_not_reversed(ledger, pick):
    receive(ledger, 10)
    res = reserve_id(ledger.reserve(SKU, A1, 3))
    written = {"reserve": lambda: ledger.reserve(SKU, A1, 1),
               "release": lambda: ledger.release(res, 1),
               "consume": lambda: ledger.consume(res, 1)}
    if pick in written:
        movement = written[pick]().movements[0]
    else:
        code = ledger.transfer(SKU, A1, A2, 2).movements[0].ref_id
        if pick == "transfer_out":
            movement = queries.history(ledger.db.connection(), kind="transfer_out")[0]
        elif pick == "transfer_in":
            movement = ledger.transfer_in(code, 1).movements[0]
        elif pick == "over_receipt":
            movement = ledger.transfer_in(code, 3).movements[-1]
        else:
            movement = ledger.transfer_in(code, 1, close=True).movements[-1]
    count = movement_count(ledger)
    with pytest.raises(NotReversible):
        ledger.reverse(movement.id, "oops")
    assert movement_count(ledger) == count


def test_reverse_needs_a_known_movement_of_this_site_and_a_reason(ledger):
    m = receive(ledger, 1).movements[0]
    with pytest.raises(UnknownMovement):
        ledger.reverse(999, "oops")
    with pytest.raises(InvalidInput):
        ledger.reverse(m.id, "  ")
    # A movement replicated from WAW (as sync applies it) is reversed there, not here.
    register_key(ledger.db, FOREIGN_KEY)
    body = Body(1, "WAW", 1, 1, "", "count", SKU, FOREIGN_LOCATION, None, "", None, 1, 0, 0, None, None, None, None,
                "count", None, None, None, None, clock.now_ts())
    assert Inbox(ledger.db, SITE).receive([sign(encode_body(body), FOREIGN_KEY)]).applied == {"WAW": 1}
    waw_id = ledger.db.execute_sql("SELECT id FROM movement WHERE origin = 'WAW'").fetchone()[0]
    with pytest.raises(NotReversible) as caught:
        ledger.reverse(waw_id, "oops")
    assert caught.value.details["origin"] == "WAW"


# --- idempotency ---------------------------------------------------------------------------------------------

def test_an_op_id_seen_before_returns_the_earlier_movements_and_writes_nothing(ledger):
    receive(ledger, 10)
    moves = [Move("ship", sku=SKU, location=A1, qty=10), Move("receive", sku="CAT-2", location=A2, qty=1)]
    first = ledger.post(moves, op_id="scan-42", device="gun-1")
    assert not first.replayed and [m.op_id for m in first.movements] == ["scan-42", "scan-42"]
    count, seq = movement_count(ledger), head_seq(ledger)
    # A retry after the stock is gone still gets the earlier answer, not an error.
    again = ledger.post(list(moves), op_id="scan-42", device="gun-1")
    assert again.replayed and again.movements == first.movements and again.ids == first.ids
    assert (movement_count(ledger), head_seq(ledger)) == (count, seq)
    assert level(ledger) == (0, 0, 0)


def test_the_same_op_id_with_a_different_request_is_refused(ledger):
    receive(ledger, 10)
    post_ship = ledger.post(Move("ship", sku=SKU, location=A1, qty=2), op_id="k1")
    for other in (Move("ship", sku=SKU, location=A1, qty=3), Move("ship", sku=SKU, location=A2, qty=2),
                  [Move("ship", sku=SKU, location=A1, qty=2)] * 2):
        with pytest.raises(OpIdReused) as caught:
            ledger.post(other, op_id="k1")
        assert caught.value.details == {"op_id": "k1"}
    with pytest.raises(OpIdReused):
        ledger.reverse(post_ship.ids[0], "oops", op_id="k1")
    assert level(ledger) == (8, 0, 0) and movement_count(ledger) == 2


def test_a_failed_request_does_not_use_up_its_op_id(ledger):
    with pytest.raises(InsufficientStock):
        ledger.post(Move("ship", sku=SKU, location=A1, qty=2), op_id="k2")
    receive(ledger, 2)
    result = ledger.post(Move("ship", sku=SKU, location=A1, qty=2), op_id="k2")
    assert not result.replayed and result.movements[0].op_id == "k2"


def test_reverse_with_an_op_id_replays_too(ledger):
    m = receive(ledger, 3).movements[0]
    first = ledger.reverse(m.id, "typo", op_id="undo-1")
    again = ledger.reverse(m.id, "typo", op_id="undo-1")
    assert again.replayed and again.movements == first.movements
    with pytest.raises(OpIdReused):
        ledger.reverse(m.id, "other reason", op_id="undo-1")
    assert level(ledger) == (0, 0, 0)


@pytest.mark.parametrize("op_id", ["", "x" * 129, "line\nbreak", 42])
def test_op_ids_must_be_short_printable_text(ledger, op_id):
    with pytest.raises(InvalidInput) as caught:
        ledger.post(Move("receive", sku=SKU, location=A1, qty=1), op_id=op_id)
    assert caught.value.details["field"] == "op_id"


# --- transactions, immutability, sequence --------------------------------------------------------------------

def test_a_ledger_write_inside_another_transaction_is_refused(ledger):
    receive(ledger, 1)
    with ledger.db.atomic():
        with pytest.raises(RuntimeError, match="do not nest"):
            receive(ledger, 1)
        with pytest.raises(RuntimeError):
            ledger.expire_reservations()
    assert level(ledger) == (1, 0, 0) and movement_count(ledger) == 1


def test_movements_cannot_be_updated_or_deleted(ledger):
    receive(ledger, 5)
    with closing(sqlite3.connect(ledger.db.database)) as conn:
        for sql in ("UPDATE movement SET d_on_hand = 99", "UPDATE movement SET note = 'edited'",
                    "DELETE FROM movement", "DELETE FROM movement WHERE id = 1"):
            with pytest.raises(sqlite3.IntegrityError, match="immutable"):
                conn.execute(sql)
            conn.rollback()
    assert [m.d_on_hand for m in queries.history(ledger.db.connection())] == [5]


def test_sequence_numbers_are_gapless_even_when_posts_fail(ledger):
    receive(ledger, 5)
    for attempt in (lambda: post(ledger, "ship", 6), lambda: post(ledger, "receive", 1, sku="NOPE-1"),
                    lambda: post(ledger, "receive", 1, location=FOREIGN_LOCATION)):
        with pytest.raises((InsufficientStock, UnknownSku, ForeignLocation)):
            attempt()
        receive(ledger, 1)
    ledger.post([Move("ship", sku=SKU, location=A1, qty=1)] * 3)
    ledger.transfer(SKU, A1, A2, 2)
    seqs = [row[0] for row in ledger.db.execute_sql("SELECT seq FROM movement ORDER BY id")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 8
    assert head_seq(ledger) == 8
    assert {row for row in ledger.db.execute_sql("SELECT DISTINCT origin, epoch FROM movement")} == {(SITE, 1)}


# --- check ---------------------------------------------------------------------------------------------------

def _busy_day(ledger):
    receive(ledger, 10)
    receive(ledger, 4, lot="L1", expiry="2026-05-01")
    res = reserve_id(ledger.reserve(SKU, A1, 3))
    ledger.consume(res, 1)
    code = ledger.transfer(SKU, A1, A2, 2).movements[0].ref_id
    ledger.transfer_in(code, 1)
    ledger.transfer(SKU, A1, FOREIGN_LOCATION, 1)
    return res, code


def test_check_is_empty_after_a_busy_day(ledger):
    _busy_day(ledger)
    assert check(ledger.db.connection()) == []


@corrupts
@pytest.mark.parametrize("sql, what", [
    ("UPDATE stock SET on_hand = on_hand + 1 WHERE lot = 'L1'", "stock"),
    ("UPDATE stock SET in_transit = 0", "stock"),
    ("DELETE FROM stock WHERE lot = ''", "stock"),
    ("INSERT INTO stock (variant_id, location_id, lot, on_hand) SELECT id, 1, 'GHOST', 1 FROM variant"
     " WHERE sku = 'CAT-2'", "stock"),
    ("UPDATE site SET head_seq = head_seq + 1 WHERE id = 'BER'", "sequence"),
    ("UPDATE reservation SET qty_released = qty_released + 1", "reservations"),
    ("UPDATE transfer SET qty_received = qty_received + 1", "transfer"),
])
def test_check_reports_a_corrupted_projection(ledger, sql, what):
    _busy_day(ledger)
    with closing(sqlite3.connect(ledger.db.database)) as conn, conn:
        conn.execute(sql)
    found = check(ledger.db.connection())
    assert found and {d.what for d in found} == {what}
    assert all(d.message and d.to_dict()["what"] == what for d in found)


@corrupts
def test_check_reports_the_stored_and_recomputed_stock(ledger):
    receive(ledger, 5)
    with closing(sqlite3.connect(ledger.db.database)) as conn, conn:
        conn.execute("UPDATE stock SET on_hand = 7")
    (found,) = check(ledger.db.connection())
    assert found.details == {"sku": SKU, "location": A1, "lot": "", "stored": [7, 0, 0], "from_movements": [5, 0, 0]}


@corrupts
def test_check_reports_a_sequence_gap_written_behind_the_ledgers_back(ledger):
    """Triggers stop UPDATE and DELETE, so a gap can only come from a row inserted out of order."""
    receive(ledger, 5)
    with closing(sqlite3.connect(ledger.db.database)) as conn, conn:
        conn.execute("INSERT INTO movement (origin, epoch, seq, kind, variant_id, location_id, ts)"
                     " SELECT origin, epoch, seq + 2, 'count', variant_id, location_id, ts FROM movement")
        conn.execute("UPDATE site SET head_seq = 3 WHERE id = 'BER'")
    found = check(ledger.db.connection())
    assert [(d.what, d.details.get("min"), d.details.get("max")) for d in found] == [
        ("sequence", 1, 3), ("unsigned", None, None)]   # the hand-made row has no token either


def test_stock_as_of_now_equals_the_stock_levels(ledger, fake_clock):
    """The replay from movements and the projection describe the same stock, expiry included, also after a lot
    has gone (a summed line shows the earliest expiry of the lots still there).

    Regression (fixed in 2be52b8): stock_as_of took max(expiry) over every movement of a line, stock_levels
    min(expiry) over its stock rows.
    """
    conn = ledger.db.connection()
    receive(ledger, 5, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    receive(ledger, 2, sku="CAT-2", location=A2)
    before = fake_clock.last_ts, [queries.stock_levels(conn, by_lot=b) for b in (True, False)]
    post(ledger, "ship", 5, lot="EARLY")
    for ts, levels in (before, (fake_clock.last_ts, [queries.stock_levels(conn, by_lot=b) for b in (True, False)])):
        assert [queries.stock_as_of(conn, ts, by_lot=b) for b in (True, False)] == levels, ts


# --- reservations on a lot -----------------------------------------------------------------------------------

def test_a_reservation_of_a_lot_stays_consumable_after_other_shipments(ledger):
    """Units a lot reservation holds are not taken by shipments, nor by consuming a location-wide reservation.

    Regression (fixed in 2be52b8): first-expiry-first-out allocation counted on hand per lot and ignored the
    lot's reservation.
    """
    receive(ledger, 5, lot="EARLY", expiry="2026-04-01")
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    held = reserve_id(ledger.reserve(SKU, A1, 5, lot="EARLY"))
    assert deltas(post(ledger, "ship", 2)) == [("ship", "LATE", -2, 0, 0)]
    anywhere = reserve_id(ledger.reserve(SKU, A1, 3))
    assert deltas(ledger.consume(anywhere, 3)) == [("ship", "LATE", -3, 0, 0), ("release", "", 0, -3, 0)]
    assert level(ledger, lot="EARLY") == (5, 5, 0)
    assert deltas(ledger.consume(held, 5)) == [("ship", "EARLY", -5, -5, 0)]


def test_reserving_a_lot_needs_that_lot_available(ledger):
    """A reservation the ledger accepts must be one it can honour (regression, fixed in 2be52b8: only the location
    total was checked)."""
    receive(ledger, 5, lot="LATE", expiry="2026-09-01")
    with pytest.raises(InsufficientStock):
        ledger.reserve(SKU, A1, 2, lot="NO-SUCH-LOT")


def test_reversing_a_receipt_into_a_lot_leaves_what_the_lots_reservation_holds(ledger):
    """A reversal takes back only units that are free in their lot, like a shipment of that lot would.

    Fails at 46bb06d: reverse() checks the lot's on hand and the location's available, not the lot's available,
    so the lot reservation below could no longer be consumed.
    """
    wrong = receive(ledger, 5, lot="EARLY", expiry="2026-04-01").movements[0]
    receive(ledger, 5)
    held = reserve_id(ledger.reserve(SKU, A1, 5, lot="EARLY"))
    with pytest.raises(InsufficientStock):
        ledger.reverse(wrong.id, "booked to the wrong lot")
    assert deltas(ledger.consume(held, 5)) == [("ship", "EARLY", -5, -5, 0)]


def test_a_reservation_expiry_must_be_a_timestamp(ledger):
    """`expires_at` is compared as text with UTC timestamps; free text would never expire.

    Regression (fixed in 2be52b8): Move.validate did not look at expires_at.
    """
    receive(ledger, 5)
    with pytest.raises(InvalidInput) as caught:
        ledger.reserve(SKU, A1, 2, expires_at="next tuesday")
    assert caught.value.details["field"] == "expires_at"
