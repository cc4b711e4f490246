"""Receiving against a purchase order by scan, through the station desk: real SQLite, the real ledger and the
real order functions. The order's number opens it (checked: sent or partial only), each item is booked against
its line (movement ref `<number>/<line>`), received quantities, variances and status follow in the scan's
transaction, and CMD-UNDO takes a receipt off the order again."""

from __future__ import annotations

import json
from datetime import date

import pytest
from test_station_workflows import CASE, CAT_EAN, EAN, GS1_LOT, Gun, on_hand
from webtools import csrf

from appliance.ledger.requests import Move
from appliance.ledger.sites import add_location
from appliance.purchasing import orders
from appliance.scanning import station_actions, workflow as wf
from appliance.scanning.station import StationDesk
from appliance.scanning.workflow import Line, Seen, Session

BIG_EAN = "5901234123471"        # DOG-15, on none of the orders below unless asked


def add_barcodes(db) -> None:
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-5'", (EAN,))
    db.execute_sql("INSERT INTO pack (variant_id, name, qty) SELECT id, 'case', 12 FROM variant WHERE sku = 'DOG-5'")
    db.execute_sql("INSERT INTO barcode (code, variant_id, pack_id) SELECT ?, v.id, p.id FROM variant v"
                   " JOIN pack p ON p.variant_id = v.id WHERE v.sku = 'DOG-5'", (CASE,))
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'CAT-2'",
                   (CAT_EAN,))
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-15'",
                   (BIG_EAN,))


@pytest.fixture
def desk(ledger):
    add_barcodes(ledger.db)
    return StationDesk(ledger.db, ledger, idle_timeout_s=300)


def purchase_order(ledger, lines=(("DOG-5", 20), ("CAT-2", 4)), *, ship_to="BER-A-01", send=True,
                   site="BER", prefix="PO") -> str:
    with ledger.write(user="admin") as ops:
        conn = ops.conn
        supplier = conn.execute("INSERT INTO supplier (name, created_at) VALUES ('Acme Feed', ?)"
                                " ON CONFLICT DO NOTHING RETURNING id", (ops.ts,)).fetchone()
        supplier = supplier[0] if supplier else conn.execute("SELECT id FROM supplier").fetchone()[0]
        ship_to_id = conn.execute("SELECT id FROM location WHERE code = ?", (ship_to,)).fetchone()[0]
        po_id, number = orders.create(conn, site=site, prefix=prefix, supplier_id=supplier, ship_to_id=ship_to_id,
                                      ts=ops.ts, user="admin")
        for sku, qty in lines:
            variant = conn.execute("SELECT id FROM variant WHERE sku = ?", (sku,)).fetchone()[0]
            orders.add_line(conn, po_id, variant, qty, 100, ops.ts)
        if send:
            orders.mark_sent(conn, number, ts=ops.ts, user="admin", sent_to="download", today=date(2026, 3, 2))
    return number


def order_state(ledger, number: str) -> tuple[str, list[tuple[int, int]]]:
    po_id, status, _ = ledger.db.execute_sql("SELECT id, status, site_id FROM purchase_order WHERE number = ?",
                                             (number,)).fetchone()
    received = ledger.db.execute_sql("SELECT line_no, qty_received FROM purchase_order_line WHERE po_id = ?"
                                     " ORDER BY line_no", (po_id,)).fetchall()
    return status, [tuple(row) for row in received]


def events(ledger, number: str) -> list[tuple[str, dict]]:
    return [(kind, json.loads(detail)) for kind, detail in ledger.db.execute_sql(
        "SELECT e.kind, e.detail FROM purchase_order_event e JOIN purchase_order po ON po.id = e.po_id"
        " WHERE po.number = ? ORDER BY e.id", (number,))]


def movements(ledger) -> list[tuple]:
    return [tuple(row) for row in ledger.db.execute_sql(
        "SELECT m.kind, v.sku, l.code, m.d_on_hand, m.lot, m.expiry, m.ref_type, m.ref_id FROM movement m"
        " JOIN variant v ON v.id = m.variant_id JOIN location l ON l.id = m.location_id ORDER BY m.id")]


