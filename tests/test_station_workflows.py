"""Station workflows end to end through the desk: real SQLite, the real ledger, scans as a gun delivers them.

Each scenario is a script of (scan, expected level, words the message must contain); after it the ledger's
stock and the scan log are checked. The pure state machine alone is covered in test_workflow.py.
"""

from __future__ import annotations

import json

import pytest

from appliance.errors import InvalidInput
from appliance.ledger.requests import Move
from appliance.scanning.station import StationDesk
from appliance.scanning.scan import Scan
from appliance.scanning.station_actions import AlreadyReplayed
from appliance.ledger.sites import add_user

EAN = "4006381333931"            # DOG-5, each
CASE = "14006381333938"          # DOG-5, case of 12
CAT_EAN = "5901234123457"        # CAT-2
UNKNOWN = "9501101530003"        # a valid GTIN no catalog here knows
GS1_LOT = "]C1010400638133393110L42\x1d17270315"   # DOG-5, lot L42, expiry 2027-03-15


def gs1(lot: str, expiry: str = "270315", gtin: str = "04006381333931") -> str:
    return f"]C101{gtin}10{lot}\x1d17{expiry}"


@pytest.fixture
def desk(ledger):
    db = ledger.db
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-5'", (EAN,))
    db.execute_sql("INSERT INTO pack (variant_id, name, qty) SELECT id, 'case', 12 FROM variant WHERE sku = 'DOG-5'")
    db.execute_sql("INSERT INTO barcode (code, variant_id, pack_id) SELECT ?, v.id, p.id FROM variant v"
                   " JOIN pack p ON p.variant_id = v.id WHERE v.sku = 'DOG-5'", (CASE,))
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'CAT-2'",
                   (CAT_EAN,))
    return StationDesk(db, ledger, idle_timeout_s=300)


class Gun:
    """Scans at one station, one second apart unless told otherwise."""

    def __init__(self, desk: StationDesk, station: str = "dock-1", start: float = 1_800_000_000.0) -> None:
        self.desk, self.station, self.at = desk, station, start

    def __call__(self, raw: str, after: float = 1.0):
        self.at += after
        return self.desk.handle(Scan(self.station, "test-gun", raw, self.at))

    def script(self, steps):
        for raw, level, words in steps:
            feedback = self(raw)
            assert (feedback.level, words in feedback.message) == (level, True), (raw, feedback)
        return feedback


def on_hand(db, sku: str, location: str, lot: str | None = None) -> int:
    return db.execute_sql(
        "SELECT coalesce(sum(s.on_hand), 0) FROM stock s JOIN variant v ON v.id = s.variant_id"
        " JOIN location l ON l.id = s.location_id WHERE v.sku = ? AND l.code = ? AND (? IS NULL OR s.lot = ?)",
        (sku, location, lot, lot)).fetchone()[0]


def stock_in(ledger, sku="DOG-5", location="BER-A-01", qty=20, lot=""):
    ledger.post(Move("receive", sku=sku, location=location, qty=qty, lot=lot,
                     expiry="2027-01-01" if lot else None))


def test_receive_free_by_each_case_quantity_code_and_gs1_lot(desk, ledger):
    gun = Gun(desk)
    last = gun.script([
        ("CMD-RECEIVE", "ok", "Receive"),
        (EAN, "error", "Scan the receiving location first"),
        ("BER-A-01", "ok", "Receiving into BER-A-01"),
        (EAN, "ok", "Received 1 × DOG-5 into BER-A-01"),
        (CASE, "ok", "Received 12 × DOG-5"),
        ("QTY-3", "ok", "Next item × 3"),
        (CASE, "ok", "Received 36 × DOG-5"),
        (GS1_LOT, "ok", "Received 1 × DOG-5 lot L42"),
    ])
    assert [(s.sku, s.location, s.on_hand) for s in last.stock] == [("DOG-5", "BER-A-01", 50)]
    assert on_hand(ledger.db, "DOG-5", "BER-A-01", "L42") == 1
    expiry, op_id, device = ledger.db.execute_sql(
        "SELECT expiry, op_id, device FROM movement WHERE lot = 'L42'").fetchone()
    assert expiry == "2027-03-15" and op_id.startswith("scan:dock-1:") and device == "test-gun"
    # The prompt tells what comes next, and the mode stays until changed.
    assert last.mode == "receive" and last.prompt == "Scan the items to receive into BER-A-01"


