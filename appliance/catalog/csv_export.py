"""Export the product catalog as a CSV file that `csv_import.import_products` reads back unchanged.

Plain UTF-8 (no byte-order mark), `,` delimiter, `\\n` line ends, the header `csv_import.COLUMNS`, one row per
variant ordered by product SKU then SKU; amounts with a point decimal; `active` as 1/0; barcodes joined with `|`
in the order they were added; `pack_size` is the quantity of the variant's `case` pack. Barcodes of a pack are not
exported (the format has no column for them).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import peewee

from appliance.catalog import money
from appliance.catalog.csv_import import CASE_PACK, COLUMNS

_QUERY = """
SELECT v.id, v.sku, p.name, p.sku, v.name, p.category, s.name, v.cost_price, v.sale_price, v.unit, k.qty,
       v.reorder_point, v.reorder_qty, p.description, p.image_url, v.active
FROM variant v
JOIN product p ON p.id = v.product_id
LEFT JOIN supplier s ON s.id = p.supplier_id
LEFT JOIN pack k ON k.variant_id = v.id AND k.name = ?
ORDER BY p.sku, v.sku
"""


def export_products(db: peewee.SqliteDatabase, out: str | Path | TextIO, *, currency_digits: int = 2) -> int:
    """Write every variant to `out` (a path, or a text file opened with newline=""); returns the row count."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8", newline="") as file:
            return export_products(db, file, currency_digits=currency_digits)
    conn = db.connection()
    with db.atomic():   # one snapshot for both queries
        barcodes: dict[int, list[str]] = {}
        for variant_id, code in conn.execute(
                "SELECT variant_id, code FROM barcode WHERE pack_id IS NULL ORDER BY rowid"):
            barcodes.setdefault(variant_id, []).append(code)
        rows = conn.execute(_QUERY, (CASE_PACK,)).fetchall()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for variant_id, *values in rows:
        row = dict(zip(COLUMNS[:4] + COLUMNS[5:], values))
        row["barcode"] = "|".join(barcodes.get(variant_id, ()))
        for name in ("cost_price", "sale_price"):
            if row[name] is not None:
                row[name] = money.format_amount(row[name], currency_digits)
        row["active"] = 1 if row["active"] else 0
        writer.writerow(["" if row[name] is None else row[name] for name in COLUMNS])
    return len(rows)
