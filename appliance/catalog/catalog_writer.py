"""Phase two of the product import, inside its one `BEGIN IMMEDIATE` transaction.

A snapshot of the catalog, the checks of the parsed rows against it, then the bulk writes of the good rows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from appliance import clock
from appliance.catalog.csv_rows import CHUNK, Progress, Row, RowError

CASE_PACK = "case"
PRODUCT_FIELDS = ("name", "description", "category", "supplier_id", "image_url")
VARIANT_FIELDS = ("product_id", "name", "cost_price", "sale_price", "unit", "reorder_point", "reorder_qty", "active")
PRODUCT_DEFAULTS = {"description": "", "category": "", "supplier_id": None, "image_url": None}
VARIANT_DEFAULTS = {"name": "", "cost_price": None, "sale_price": None, "unit": "each", "reorder_point": None,
                    "reorder_qty": None, "active": True}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


class Catalog:
    """The catalog as dicts, read once, so that checks and writes need no query per row."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.suppliers: dict[str, int] = dict(conn.execute("SELECT name, id FROM supplier"))
        self.products = {sku: (id_, dict(zip(PRODUCT_FIELDS, rest))) for id_, sku, *rest in conn.execute(
            f"SELECT id, sku, {', '.join(PRODUCT_FIELDS)} FROM product")}
        self.variants = {sku: (id_, dict(zip(VARIANT_FIELDS, rest))) for id_, sku, *rest in conn.execute(
            f"SELECT id, sku, {', '.join(VARIANT_FIELDS)} FROM variant")}
        self.product_sku = {id_: sku for sku, (id_, _) in self.products.items()}
        self.variant_sku = {id_: sku for sku, (id_, _) in self.variants.items()}
        self.cases: dict[int, tuple[int, int]] = {variant_id: (id_, qty) for id_, variant_id, qty in conn.execute(
            "SELECT id, variant_id, qty FROM pack WHERE name = ?", (CASE_PACK,))}
        self.barcodes: dict[str, tuple[int, int | None]] = {
            code: (variant_id, pack_id)
            for code, variant_id, pack_id in conn.execute("SELECT code, variant_id, pack_id FROM barcode")}


def check_against(catalog: Catalog, present: set[str], rows: list[Row]) -> list[RowError]:
    """Problems of the rows with the catalog: barcode owners, product fields that disagree, case packs in use.

    Fills in `product_sku` where the file has no such column, and flags the rows it finds bad.
    """
    errors: list[RowError] = []
    first_of_product: dict[str, Row] = {}
    packs_with_codes = {pack_id for _, pack_id in catalog.barcodes.values() if pack_id is not None}
    skus: set[str] = set()
    for row in rows:
        if row.sku is None or row.sku in skus:   # a repeated SKU is reported already; its product need not agree
            continue
        skus.add(row.sku)
        found = []
        existing = catalog.variants.get(row.sku)
        if "product_sku" not in present:
            row.product_sku = catalog.product_sku[existing[1]["product_id"]] if existing else row.sku
        if row.product_sku is not None:
            first = first_of_product.setdefault(row.product_sku, row)
            for name, value in row.product.items():
                if name in first.product and first.product[name] != value:
                    found.append(RowError(row.line, name, value or "", f"product {row.product_sku} has {name} "
                                          f"{first.product[name] or ''!r} on line {first.line}"))
        for code in row.barcodes:
            owner = catalog.barcodes.get(code)
            if owner is not None and catalog.variant_sku[owner[0]] != row.sku:
                found.append(RowError(row.line, "barcode", code, f"already belongs to SKU "
                                      f"{catalog.variant_sku[owner[0]]}, cannot also go to {row.sku}"))
        case = catalog.cases.get(existing[0]) if existing and "pack_size" in present else None
        # A bad row may hold no pack_size because its cell did not parse, not because it was empty.
        if case and not row.bad and (row.pack_size or 1) == 1 and case[0] in packs_with_codes:
            found.append(RowError(row.line, "pack_size", "", f"the case pack of {row.sku} has barcodes; "
                                  "it cannot be removed"))
        row.bad = row.bad or bool(found)
        errors += found
    return errors


