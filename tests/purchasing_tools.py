"""An App over a populated ledger with purchasing settings, for the reorder and purchase order tests."""

from __future__ import annotations

from pathlib import Path

from workers import CATALOG, SITE, SITE_KEY, populate

from appliance.app import App
from appliance.config import parse_config
from appliance.ledger.db import open_db
from appliance.ledger.service import Ledger

SKU = CATALOG[0][2]
OTHER_SKU = CATALOG[1][2]
THIRD_SKU = CATALOG[2][2]


def make_app(tmp_path: Path, **sections) -> App:
    db_path = tmp_path / "ledger.db"
    config = parse_config({"site": {"id": SITE, "name": "Berlin"}, "database": {"path": str(db_path)},
                           "web": {"advertise": False}, **sections}, label="test", base_dir=tmp_path)
    db = open_db(db_path)
    populate(db)
    app = App(config, db)
    app._closers.append(db.close)
    app.__dict__["ledger"] = Ledger(db, SITE, SITE_KEY)
    return app


def supplier(app: App, name: str = "Acme Feed", lead_time_days: int | None = 3, email: str | None = None) -> int:
    with app.ledger.write() as ops:
        return ops.conn.execute("INSERT INTO supplier (name, email, lead_time_days, created_at) VALUES (?, ?, ?, ?)"
                                " RETURNING id", (name, email, lead_time_days, ops.ts)).fetchone()[0]


def rule(app: App, sku: str, *, point: int, qty: int | None = None, max_qty: int | None = None,
         supplier_id: int | None = None, pack: int = 1, moq: int = 0) -> None:
    with app.ledger.write() as ops:
        ops.conn.execute("UPDATE variant SET reorder_point = ?, reorder_qty = ?, max_qty = ?, supplier_id = ?,"
                         " pack_size = ?, min_order_qty = ? WHERE sku = ?",
                         (point, qty, max_qty, supplier_id, pack, moq, sku))


def open_alerts(app: App) -> set[tuple[str, str]]:
    return {(kind, subject) for kind, subject in app.db.execute_sql(
        "SELECT kind, subject FROM alert WHERE resolved_at IS NULL")}


def draft_lines(app: App) -> list[tuple[str, str, int]]:
    return [tuple(row) for row in app.db.execute_sql(
        "SELECT po.number, v.sku, l.qty_ordered FROM purchase_order_line l JOIN purchase_order po ON po.id = l.po_id"
        " JOIN variant v ON v.id = l.variant_id WHERE po.status = 'draft' ORDER BY po.number, l.line_no")]
