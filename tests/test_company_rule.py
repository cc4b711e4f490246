"""The company reorder rule across two boxes (BER, WAW) that replicate each other's signed movements: the
company total is ordered by the buyer's box alone, and a site short of stock is first offered a transfer from a
site with surplus instead of a purchase order line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sync_sites import NAMES, all_tokens, setup_box, site_key
from test_cli import Cli

from appliance.app import App
from appliance.config import parse_config
from appliance.ledger.db import open_db
from appliance.ledger.requests import Move
from appliance.ledger.service import Ledger
from appliance.purchasing import orders, reorder
from appliance.sync.inbox import Inbox

SKU = "DOG-5"


def make_box(tmp_path: Path, site: str, peers: list[str]) -> App:
    home = tmp_path / site
    home.mkdir()
    config = parse_config({"site": {"id": site, "name": NAMES[site]}, "database": {"path": str(home / "ledger.db")},
                           "web": {"advertise": False}}, label="test", base_dir=home)
    db = open_db(config.database.path)
    setup_box(db, site, peers)
    app = App(config, db)
    app._closers.append(db.close)
    app.__dict__["ledger"] = Ledger(db, site, site_key(site))
    return app


@pytest.fixture
def boxes(tmp_path):
    ber, waw = make_box(tmp_path, "BER", ["WAW"]), make_box(tmp_path, "WAW", ["BER"])
    for box in (ber, waw):
        settle(box)               # the cursor starts at the newest movement
    yield ber, waw
    for box in (ber, waw):
        box.close()


def site_of(box: App) -> str:
    return box.config.site.id


def sync(*boxes: App) -> None:
    """Every box takes every other box's log (what MQTT carries; duplicates are ignored)."""
    for receiver in boxes:
        for sender in boxes:
            if sender is not receiver:
                Inbox(receiver.db, site_of(receiver)).receive(all_tokens(sender.db, site_of(sender)),
                                                               claimed_origin=site_of(sender))


def settle(box: App) -> reorder.Report:
    """What the watcher does after each commit: run the trigger over the new movements."""
    total = reorder.Report()
    more = True
    while more:
        report, more = reorder.catch_up(box)
        total.rules += report.rules
        total.raised += report.raised
        total.resolved += report.resolved
        total.drafted += report.drafted
    return total


def post(box: App, kind: str, qty: int, location: str | None = None) -> None:
    box.ledger.post(Move(kind, sku=SKU, location=location or f"{site_of(box)}-A-01", qty=qty))


def supplier(box: App, name: str = "Acme Feed") -> int:
    with box.ledger.write() as ops:
        return ops.conn.execute("INSERT INTO supplier (name, created_at) VALUES (?, ?) RETURNING id",
                                (name, ops.ts)).fetchone()[0]


def default_rule(box: App, *, point: int | None, qty: int | None = None, supplier_id: int | None = None) -> None:
    """The variant's own rule: every site's rule where no site rule overrides it, on this box."""
    with box.ledger.write() as ops:
        ops.conn.execute("UPDATE variant SET reorder_point = ?, reorder_qty = ?, supplier_id = ? WHERE sku = ?",
                         (point, qty, supplier_id, SKU))


def company_rule(box: App, *, point: int, buyer: str, qty: int | None = None, max_qty: int | None = None,
                 supplier_id: int | None = None) -> None:
    with box.ledger.write() as ops:
        ops.conn.execute("INSERT INTO reorder_company_rule (variant_id, reorder_point, reorder_qty, max_qty,"
                         " supplier_id, buyer_site_id) SELECT id, ?, ?, ?, ?, ? FROM variant WHERE sku = ?"
                         " ON CONFLICT (variant_id) DO UPDATE SET buyer_site_id = excluded.buyer_site_id",
                         (point, qty, max_qty, supplier_id, buyer, SKU))


def open_alerts(box: App) -> dict[tuple[str, str], dict]:
    return {(kind, subject): {"message": message, **json.loads(detail)} for kind, subject, message, detail
            in box.db.execute_sql("SELECT kind, subject, message, detail FROM alert WHERE resolved_at IS NULL")}


def draft_lines(box: App) -> list[tuple[str, str, int, str, str]]:
    return [tuple(row) for row in box.db.execute_sql(
        "SELECT po.number, v.sku, l.qty_ordered, loc.code, l.note FROM purchase_order_line l"
        " JOIN purchase_order po ON po.id = l.po_id JOIN variant v ON v.id = l.variant_id"
        " JOIN location loc ON loc.id = po.ship_to_id WHERE po.status = 'draft' ORDER BY po.number, l.line_no")]