class Writer:
    """Bulk writes of the good rows, a chunk at a time: executemany, and one id lookup per chunk of new rows."""

    def __init__(self, conn: sqlite3.Connection, catalog: Catalog, present: set[str], report: ImportReport) -> None:
        self.conn, self.catalog, self.present, self.report = conn, catalog, present, report
        self.now = clock.now_ts()
        self.products_done: set[str] = set()
        self.products_changed: set[str] = set()

    def write(self, rows: list[Row], progress: Progress) -> None:
        names = {row.product.get("supplier") for row in rows} - {None} - self.catalog.suppliers.keys()
        self.conn.executemany("INSERT INTO supplier (name, created_at) VALUES (?, ?)",
                              [(name, self.now) for name in sorted(names)])
        self.catalog.suppliers = dict(self.conn.execute("SELECT name, id FROM supplier"))
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            self._products(chunk)
            self._variants(chunk)
            progress(start + len(chunk), len(rows), "write")

    def _products(self, rows: list[Row]) -> None:
        new, changed = {}, []
        for row in rows:
            if row.product_sku in self.products_done:
                continue
            self.products_done.add(row.product_sku)
            given = dict(row.product)
            if "supplier" in given:
                supplier = given.pop("supplier")
                given["supplier_id"] = self.catalog.suppliers[supplier] if supplier else None
            id_, old = self.catalog.products.get(row.product_sku, (None, None))
            if old is None:
                new[row.product_sku] = {**PRODUCT_DEFAULTS, **given}
            elif {**old, **given} != old:
                changed.append((*({**old, **given}[name] for name in PRODUCT_FIELDS), self.now, id_))
                self.products_changed.add(row.product_sku)
        self.conn.executemany(
            f"INSERT INTO product (sku, {', '.join(PRODUCT_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(PRODUCT_FIELDS))}, ?, ?)",
            [(sku, *(values[name] for name in PRODUCT_FIELDS), self.now, self.now) for sku, values in new.items()])
        self.conn.executemany(
            f"UPDATE product SET {', '.join(f'{name} = ?' for name in PRODUCT_FIELDS)}, updated_at = ? WHERE id = ?",
            changed)
        for sku, id_ in self._ids("product", new):
            self.catalog.products[sku] = (id_, new[sku])

    def _variants(self, rows: list[Row]) -> None:
        given = {row.sku: {**row.variant, "product_id": self.catalog.products[row.product_sku][0]} for row in rows}
        new = {sku: {**VARIANT_DEFAULTS, **values} for sku, values in given.items() if sku not in self.catalog.variants}
        self.conn.executemany(
            f"INSERT INTO variant (sku, {', '.join(VARIANT_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(VARIANT_FIELDS))}, ?, ?)",
            [(sku, *(values[name] for name in VARIANT_FIELDS), self.now, self.now) for sku, values in new.items()])
        ids = dict(self._ids("variant", new))
        changed, packs_new, packs_qty, packs_gone, codes = [], [], [], [], []
        for row in rows:
            if row.sku in new:
                id_, touched = ids[row.sku], False
                self.report.created += 1
            else:
                id_, old = self.catalog.variants[row.sku]
                values = {**old, **given[row.sku]}
                touched = values != old or row.product_sku in self.products_changed
            if "pack_size" in self.present:
                case = self.catalog.cases.get(id_)
                qty = row.pack_size if (row.pack_size or 1) > 1 else None
                if case is None and qty is not None:
                    packs_new.append((id_, CASE_PACK, qty))
                elif case is not None and qty is None:
                    packs_gone.append((case[0],))
                elif case is not None and case[1] != qty:
                    packs_qty.append((qty, case[0]))
                touched = touched or (case[1] if case else None) != qty
            added = [(code, id_, kind) for code, kind in row.barcodes.items() if code not in self.catalog.barcodes]
            codes += added
            if row.sku not in new and (touched or added):
                changed.append((*(values[name] for name in VARIANT_FIELDS), self.now, id_))
                self.report.updated += 1
            elif row.sku not in new:
                self.report.unchanged += 1
        self.conn.executemany(
            f"UPDATE variant SET {', '.join(f'{name} = ?' for name in VARIANT_FIELDS)}, updated_at = ? WHERE id = ?",
            changed)
        self.conn.executemany("DELETE FROM pack WHERE id = ?", packs_gone)
        self.conn.executemany("UPDATE pack SET qty = ? WHERE id = ?", packs_qty)
        self.conn.executemany("INSERT INTO pack (variant_id, name, qty) VALUES (?, ?, ?)", packs_new)
        self.conn.executemany("INSERT INTO barcode (code, variant_id, kind) VALUES (?, ?, ?)", codes)

    def _ids(self, table: str, skus: dict[str, Any]) -> list[tuple[str, int]]:
        if not skus:
            return []
        return self.conn.execute(f"SELECT sku, id FROM {table} WHERE sku IN ({', '.join('?' * len(skus))})",
                                 list(skus)).fetchall()