def test_a_sent_order_is_received_by_scan_partly_then_in_full(desk, ledger):
    number = purchase_order(ledger)
    assert number == "BER-PO-0001"
    gun = Gun(desk)
    gun("USR-ADMIN")
    opened = gun(number)
    assert (opened.level, opened.mode) == ("ok", "receive")
    assert opened.message == ("BER-PO-0001 from Acme Feed, 2 of 2 line(s) open: receiving into BER-A-01, its "
                              "delivery location (scan another to change)")
    assert opened.prompt == ("Scan the items of BER-PO-0001 to receive into BER-A-01; still to come: 20 × DOG-5, "
                             "4 × CAT-2")
    # A location scanned after the order is where the goods go; a case counts its pack, QTY-n multiplies.
    gun.script([("BER-A-02", "ok", "Receiving BER-PO-0001 into BER-A-02"),
                (CASE, "ok", "Received 12 × DOG-5 into BER-A-02 for BER-PO-0001 line 1: 12 of 20")])
    assert order_state(ledger, number) == ("partial", [(1, 12), (2, 0)])
    last = gun.script([("QTY-7", "ok", "× 7"), (GS1_LOT, "ok", "Received 7 × DOG-5 lot L42 into BER-A-02"),
                       (EAN, "ok", "for BER-PO-0001 line 1: line complete")])
    assert last.prompt.endswith("still to come: 4 × CAT-2")
    assert [(s.sku, s.location, s.on_hand) for s in last.stock] == [("DOG-5", "BER-A-02", 20)]
    gun("QTY-4")
    done = gun(CAT_EAN)
    assert (done.level, done.message) == ("ok", "Received 4 × CAT-2 into BER-A-02 for BER-PO-0001 line 2: line "
                                                "complete. BER-PO-0001 received in full")
    assert done.prompt == "Scan the items of BER-PO-0001 to receive into BER-A-02; every line is in: CMD-DONE"
    assert order_state(ledger, number) == ("received", [(1, 20), (2, 4)])
    assert movements(ledger) == [
        ("receive", "DOG-5", "BER-A-02", 12, "", None, "purchase_order", "BER-PO-0001/1"),
        ("receive", "DOG-5", "BER-A-02", 7, "L42", "2027-03-15", "purchase_order", "BER-PO-0001/1"),
        ("receive", "DOG-5", "BER-A-02", 1, "", None, "purchase_order", "BER-PO-0001/1"),
        ("receive", "CAT-2", "BER-A-02", 4, "", None, "purchase_order", "BER-PO-0001/2")]
    received = [detail for kind, detail in events(ledger, number) if kind == "received"]
    assert [(d["location"], d["lines"], d["variances"]) for d in received][1] == (
        "BER-A-02", [{"line": 1, "qty": 7, "lot": "L42", "expiry": "2027-03-15"}], [])
    assert [kind for kind, _ in events(ledger, number)][-2:] == ["received", "closed"]
    # Every receipt carries the scan's op id, and who scanned (the badge) is in the order's history.
    assert {row[0].split(":")[0] for row in ledger.db.execute_sql("SELECT op_id FROM movement")} == {"scan"}
    assert ledger.db.execute_sql("SELECT DISTINCT e.user FROM purchase_order_event e WHERE kind = 'received'"
                                 ).fetchall() == [("admin",)]
    assert gun("CMD-DONE").message == "BER-PO-0001 received in full"
    # A closed order is not received against again: extra goods go in without it.
    refused = gun(number)
    assert refused.level == "error" and "already received in full and closed" in refused.message
    assert refused.mode == "lookup"


def test_a_location_scanned_for_free_receiving_is_kept_for_the_order(desk, ledger):
    number = purchase_order(ledger)
    gun = Gun(desk)
    gun.script([("CMD-RECEIVE", "ok", "Receive"), ("BER-A-02", "ok", "Receiving into BER-A-02"),
                (number, "ok", "2 of 2 line(s) open: receiving into BER-A-02"), (EAN, "ok", "into BER-A-02")])
    # The next order starts at its own delivery location, not where the previous one went.
    second = purchase_order(ledger, (("DOG-15", 3),), ship_to="BER-A-01")
    assert gun(second).message.endswith("receiving into BER-A-01, its delivery location (scan another to change)")
    # Numbered under another prefix ([purchasing] po_prefix), an order this box has is still recognised.
    other = purchase_order(ledger, (("DOG-15", 3),), prefix="EK")
    assert other == "BER-EK-0001" and gun(other).message.startswith("BER-EK-0001 from Acme Feed, 1 of 1 line(s)")