def test_a_purchase_order_this_box_does_not_have_is_refused(desk, ledger):
    # Receiving against real orders: test_station_po_receive.py.
    gun = Gun(desk)
    gun.script([("CMD-RECEIVE", "ok", "Receive"), ("BER-A-02", "ok", "Receiving into"),
                ("BER-PO-000042", "error", "no purchase order 'BER-PO-000042'"),
                (EAN, "ok", "Received 1 × DOG-5 into BER-A-02")])
    assert ledger.db.execute_sql("SELECT ref_type, ref_id FROM movement").fetchall() == [(None, None)]


def test_ship_free_with_low_stock_warning_and_refusal_that_books_nothing(desk, ledger):
    stock_in(ledger, qty=5)
    ledger.db.execute_sql("UPDATE variant SET reorder_point = 2 WHERE sku = 'DOG-5'")
    gun = Gun(desk)
    gun.script([
        ("CMD-SHIP", "ok", "Ship"),
        ("BER-A-01", "ok", "Shipping from BER-A-01"),
        ("QTY-2", "ok", "× 2"),
        (EAN, "ok", "Shipped 2 × DOG-5 from BER-A-01"),
        (EAN, "warning", "Only 2 left at BER-A-01"),
        ("QTY-9", "ok", "× 9"),
        (EAN, "error", "Only 2 left at BER-A-01"),
    ])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 2
    # The refused scan is in the log with its reason; the QTY code it would have used is still waiting.
    log = ledger.db.execute_sql("SELECT outcome, message, movement_ids FROM scan_log ORDER BY id DESC").fetchone()
    assert log == ("error", "Only 2 left at BER-A-01", None)
    assert gun(EAN).message.startswith("Shipped 1 × DOG-5") is False   # QTY-9 still applies: refused again
    gun("CMD-UNDO")
    assert gun(EAN).message == "Shipped 1 × DOG-5 from BER-A-01. Only 1 left at BER-A-01"
    assert gun(EAN).message == "Shipped 1 × DOG-5 from BER-A-01. None left at BER-A-01"


def test_ship_for_an_order_consumes_its_reservation_first(desk, ledger):
    stock_in(ledger, qty=10)
    ledger.reserve("DOG-5", "BER-A-01", 3, ref="ORDER-1001")
    gun = Gun(desk)
    gun.script([("CMD-PICK", "ok", "Ship"), ("BER-A-01", "ok", "Shipping"),
                ("ORDER-1001", "ok", "Order ORDER-1001"),
                ("QTY-4", "ok", "× 4"), (EAN, "ok", "Shipped 4 × DOG-5 from BER-A-01 for ORDER-1001 (3 reserved)")])
    # A bin label this box does not know is never taken for an order number: it waits to be linked.
    packing = Gun(desk, "packing")
    packing("CMD-SHIP"), packing("BER-A-01")
    typo = packing("BER-A-11")
    assert typo.unresolved and typo.message == "Unknown barcode BER-A-11: kept in the scan log to be linked"
    assert packing("ORDER-5").message == "Order ORDER-5: scan the items"
    status = ledger.db.execute_sql("SELECT status, qty_consumed FROM reservation").fetchone()
    assert status == ("consumed", 3)
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 6


def test_move_holds_items_then_posts_at_the_destination_and_undo_moves_back(desk, ledger):
    stock_in(ledger, qty=3)
    gun = Gun(desk)
    gun.script([
        ("CMD-MOVE", "ok", "Move"),
        ("BER-A-01", "ok", "Taking from BER-A-01"),
        (EAN, "ok", "Took 1 × DOG-5"),
        ("QTY-2", "ok", "× 2"),
        (EAN, "ok", "(2 held)"),
        (EAN, "error", "Only 3 left at BER-A-01"),        # 4 would be more than there is: refused at once
        ("CMD-RECEIVE", "error", "wait for their destination"),
        ("BER-A-01", "error", "where the items come from"),
        ("BER-A-02", "ok", "Moved 3 × DOG-5 from BER-A-01 to BER-A-02"),
    ])
    assert (on_hand(ledger.db, "DOG-5", "BER-A-01"), on_hand(ledger.db, "DOG-5", "BER-A-02")) == (0, 3)
    gun.script([("CMD-UNDO", "ok", "Undone: Moved 3 × DOG-5"), ("CMD-UNDO", "warning", "Nothing to undo")])
    assert (on_hand(ledger.db, "DOG-5", "BER-A-01"), on_hand(ledger.db, "DOG-5", "BER-A-02")) == (3, 0)
    assert ledger.db.execute_sql("SELECT count(*) FROM stock WHERE in_transit != 0").fetchone()[0] == 0


