"""Linking an unknown barcode from the scan log to a variant, a pack or a new location (issue 4).

An unknown code is never lost: the scan stays in the log as unresolved. Linking teaches the box the code (a
barcode row for a variant or one of its packs, or a location of this site); replaying the scan
(StationDesk.replay) then does what the scan would have done, in the session it was scanned in, once.
"""

from __future__ import annotations

import json
from typing import Any

import peewee

from appliance.errors import InvalidInput, UnknownSku
from appliance.ledger.sites import add_location, owns
from appliance.scanning.resolve import gtin_spellings
from appliance.scanning.scan_log import ScanNotFound


def scanned_code(interpretation: dict[str, Any]) -> str:
    """The code a barcode row should hold for this scan: its GTIN-14 when it carried one, else its text."""
    return interpretation.get("gtin") or interpretation.get("location") or interpretation.get("text") or ""


def link(db: peewee.SqliteDatabase, site: str, scan_id: int, *, sku: str | None = None, pack: str | None = None,
         location: bool = False) -> dict[str, Any]:
    """Teach the box the code of scan `scan_id`. Returns {code, sku, pack, location, waiting: [scan ids]}."""
    if (sku is None) == (not location):
        raise InvalidInput("link a scan either to a SKU (with an optional pack) or as a new location", field="sku")
    if pack is not None and sku is None:
        raise InvalidInput("a pack belongs to a SKU: give the SKU too", field="pack")
    with db.atomic("IMMEDIATE"):
        row = db.execute_sql("SELECT interpretation FROM scan_log WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise ScanNotFound(scan_id)
        found = json.loads(row[0] or "{}")
        code = scanned_code(found)
        if not code or found.get("kind") in ("invalid", "command", "quantity", "badge", "document"):
            raise InvalidInput(f"scan {scan_id} ({found.get('raw', '')}) is not a code that can be linked "
                               f"(it reads as {found.get('kind')})", field="scan_id")
        if sku is not None:
            _link_variant(db, code, sku, pack)
    if location:
        prefix = db.execute_sql("SELECT location_prefix FROM site WHERE id = ?", (site,)).fetchone()[0] or site
        if found.get("kind") != "location" or not owns(prefix, code):
            raise InvalidInput(f"{code} is not a location code of this site (they look like {prefix}-A-01-03)",
                               field="location")
        add_location(db, site, code)
    waiting = [r[0] for r in db.execute_sql(
        "SELECT id FROM scan_log WHERE outcome = 'unresolved' AND resolved_at IS NULL AND replayed_by IS NULL"
        " AND raw = (SELECT raw FROM scan_log WHERE id = ?) ORDER BY id", (scan_id,))]
    return {"code": code, "sku": sku, "pack": pack, "location": code if location else None, "waiting": waiting}


def _link_variant(db: peewee.SqliteDatabase, code: str, sku: str, pack: str | None) -> None:
    variant = db.execute_sql("SELECT id FROM variant WHERE sku = ?", (sku,)).fetchone()
    if variant is None:
        raise UnknownSku(sku)
    pack_id = None
    if pack is not None:
        found = db.execute_sql("SELECT id FROM pack WHERE variant_id = ? AND name = ?", (variant[0], pack)).fetchone()
        if found is None:
            names = [r[0] for r in db.execute_sql("SELECT name FROM pack WHERE variant_id = ? ORDER BY qty",
                                                  (variant[0],))]
            raise InvalidInput(f"{sku} has no pack {pack!r}; its packs: {', '.join(names) or 'none'}",
                               field="pack")
        pack_id = found[0]
    forms = gtin_spellings(code) if len(code) == 14 and code.isdigit() else [code]
    taken = db.execute_sql(
        f"SELECT b.code, v.sku FROM barcode b JOIN variant v ON v.id = b.variant_id"
        f" WHERE b.code IN ({', '.join('?' * len(forms))})", forms).fetchone()
    if taken is not None:
        raise InvalidInput(f"code {taken[0]} is already linked to {taken[1]}", field="code")
    kind = "gtin" if len(code) == 14 and code.isdigit() else "supplier"
    db.execute_sql("INSERT INTO barcode (code, variant_id, pack_id, kind) VALUES (?, ?, ?, ?)",
                   (code, variant[0], pack_id, kind))