# --- the company total ------------------------------------------------------------------------------------------

def test_the_company_total_falling_to_its_point_alerts_and_drafts_at_the_buyer_only(boxes):
    ber, waw = boxes
    for box in boxes:
        company_rule(box, point=20, qty=50, buyer="BER", supplier_id=supplier(box))
    post(ber, "receive", 15)
    post(waw, "receive", 15)
    sync(ber, waw)
    for box in boxes:
        settle(box)
    assert open_alerts(ber) == open_alerts(waw) == {} and draft_lines(ber) == []
    post(waw, "ship", 12)             # WAW's own ship: 15 + 3 = 18 <= 20 across the company
    sync(ber, waw)
    report = settle(ber)              # BER's trigger sees only WAW's replicated movement
    assert report.raised == [f"low_stock:{SKU}@company"]
    alert = open_alerts(ber)[("low_stock", f"{SKU}@company")]
    assert (alert["available"], alert["reorder_point"]) == (18, 20)
    assert "all sites" in alert["message"]
    [(number, sku, qty, ship_to, note)] = draft_lines(ber)
    assert (number, sku, qty, ship_to) == ("BER-PO-0001", SKU, 50, "BER-A-01")
    assert note.startswith("reorder (company)")
    # WAW holds the same rule but is not its buyer: no alert, no order, whatever runs.
    settle(waw)
    assert reorder.sweep(waw)["drafted"] == []
    assert open_alerts(waw) == {} and draft_lines(waw) == []
    # The draft counts as on order: the next ship anywhere neither alerts again nor orders twice.
    post(ber, "ship", 2)
    sync(ber, waw)
    assert settle(ber).drafted == [] and draft_lines(ber)[0][2] == 50


def test_stock_in_transit_between_sites_still_counts_for_the_company(boxes):
    ber, waw = boxes
    company_rule(ber, point=20, qty=50, buyer="BER", supplier_id=supplier(ber))
    post(waw, "receive", 25)
    waw.ledger.transfer(SKU, "WAW-A-01", "BER-A-01", 10)   # 15 at WAW, 10 on the road to BER
    sync(ber, waw)
    assert settle(ber).raised == []
    assert reorder.sweep(ber)["drafted"] == [] and draft_lines(ber) == []


def test_moving_the_buyer_to_another_site_closes_this_box_company_alert(boxes):
    ber, _waw = boxes
    company_rule(ber, point=20, qty=50, buyer="BER", supplier_id=supplier(ber))
    assert reorder.sweep(ber)["raised"] == [f"out_of_stock:{SKU}@company"]
    company_rule(ber, point=20, qty=50, buyer="WAW")
    report = reorder.sweep(ber)
    assert report["resolved"] == [f"out_of_stock:{SKU}@company"] and report["raised"] == []
    assert open_alerts(ber) == {}


# --- transfer before purchase -----------------------------------------------------------------------------------

@pytest.fixture
def short_at_ber(boxes):
    """BER and WAW both keep the variant's own rule here (point 10, order 40); WAW holds `waw_stock`."""
    ber, waw = boxes
    default_rule(ber, point=10, qty=40, supplier_id=supplier(ber))
    company_rule(ber, point=0, buyer="WAW")            # BER does not buy for the company: only the sideways look

    def stock(waw_stock: int) -> None:
        post(waw, "receive", waw_stock)
        post(ber, "receive", 12)
        sync(ber, waw)
        settle(ber)
        assert open_alerts(ber) == {}
        post(ber, "ship", 5)           # 7 <= 10 at BER
        settle(ber)
    return ber, waw, stock