def test_transfer_to_another_site_and_receiving_it_there(desk, ledger):
    ledger.db.execute_sql("UPDATE site SET location_prefix = 'WAW' WHERE id = 'WAW'")
    stock_in(ledger, qty=10, lot="L1")
    gun = Gun(desk)
    gun.script([
        ("CMD-TRANSFER", "ok", "Transfer to another site"),
        ("BER-A-01", "ok", "Sending from BER-A-01"),
        ("QTY-4", "ok", "× 4"),
        (EAN, "ok", "Took 4 × DOG-5"),
        ("BER-A-02", "error", "is on this site"),
        ("WAW-B-07", "ok", "Sent 4 unit(s) to WAW-B-07 as BER-TR-000001"),   # first sight of WAW-B-07
        ("CMD-UNDO", "warning", "Nothing to undo"),
    ])
    assert ledger.db.execute_sql("SELECT status, qty_sent FROM transfer").fetchone() == ("in_transit", 4)
    # A transfer addressed to another site cannot be received here.
    assert gun("BER-TR-000001").message.startswith("Refused: transfer BER-TR-000001 goes to WAW-B-07")


def test_transfer_in_by_scanning_the_document_then_items(desk, ledger):
    stock_in(ledger, qty=10)
    ledger.transfer("DOG-5", "BER-A-01", "BER-A-02", 5)
    gun = Gun(desk, "dock-2")
    gun.script([
        ("BER-TR-000001", "ok", "Transfer BER-TR-000001 from BER: DOG-5 into BER-A-02, 0 of 5 received"),
        ("QTY-3", "ok", "× 3"),
        (EAN, "ok", "3 of 5 received, 2 still on the way"),
        (CAT_EAN, "error", "carries DOG-5, not CAT-2"),
        ("CMD-DONE", "ok", "Transfer BER-TR-000001: 3 of 5 received, 2 still on the way"),
    ])
    assert on_hand(ledger.db, "DOG-5", "BER-A-02") == 3


def test_cycle_count_posts_differences_and_zeroes_what_was_not_scanned(desk, ledger):
    stock_in(ledger, qty=7)
    stock_in(ledger, sku="CAT-2", qty=4)
    gun = Gun(desk)
    gun.script([
        ("CMD-COUNT", "ok", "Count"),
        ("BER-A-01", "ok", "Counting BER-A-01"),
        (CASE, "ok", "Counted 12 × DOG-5 (total 12)"),
        (EAN, "ok", "(total 13)"),
        (EAN, "ok", "(total 14)"),
        ("CMD-UNDO", "ok", "Took back 1 × DOG-5"),
        ("BER-A-02", "error", "not posted"),
        ("CMD-DONE", "warning", "Count of BER-A-01 posted: 2 difference(s): DOG-5 +6, CAT-2 -4"),
    ])
    assert (on_hand(ledger.db, "DOG-5", "BER-A-01"), on_hand(ledger.db, "CAT-2", "BER-A-01")) == (13, 0)
    kinds = ledger.db.execute_sql("SELECT kind, reason, ref_type FROM movement WHERE kind = 'count'").fetchall()
    assert kinds == [("count", "cycle_count", "count")] * 2
    # A recount that agrees is still written: the evidence that someone looked.
    gun.script([("BER-A-01", "ok", "Counting"), ("QTY-13", "ok", "× 13"), (EAN, "ok", "total 13"),
                ("CMD-DONE", "ok", "no differences")])


