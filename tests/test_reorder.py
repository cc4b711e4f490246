"""The reorder trigger: once per crossing, suppressed by stock already coming, grouped per supplier, rounded."""

from __future__ import annotations

import pytest
from purchasing_tools import OTHER_SKU, SKU, THIRD_SKU, draft_lines, make_app, open_alerts, rule, supplier

from appliance.ledger.requests import Move
from appliance.purchasing import reorder


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.close()


def post(app, kind, qty, sku=SKU, location="BER-A-01", **kw):
    return app.ledger.post(Move(kind, sku=sku, location=location, qty=qty, **kw))


def settle(app):
    """What the watcher does after each commit: run the trigger over the new movements."""
    while reorder.catch_up(app)[1]:
        pass


def test_fires_once_per_crossing_and_again_after_a_receipt_lifts_the_stock(app):
    acme = supplier(app)
    rule(app, SKU, point=5, qty=10, supplier_id=acme)
    settle(app)                       # the cursor starts at the newest movement
    post(app, "receive", 8)
    settle(app)
    assert open_alerts(app) == set() and draft_lines(app) == []
    post(app, "ship", 4)              # 4 available <= 5: crosses
    settle(app)
    assert open_alerts(app) == {("low_stock", f"{SKU}@BER")}
    assert draft_lines(app) == [("BER-PO-0001", SKU, 10)]
    post(app, "ship", 1)              # still low, but 10 are on order: no second line, no second alert
    settle(app)
    assert draft_lines(app) == [("BER-PO-0001", SKU, 10)]
    assert app.db.execute_sql("SELECT count(*) FROM alert").fetchone()[0] == 1
    # The order arrives; the alert clears; the next crossing fires anew on a new draft.
    from appliance.purchasing import orders
    with app.ledger.write() as ops:
        orders.mark_sent(ops.conn, "BER-PO-0001", ts=ops.ts, user=None, sent_to="x@y.z",
                         today=__import__("datetime").date(2026, 11, 23))
        orders.receive(ops, "BER-PO-0001", [orders.Receipt(1, 10)])
    settle(app)
    assert open_alerts(app) == set()
    post(app, "ship", 9)              # 13 -> 4
    settle(app)
    assert open_alerts(app) == {("low_stock", f"{SKU}@BER")}
    assert draft_lines(app) == [("BER-PO-0002", SKU, 10)]
    assert app.db.execute_sql("SELECT count(*) FROM alert").fetchone()[0] == 2


def test_an_inbound_transfer_suppresses_the_draft(app):
    acme = supplier(app)
    rule(app, SKU, point=5, qty=10, supplier_id=acme)
    settle(app)
    with app.ledger.write() as ops:   # stock on its way from Warsaw, booked as a replica would show it
        ops.conn.execute("INSERT INTO stock (variant_id, location_id, lot, on_hand, reserved, in_transit)"
                         " SELECT v.id, l.id, '', 0, 0, 20 FROM variant v, location l"
                         " WHERE v.sku = ? AND l.code = 'BER-A-02'", (SKU,))
    post(app, "receive", 3)
    settle(app)
    assert open_alerts(app) == {("low_stock", f"{SKU}@BER")}   # low is low; but nothing to order
    assert draft_lines(app) == []


def test_drafts_group_per_supplier_and_round_to_packs_and_minimums(app):
    acme, other = supplier(app), supplier(app, "Other Co")
    rule(app, SKU, point=5, qty=7, supplier_id=acme, pack=6)          # 7 -> 12
    rule(app, OTHER_SKU, point=2, qty=1, supplier_id=acme, moq=5)     # 1 -> 5
    rule(app, THIRD_SKU, point=2, qty=4, supplier_id=other)
    settle(app)
    post(app, "receive", 1)
    post(app, "receive", 1, sku=THIRD_SKU)
    post(app, "receive", 1, sku=OTHER_SKU)
    settle(app)
    assert draft_lines(app) == [("BER-PO-0001", SKU, 12), ("BER-PO-0001", OTHER_SKU, 5),
                                ("BER-PO-0002", THIRD_SKU, 4)]


def test_max_orders_up_to_it_and_over_stock_alerts(app):
    acme = supplier(app)
    rule(app, SKU, point=5, max_qty=30, supplier_id=acme, pack=4)
    settle(app)
    post(app, "receive", 3)           # position 3: up to 30 is 27, in packs of 4: 28
    settle(app)
    assert draft_lines(app) == [("BER-PO-0001", SKU, 28)]
    post(app, "receive", 40)
    settle(app)
    assert ("over_stock", f"{SKU}@BER") in open_alerts(app)