def test_a_site_short_of_stock_is_offered_another_site_surplus_instead_of_a_purchase(short_at_ber):
    ber, waw, stock = short_at_ber
    stock(55)                          # WAW can spare 55 - 10 = 45 >= 40
    alerts = open_alerts(ber)
    assert set(alerts) == {("low_stock", f"{SKU}@BER"), ("transfer_suggested", f"{SKU}@BER")}
    suggestion = alerts[("transfer_suggested", f"{SKU}@BER")]
    assert suggestion["message"] == f"move 40 × {SKU} from WAW (surplus 45) to BER instead of buying"
    assert (suggestion["from_site"], suggestion["qty"], suggestion["to"]) == ("WAW", 40, "BER")
    assert draft_lines(ber) == []
    post(ber, "ship", 1)              # still short: the same suggestion, still no purchase
    settle(ber)
    assert draft_lines(ber) == []
    # Not raised again: the watcher leaves an open alert as it is (the sweep brings it up to date).
    assert ber.db.execute_sql("SELECT count(*), max(seen_count) FROM alert WHERE kind = 'transfer_suggested'"
                              ).fetchone() == (1, 1)
    # WAW follows it: in transit to BER the stock is coming, so nothing is bought; the suggestion stays open
    # while BER is still low, and clears with the low-stock alert once the transfer is received.
    waw.ledger.transfer(SKU, "WAW-A-01", "BER-A-01", 40)
    sync(ber, waw)
    settle(ber)
    assert draft_lines(ber) == [] and ("transfer_suggested", f"{SKU}@BER") in open_alerts(ber)
    ber.ledger.transfer_in("WAW-TR-000001", 40)
    report = settle(ber)
    assert sorted(report.resolved) == [f"low_stock:{SKU}@BER", f"transfer_suggested:{SKU}@BER"]
    assert open_alerts(ber) == {} and draft_lines(ber) == []


def test_without_enough_surplus_anywhere_the_purchase_is_drafted(short_at_ber):
    ber, _waw, stock = short_at_ber
    stock(25)                          # WAW can spare 15 < 40
    assert set(open_alerts(ber)) == {("low_stock", f"{SKU}@BER")}
    [(number, sku, qty, ship_to, note)] = draft_lines(ber)
    assert (number, sku, qty, ship_to) == ("BER-PO-0001", SKU, 40, "BER-A-01")
    assert "WAW could spare only 15" in note


def test_a_suggestion_whose_surplus_is_gone_gives_way_to_a_purchase(short_at_ber):
    ber, waw, stock = short_at_ber
    stock(55)
    assert ("transfer_suggested", f"{SKU}@BER") in open_alerts(ber)
    post(waw, "ship", 30)              # WAW sells its surplus before moving it: 25 left, 15 to spare
    sync(ber, waw)
    report = settle(ber)              # reacting to WAW's movement alone
    assert report.resolved == [f"transfer_suggested:{SKU}@BER"]
    assert [(sku, qty) for _n, sku, qty, _s, _note in draft_lines(ber)] == [(SKU, 40)]
    assert set(open_alerts(ber)) == {("low_stock", f"{SKU}@BER")}


def test_a_site_whose_own_point_is_unknown_here_has_no_surplus(boxes):
    ber, waw = boxes
    acme = supplier(ber)
    with ber.ledger.write() as ops:    # BER's own site rule; neither a WAW rule nor a variant default here
        ops.conn.execute("INSERT INTO reorder_site_rule (variant_id, site_id, reorder_point, reorder_qty,"
                         " supplier_id) SELECT id, 'BER', 10, 40, ? FROM variant WHERE sku = ?", (acme, SKU))
    company_rule(ber, point=0, buyer="WAW")
    post(waw, "receive", 500)
    sync(ber, waw)
    post(ber, "receive", 5)
    settle(ber)
    assert [qty for _n, _s, qty, _l, _note in draft_lines(ber)] == [40]
    assert ("transfer_suggested", f"{SKU}@BER") not in open_alerts(ber)
    with ber.ledger.write() as ops:    # once WAW's point is known here, its surplus is
        ops.conn.execute("INSERT INTO reorder_site_rule (variant_id, site_id, reorder_point) SELECT id, 'WAW', 100"
                         " FROM variant WHERE sku = ?", (SKU,))
        orders.cancel(ops.conn, "BER-PO-0001", ts=ops.ts, user=None)
    report = reorder.sweep(ber)
    assert report["suggested"] == [{"subject": f"{SKU}@BER", "from_site": "WAW", "qty": 40}]
    assert open_alerts(ber)[("transfer_suggested", f"{SKU}@BER")]["surplus"] == 400


def test_a_location_rule_is_offered_a_transfer_to_its_location(boxes):
    ber, waw = boxes
    acme = supplier(ber)
    with ber.ledger.write() as ops:
        ops.conn.execute("INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty,"
                         " supplier_id) SELECT v.id, l.id, 2, 6, ? FROM variant v, location l"
                         " WHERE v.sku = ? AND l.code = 'BER-A-02'", (acme, SKU))
        ops.conn.execute("UPDATE variant SET reorder_point = 5 WHERE sku = ?", (SKU,))   # WAW keeps 5
    company_rule(ber, point=0, buyer="WAW")
    post(waw, "receive", 11)
    sync(ber, waw)
    post(ber, "receive", 20)           # the site is well stocked: only the bin runs low
    post(ber, "receive", 1, location="BER-A-02")
    settle(ber)
    suggestion = open_alerts(ber)[("transfer_suggested", f"{SKU}@BER-A-02")]
    assert suggestion["message"] == f"move 6 × {SKU} from WAW (surplus 6) to BER-A-02 instead of buying"
    assert draft_lines(ber) == []