def test_counting_lot_stock_needs_the_lot_label(desk, ledger):
    stock_in(ledger, qty=5, lot="L42")
    gun = Gun(desk)
    gun.script([("CMD-COUNT", "ok", "Count"), ("BER-A-01", "ok", "Counting"),
                (EAN, "error", "held in lots L42: scan the label that carries the lot"),
                (gs1("L42"), "ok", "Counted 1 × DOG-5 lot L42"),
                ("CMD-DONE", "warning", "DOG-5 lot L42 -4")])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01", "L42") == 1


def test_lookup_of_items_and_locations_across_sites(desk, ledger):
    stock_in(ledger, qty=7)
    stock_in(ledger, location="BER-A-02", qty=2)
    gun = Gun(desk)
    gun.script([(EAN, "ok", "DOG-5 5 kg: 7 at BER-A-01, 2 at BER-A-02 (9 on this site)"),
                ("BER-A-01", "ok", "BER-A-01: 7 × DOG-5"),
                (CAT_EAN, "warning", "none in stock anywhere")])


def test_undo_of_a_receipt_and_commands_that_make_no_sense_here(desk, ledger):
    gun = Gun(desk)
    gun.script([("CMD-RECEIVE", "ok", "Receive"), ("BER-A-01", "ok", "Receiving"), (CASE, "ok", "Received 12"),
                ("CMD-UNDO", "ok", "Undone: Received 12 × DOG-5 into BER-A-01"),
                ("CMD-PRINT", "ok", "Print: scan the item or location"), ("CMD-PRINT", "ok", "No label printed"),
                ("WAW-A-01", "error", "belongs to site WAW"),
                ("CMD-DONE", "ok", "Done")])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 0
    assert ledger.db.execute_sql("SELECT kind FROM movement ORDER BY id").fetchall() == [("receive",), ("reversal",)]


def test_badges_name_who_booked(desk, ledger):
    add_user(ledger.db, "jan", "Jan Kowalski")
    gun = Gun(desk)
    gun.script([("USR-NOBODY", "error", "unknown user"), ("USR-JAN", "ok", "Hello Jan Kowalski"),
                ("CMD-RECEIVE", "ok", "Receive"), ("BER-A-01", "ok", "Receiving"), (EAN, "ok", "Received")])
    assert ledger.db.execute_sql("SELECT user_login FROM movement").fetchall() == [("jan",)]


def test_an_idle_session_times_out_safely(desk, ledger):
    stock_in(ledger, qty=5)
    gun = Gun(desk)
    gun.script([("USR-ADMIN", "ok", "Hello"), ("CMD-MOVE", "ok", "Move"), ("BER-A-01", "ok", "Taking"),
                (EAN, "ok", "Took")])
    late = gun("BER-A-02", after=301)
    # The carried item was dropped, nothing was booked, and the scan is read afresh in lookup mode.
    assert late.level == "warning" and late.message.startswith("Session timed out after 5 min idle; dropped 1")
    assert "BER-A-02 is empty" in late.message and late.mode == "lookup"
    assert ledger.db.execute_sql("SELECT count(*) FROM movement WHERE kind != 'receive'").fetchone()[0] == 0
    gun("CMD-RECEIVE"), gun("BER-A-01")
    gun(EAN)
    assert ledger.db.execute_sql("SELECT user_login FROM movement ORDER BY id DESC").fetchone() == (None,)


def test_stations_keep_their_own_sessions_in_the_database(desk, ledger):
    stock_in(ledger, qty=5)
    dock, packing = Gun(desk, "dock-1"), Gun(desk, "packing")
    dock("CMD-COUNT"), dock("BER-A-01"), dock(EAN)
    packing("CMD-SHIP"), packing("BER-A-01")
    # A new desk (another process, or the agent after a power cut) carries on where the station was.
    again = Gun(StationDesk(ledger.db, ledger), "dock-1", start=dock.at)
    assert again("CMD-DONE").message == "Count of BER-A-01 posted: 1 difference(s): DOG-5 -4"
    assert Gun(StationDesk(ledger.db, ledger), "packing", start=packing.at)(EAN).message.startswith(
        "Shipped 1 × DOG-5 from BER-A-01")


def test_bad_scans_are_explained_and_logged(desk, ledger):
    gun = Gun(desk)
    gun.script([("CMD-JUMP", "error", "command CMD-JUMP: unknown"),
                ("4006381333932", "error", "check digit"),
                ("]C100106141411234567897", "error", "pallets are not tracked")])
    outcomes = ledger.db.execute_sql("SELECT outcome FROM scan_log").fetchall()
    assert outcomes == [("error",)] * 3