def test_over_delivery_is_booked_with_a_warning_and_recorded_as_a_variance(desk, ledger):
    number = purchase_order(ledger, (("DOG-5", 10), ("CAT-2", 4)))
    gun = Gun(desk)
    gun.script([(number, "ok", "receiving"), ("QTY-9", "ok", "× 9"), (EAN, "ok", "line 1: 9 of 10")])
    over = gun(CASE)
    assert (over.level, over.message) == (
        "warning", "Received 12 × DOG-5 into BER-A-01 for BER-PO-0001 line 1: over-delivery of 11 (21 received, "
                   "10 ordered)")
    again = gun(EAN)
    assert again.level == "warning" and again.message.endswith("over-delivery of 1 (22 received, 10 ordered)")
    assert order_state(ledger, number) == ("partial", [(1, 22), (2, 0)])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 22
    variances = [detail["variances"] for kind, detail in events(ledger, number) if kind == "received"]
    assert variances == [[], [{"line": 1, "sku": "DOG-5", "over": 11}], [{"line": 1, "sku": "DOG-5", "over": 12}]]
    # Over on one line, the other still open: the prompt still asks for it.
    assert again.prompt.endswith("still to come: 4 × CAT-2")


def test_an_item_not_on_the_order_is_refused_and_nothing_is_booked(desk, ledger):
    number = purchase_order(ledger)
    gun = Gun(desk)
    gun.script([(number, "ok", "receiving"), ("QTY-2", "ok", "× 2")])
    refused = gun(BIG_EAN)
    assert (refused.level, refused.message) == (
        "error", "Refused: DOG-15 is not on BER-PO-0001: nothing booked. Set it aside, or receive it without the "
                 "order (CMD-RECEIVE)")
    assert movements(ledger) == [] and order_state(ledger, number) == ("sent", [(1, 0), (2, 0)])
    assert [kind for kind, _ in events(ledger, number)] == ["created", "sent"]
    # The session is as it was: still receiving the order, QTY-2 still waiting for the next item.
    assert refused.mode == "receive" and "still to come: 20 × DOG-5" in refused.prompt
    assert gun(EAN).message.startswith("Received 2 × DOG-5 into BER-A-01 for BER-PO-0001 line 1")
    # CMD-RECEIVE leaves the order and receives freely at the same place.
    gun.script([("CMD-RECEIVE", "ok", "Receive without an order into BER-A-01"),
                (BIG_EAN, "ok", "Received 1 × DOG-15 into BER-A-01")])
    assert movements(ledger)[-1][-2:] == (None, None)
    assert order_state(ledger, number) == ("partial", [(1, 2), (2, 0)])


@pytest.mark.parametrize("state, words", [
    ("draft", "is a draft, not sent to the supplier yet: send it first (appliance po send BER-PO-0001)"),
    ("cancelled", "was cancelled: set the goods aside and ask purchasing"),
    ("received", "is already received in full and closed"),
])
def test_an_order_that_is_not_open_for_receiving_is_refused_with_its_status(desk, ledger, state, words):
    number = purchase_order(ledger, send=state != "draft")
    with ledger.write(user="admin") as ops:
        if state == "cancelled":
            orders.cancel(ops.conn, number, ts=ops.ts, user="admin")
        if state == "received":
            orders.receive(ops, number, [orders.Receipt(1, 20), orders.Receipt(2, 4)])
    gun = Gun(desk)
    gun.script([("CMD-RECEIVE", "ok", "Receive"), ("BER-A-02", "ok", "Receiving into")])
    refused = gun(number)
    assert refused.level == "error" and words in refused.message and "CMD-RECEIVE" in refused.message
    # Nothing changed: the station still receives freely into BER-A-02.
    assert refused.prompt == "Scan the items to receive into BER-A-02"
    assert gun(EAN).message == "Received 1 × DOG-5 into BER-A-02"
    assert order_state(ledger, number)[0] == state