def test_without_a_company_rule_other_sites_movements_check_nothing_here(boxes):
    ber, waw = boxes
    default_rule(ber, point=10, qty=40, supplier_id=supplier(ber))
    post(waw, "receive", 500)
    sync(ber, waw)
    assert settle(ber).rules == 0
    post(ber, "receive", 2)
    report = settle(ber)
    assert report.rules == 1 and [qty for _n, _s, qty, _l, _note in draft_lines(ber)] == [40]
    assert ("transfer_suggested", f"{SKU}@BER") not in open_alerts(ber)


# --- the CLI ----------------------------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path, capsys):
    ber = Cli(tmp_path / "ber" / "appliance.toml", capsys)
    waw = Cli(tmp_path / "waw" / "appliance.toml", capsys)
    ber.ok("init", "--site", "BER", "--site-name", "Berlin")
    waw.ok("init", "--site", "WAW", "--site-name", "Warszawa")
    entry = tmp_path / "waw.json"
    waw.ok("site", "export-key", "--out", str(entry))
    ber.ok("site", "add", str(entry))
    sheet = tmp_path / "catalog.csv"
    sheet.write_text("sku,name,product_sku,variant_name,cost_price\nDOG-5,Dog food,DOG,5 kg,12.99\n", encoding="utf-8")
    ber.ok("import", "products", str(sheet))
    ber.ok("location", "add", "BER-A-01")
    ber.ok("supplier", "add", "Acme Feed")
    return ber


def test_reorder_set_company_and_list_every_level(cli):
    cli.ok("reorder", "set", SKU, "--point", "5", "--qty", "10")
    cli.ok("reorder", "set", SKU, "--site", "BER", "--point", "8", "--max", "30")
    cli.ok("reorder", "set", SKU, "--location", "BER-A-01", "--point", "2", "--qty", "4")
    cli.ok("reorder", "set", SKU, "--company", "--point", "50", "--qty", "100", "--supplier", "Acme Feed")
    rules = cli.json("reorder", "list", "--json")
    assert [(r["level"], r["at"], r["point"], r["qty"], r["max"], r["buyer"]) for r in rules] == [
        ("location", "BER-A-01", 2, 4, None, None), ("site", "BER", 8, None, 30, None),
        ("default", "each site", 5, 10, None, None), ("company", "all sites", 50, 100, None, "BER")]
    assert rules[-1]["supplier"] == "Acme Feed"
    cli.ok("reorder", "set", SKU, "--company", "--point", "60", "--buyer", "WAW")
    cli.ok("reorder", "set", SKU, "--company", "--point", "70")   # the buyer stays WAW: no second buyer
    [company] = [r for r in cli.json("reorder", "list", "--json") if r["level"] == "company"]
    assert (company["point"], company["qty"], company["buyer"]) == (70, None, "WAW")
    table = cli.ok("reorder", "list")
    assert "company" in table and "all sites" in table and "WAW" in table


@pytest.mark.parametrize(("args", "field", "words"), [
    (("--company", "--point", "5", "--buyer", "PAR"), "buyer", "PAR"),
    (("--site", "BER", "--point", "5", "--buyer", "WAW"), "buyer", "needs --company"),
])
def test_reorder_set_company_refuses_a_bad_buyer_and_changes_nothing(cli, args, field, words):
    code, out, err = cli("reorder", "set", SKU, *args)
    assert code != 0 and field in err and words in err
    assert cli.json("reorder", "list", "--json") == []


def test_company_and_site_are_one_choice(cli):
    code, _out, err = cli("reorder", "set", SKU, "--company", "--site", "BER", "--point", "5")
    assert code != 0 and "not allowed with argument" in err


def test_a_transfer_to_another_site_checks_the_sender_rules(boxes):
    """Regression: the trigger placed a movement at its destination only, so stock sent to another site never
    checked the sender's own rules until the sweep."""
    _ber, waw = boxes
    default_rule(waw, point=10, qty=40, supplier_id=supplier(waw))
    post(waw, "receive", 20)
    settle(waw)
    waw.ledger.transfer(SKU, "WAW-A-01", "BER-A-01", 15)
    assert settle(waw).raised == [f"low_stock:{SKU}@WAW"]
    assert [qty for _n, _s, qty, _l, _note in draft_lines(waw)] == [40]