def test_unknown_code_is_kept_then_linked_and_replayed_in_its_session_once(desk, ledger):
    gun = Gun(desk)
    gun("CMD-RECEIVE"), gun("BER-A-01"), gun("QTY-2")
    unknown = gun(UNKNOWN)
    assert (unknown.level, unknown.unresolved) == ("error", True)
    assert "kept in the scan log to be linked" in unknown.message
    gun("CMD-SHIP")   # the station moves on; the replay still receives, into BER-A-01, × 2
    row = ledger.db.execute_sql("SELECT outcome, session FROM scan_log WHERE id = ?", (unknown.scan_id,)).fetchone()
    assert row[0] == "unresolved" and json.loads(row[1])["qty"] == 2

    from appliance.scanning.linking import link
    linked = link(ledger.db, "BER", unknown.scan_id, sku="CAT-2")
    assert linked == {"code": "0" + UNKNOWN, "sku": "CAT-2", "pack": None, "location": None,
                      "waiting": [unknown.scan_id]}
    replayed = desk.replay(unknown.scan_id)
    assert replayed.level == "ok" and replayed.message == "Received 2 × CAT-2 into BER-A-01"
    assert on_hand(ledger.db, "CAT-2", "BER-A-01") == 2
    assert ledger.db.execute_sql("SELECT replayed_by, resolved_at IS NOT NULL FROM scan_log WHERE id = ?",
                                 (unknown.scan_id,)).fetchone() == (replayed.scan_id, 1)
    with pytest.raises(AlreadyReplayed):
        desk.replay(unknown.scan_id)
    # The station itself is still shipping, and now knows the code.
    assert gun(UNKNOWN).message == "Scan the location to ship from first"


def test_a_scan_that_was_not_unresolved_is_not_replayed(desk, ledger):
    feedback = Gun(desk)("CMD-RECEIVE")
    with pytest.raises(InvalidInput, match="was not unresolved"):
        desk.replay(feedback.scan_id)


def test_linking_refuses_codes_already_known_and_foreign_locations(desk, ledger):
    from appliance.scanning.linking import link
    gun = Gun(desk)
    known = gun(EAN)
    with pytest.raises(InvalidInput, match="already linked to DOG-5"):
        link(ledger.db, "BER", known.scan_id, sku="CAT-2")
    with pytest.raises(InvalidInput, match="CAT-2 has no pack 'pallet'; its packs: none"):
        link(ledger.db, "BER", gun(UNKNOWN).scan_id, sku="CAT-2", pack="pallet")
    new_bin = gun("BER-Z-99")
    assert new_bin.unresolved
    link(ledger.db, "BER", new_bin.scan_id, location=True)
    assert desk.replay(new_bin.scan_id).message == "BER-Z-99 is empty"
    stranger = gun("KRK-A-01")
    with pytest.raises(InvalidInput, match="not a location code of this site"):
        link(ledger.db, "BER", stranger.scan_id, location=True)


def test_a_box_that_is_recovering_refuses_scans_visibly(desk, ledger):
    ledger.db.execute_sql("UPDATE site SET recovering = 1 WHERE id = 'BER'")
    gun = Gun(desk)
    gun("CMD-RECEIVE"), gun("BER-A-01")
    refused = gun(EAN)
    assert refused.level == "error" and "recovering" in refused.message.lower()
    assert ledger.db.execute_sql("SELECT count(*) FROM scan_log").fetchone()[0] == 3


def test_a_scan_whose_transaction_fails_is_still_logged(desk, ledger, monkeypatch):
    def broken(ops, action):
        raise KeyError("a bug")
    monkeypatch.setattr("appliance.scanning.station_actions.carry_out", broken)
    failed = Gun(desk)(EAN)
    assert failed.level == "error" and failed.message.startswith("Not booked: the box could not carry out")
    row = ledger.db.execute_sql("SELECT raw, outcome, message FROM scan_log WHERE id = ?",
                                (failed.scan_id,)).fetchone()
    assert row == (EAN, "error", failed.message)