def test_unknown_order_numbers_are_refused_but_a_location_named_like_one_stays_a_location(desk, ledger):
    gun = Gun(desk)
    # Both lengths: the 4 digits the appliance numbers orders with, and 6+ (a document to the barcode reader).
    gun.script([("BER-PO-0099", "error", "no purchase order 'BER-PO-0099'"),
                ("BER-PO-000042", "error", "no purchase order 'BER-PO-000042'")])
    logged = ledger.db.execute_sql("SELECT outcome FROM scan_log").fetchall()
    assert logged == [("error",), ("error",)]   # refused, not waiting to be linked
    add_location(ledger.db, "BER", "BER-PO-1234")
    gun.script([("CMD-RECEIVE", "ok", "Receive"), ("BER-PO-1234", "ok", "Receiving into BER-PO-1234")])
    # Another site's order (a copy, say) is received where it is delivered, not here.
    foreign = purchase_order(ledger, ship_to="WAW-A-01", site="WAW")
    assert gun(foreign).message == "Refused: WAW-PO-0001 is an order of site WAW: receive it there"


def test_a_scan_run_twice_books_its_order_receipt_once(desk, ledger):
    number = purchase_order(ledger)
    action = wf.Receive(Line("DOG-5", 3, "L7", "2027-05-01"), "BER-A-01", "purchase_order", number)
    said = []
    for _ in range(2):
        with ledger.write(op_id="scan:dock-1:7") as ops:
            said.append(station_actions.carry_out(ops, action).message)
    assert said == ["Received 3 × DOG-5 lot L7 into BER-A-01 for BER-PO-0001 line 1: 3 of 20",
                    "Already booked: 3 × DOG-5 lot L7 for BER-PO-0001"]
    assert order_state(ledger, number) == ("partial", [(1, 3), (2, 0)])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 3


def test_undo_takes_a_receipt_off_the_order_and_reopens_it(desk, ledger):
    number = purchase_order(ledger)
    gun = Gun(desk)
    gun.script([(number, "ok", "receiving"), ("QTY-4", "ok", "× 4"), (CAT_EAN, "ok", "line complete"),
                ("QTY-20", "ok", "× 20"), (EAN, "ok", "received in full")])
    assert order_state(ledger, number) == ("received", [(1, 20), (2, 4)])
    undone = gun("CMD-UNDO")
    assert (undone.level, undone.message) == (
        "ok", "Undone: Received 20 × DOG-5 into BER-A-01 for BER-PO-0001 line 1; BER-PO-0001 waits for 20 more")
    assert undone.prompt.endswith("still to come: 20 × DOG-5")
    assert order_state(ledger, number) == ("partial", [(1, 0), (2, 4)])
    assert ledger.db.execute_sql("SELECT closed_at FROM purchase_order").fetchone() == (None,)
    assert movements(ledger)[-1] == ("reversal", "DOG-5", "BER-A-01", -20, "", None, "purchase_order",
                                     "BER-PO-0001/1")
    kind, detail = events(ledger, number)[-1]
    assert (kind, detail["line"], detail["qty"], detail["status"]) == ("receipt_undone", 1, 20, "partial")
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 0
    assert gun("CMD-UNDO").message == "Nothing to undo"
    # Received again, it closes again.
    gun.script([("QTY-20", "ok", "× 20"), (EAN, "ok", "BER-PO-0001 received in full")])


def test_undo_of_the_only_receipt_sends_the_order_back_to_sent_even_after_leaving_it(desk, ledger):
    number = purchase_order(ledger)
    gun = Gun(desk)
    gun.script([(number, "ok", "receiving"), (GS1_LOT, "ok", "line 1: 1 of 20"),
                ("CMD-DONE", "ok", "BER-PO-0001 stays open (partial): still to come: 19 × DOG-5, 4 × CAT-2"),
                ("CMD-UNDO", "ok", "Undone: Received 1 × DOG-5 lot L42")])
    assert order_state(ledger, number) == ("sent", [(1, 0), (2, 0)])
    assert on_hand(ledger.db, "DOG-5", "BER-A-01", "L42") == 0


def test_undo_is_refused_when_the_units_are_gone_or_the_order_was_closed(desk, ledger):
    number = purchase_order(ledger)
    gun = Gun(desk)
    gun.script([(number, "ok", "receiving"), ("QTY-5", "ok", "× 5"), (EAN, "ok", "5 of 20")])
    ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=3))
    gone = gun("CMD-UNDO")
    assert (gone.level, gone.message) == ("error", "Only 2 left at BER-A-01")
    assert order_state(ledger, number) == ("partial", [(1, 5), (2, 0)])
    # Refused, the receipt can still be undone once the units are back.
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=3))
    with ledger.write(user="admin") as ops:
        orders.cancel(ops.conn, number, ts=ops.ts, user="admin", reason="supplier out of stock")
    closed = gun("CMD-UNDO")
    assert closed.level == "error" and "closed with its rest cancelled" in closed.message
    assert on_hand(ledger.db, "DOG-5", "BER-A-01") == 5
    assert order_state(ledger, number) == ("received", [(1, 5), (2, 0)])
    assert gun("CMD-DONE").message == "BER-PO-0001 is closed, the rest cancelled"