def test_out_of_stock_replaces_low_and_a_location_rule_watches_its_bin(app):
    acme = supplier(app)
    with app.ledger.write() as ops:
        ops.conn.execute("INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty,"
                         " supplier_id) SELECT v.id, l.id, 2, 6, ? FROM variant v, location l"
                         " WHERE v.sku = ? AND l.code = 'BER-A-02'", (acme, SKU))
    settle(app)
    post(app, "receive", 5, location="BER-A-02")
    post(app, "ship", 5, location="BER-A-02")
    settle(app)
    assert open_alerts(app) == {("out_of_stock", f"{SKU}@BER-A-02")}
    number, sku, qty = draft_lines(app)[0]
    assert (sku, qty) == (SKU, 6)
    ship_to = app.db.execute_sql("SELECT l.code FROM purchase_order po JOIN location l ON l.id = po.ship_to_id"
                                 " WHERE po.number = ?", (number,)).fetchone()[0]
    assert ship_to == "BER-A-02"


def test_no_supplier_alerts_without_drafting(app):
    rule(app, SKU, point=5, qty=10)
    settle(app)
    post(app, "receive", 2)
    settle(app)
    assert draft_lines(app) == []
    detail = app.db.execute_sql("SELECT message FROM alert WHERE kind = 'low_stock'").fetchone()[0]
    assert "no supplier" in detail


def test_count_variance_above_the_threshold_alerts(tmp_path):
    app = make_app(tmp_path, alerts={"count_variance": 3})
    try:
        settle(app)
        post(app, "receive", 10)
        post(app, "count", 5)         # -5
        post(app, "count", 7)         # +2: within the threshold
        settle(app)
        kinds = [k for k, _s in open_alerts(app)]
        assert kinds == ["count_variance"]
    finally:
        app.close()


def test_the_watcher_thread_reacts_to_commits_of_other_connections(app):
    acme = supplier(app)
    rule(app, SKU, point=5, qty=10, supplier_id=acme)
    watcher = reorder.ReorderWatcher(app, poll_s=0.01)
    watcher.start()
    try:
        import time
        deadline = time.monotonic() + 10
        while app.db.execute_sql("SELECT count(*) FROM agent_cursor").fetchone()[0] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        post(app, "receive", 2)
        while not draft_lines(app):
            assert time.monotonic() < deadline, "the watcher never drafted"
            time.sleep(0.01)
        assert draft_lines(app) == [("BER-PO-0001", SKU, 10)]
    finally:
        watcher.stop()


def test_the_sweep_checks_every_rule(app):
    acme = supplier(app)
    settle(app)
    post(app, "receive", 2)
    settle(app)
    rule(app, SKU, point=5, qty=10, supplier_id=acme)   # set after the stock fell: only the sweep sees it
    report = reorder.sweep(app)
    assert report["drafted"] == [{"po": "BER-PO-0001", "sku": SKU, "qty": 10}]
    assert reorder.sweep(app)["drafted"] == []


def test_the_watcher_writes_nothing_for_movements_that_change_nothing_and_saves_its_cursor_later(app, monkeypatch):
    import sqlite3
    acme = supplier(app)
    rule(app, SKU, point=5, qty=10, supplier_id=acme)
    trigger = reorder.Trigger(app, touch=False)   # the watcher's, which keeps its cursor in memory
    reorder.catch_up(app, trigger)
    post(app, "receive", 20)
    post(app, "ship", 16)                         # crosses: alert and line written with the cursor
    reorder.catch_up(app, trigger)
    assert draft_lines(app) == [("BER-PO-0001", SKU, 10)]
    saved = app.db.execute_sql("SELECT value FROM agent_cursor WHERE name = 'reorder'").fetchone()[0]

    other = sqlite3.connect(app.config.database.path)   # data_version moves when anyone else commits
    post(app, "ship", 1)                          # still low, the line already drafted: nothing to do
    post(app, "receive", 1, sku=OTHER_SKU)        # a product without a rule
    version = other.execute("PRAGMA data_version").fetchone()[0]
    report, more = reorder.catch_up(app, trigger)
    assert other.execute("PRAGMA data_version").fetchone()[0] == version   # no commit at all
    assert (report.raised, report.drafted, more) == ([], [], False)
    newest = app.db.execute_sql("SELECT max(id) FROM movement").fetchone()[0]
    assert trigger.cursor == newest
    assert app.db.execute_sql("SELECT value FROM agent_cursor WHERE name = 'reorder'").fetchone()[0] == saved
    assert app.db.execute_sql("SELECT seen_count FROM alert").fetchone()[0] == 1

    monkeypatch.setattr(reorder, "CURSOR_SAVE_S", 0.0)   # time to save the cursor: one small write
    post(app, "ship", 1)
    reorder.catch_up(app, trigger)
    assert other.execute("PRAGMA data_version").fetchone()[0] != version
    assert app.db.execute_sql("SELECT value FROM agent_cursor WHERE name = 'reorder'").fetchone()[0] == newest + 1
    # The sweep brings the open alert up to date (last seen, count, the available figure in its message).
    reorder.sweep(app)
    assert app.db.execute_sql("SELECT seen_count, message FROM alert").fetchone() == (
        2, f"{SKU} is low at site BER: 2 available, reorder point 5")
    other.close()