# The state machine alone (no database): what an order's scans ask the desk to do.

ORDER = Session(mode="receive", location="BER-A-01", ref_type="purchase_order", ref_id="BER-PO-0001",
                expected=(("DOG-5", 20),), touched=100)
PO_SEEN = Seen("document", "BER-PO-0002", document="BER-PO-0002", document_type="purchase_order")


@pytest.mark.parametrize("start, seen, action, after", [
    (Session(), PO_SEEN, wf.OpenOrder("BER-PO-0002", None),
     Session(mode="receive", ref_type="purchase_order", ref_id="BER-PO-0002")),
    (Session(mode="receive", location="BER-A-02"), PO_SEEN, wf.OpenOrder("BER-PO-0002", "BER-A-02"),
     Session(mode="receive", location="BER-A-02", ref_type="purchase_order", ref_id="BER-PO-0002")),
    (ORDER, PO_SEEN, wf.OpenOrder("BER-PO-0002", None),
     Session(mode="receive", ref_type="purchase_order", ref_id="BER-PO-0002")),
    (ORDER, Seen("document", "BER-PO-0001", document="BER-PO-0001", document_type="purchase_order"),
     wf.OpenOrder("BER-PO-0001", "BER-A-01"),
     Session(mode="receive", location="BER-A-01", ref_type="purchase_order", ref_id="BER-PO-0001")),
    (ORDER, Seen("item", "x", sku="DOG-5", units=12, lot="L1", expiry="2027-01-31"),
     wf.Receive(Line("DOG-5", 12, "L1", "2027-01-31"), "BER-A-01", "purchase_order", "BER-PO-0001"), ORDER),
    (ORDER, Seen("command", "CMD-UNDO", command="undo"), wf.Say("warning", "Nothing to undo"), ORDER),
    (ORDER, Seen("command", "CMD-DONE", command="done"), wf.Lookup("purchase_order", "BER-PO-0001"), Session()),
    (ORDER, Seen("command", "CMD-RECEIVE", command="receive"),
     wf.Say("ok", "Receive without an order into BER-A-01"), Session(mode="receive", location="BER-A-01")),
])
def test_order_transitions(start, seen, action, after):
    result = wf.step(start, seen, 101.0, site="BER", idle_timeout_s=300)
    assert result.action == action
    assert result.session == Session(**{**after.__dict__, "touched": 101.0})


def test_undo_names_the_order_being_received_and_sessions_keep_the_lines_in_json():
    session = Session(**{**ORDER.__dict__, "last": {"type": "po_receipt"}})
    assert wf.step(session, Seen("command", "CMD-UNDO", command="undo"), 101.0, site="BER",
                   idle_timeout_s=300).action == wf.Undo({"type": "po_receipt"}, "BER-PO-0001")
    assert Session.from_json(json.loads(json.dumps(ORDER.to_json()))) == ORDER
    many = Session(**{**ORDER.__dict__, "expected": tuple((f"SKU-{n}", n) for n in range(1, 9))})
    assert wf.prompt(many) == ("Scan the items of BER-PO-0001 to receive into BER-A-01; still to come: 1 × SKU-1, "
                               "2 × SKU-2, 3 × SKU-3, 4 × SKU-4, 5 × SKU-5, 6 × SKU-6 and 2 more line(s)")


def test_the_dock_screen_shows_what_the_order_still_waits_for(web):
    number = purchase_order(web.parts.ledger)
    add_barcodes(web.db)
    client = web.client("staff")
    token = csrf(client)
    reply = client.post("/dock/dock-3/scan", json={"code": number}, headers={"X-CSRF-Token": token})
    assert reply.get_json()["level"] == "ok"
    client.post("/dock/dock-3/scan", json={"code": EAN}, headers={"X-CSRF-Token": token})
    page = client.get("/dock/dock-3").get_data(as_text=True)
    assert "still to come: 19 × DOG-5, 4 × CAT-2" in page
