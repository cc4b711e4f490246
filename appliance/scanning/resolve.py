"""Resolution: what an interpreted scan names in this box's catalog and locations (issue 4).

A GTIN is looked up in the barcode table however the catalog wrote it (GTIN-14, EAN-13, UPC-A or EAN-8: the
same number with leading zeros dropped); a case GTIN resolves to its pack, so one scan of a case of 12 is 12
units. A location code is checked against the location table; one that is not there but has the shape of a
purchase order number (BER-PO-0001) is that order's document. What cannot be resolved is said, never guessed.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from appliance.scanning.barcodes import Interpretation

# Purchase order numbers as orders.next_number writes them (BER-PO-0001). barcodes.py reads only six or more
# digits as a document, to keep them apart from an aisle called PO; with fewer, a code this box has no location
# for is an order number. Under another `[purchasing] po_prefix` only the orders this box has are recognised.
_PO_NUMBER = re.compile(r"[A-Z][A-Z0-9]{1,7}-PO-[0-9]{4,12}")


def gtin_spellings(gtin14: str) -> list[str]:
    """The forms a catalog may have stored the GTIN-14 in: itself, then 13, 12 and 8 digits when the dropped
    digits are zeros."""
    forms = [gtin14]
    for length in (13, 12, 8):
        if gtin14[:14 - length] == "0" * (14 - length):
            forms.append(gtin14[14 - length:])
    return forms


def resolve(conn: sqlite3.Connection, found: Interpretation) -> dict[str, Any]:
    """The interpretation as JSON plus sku, pack, units (quantity a scan stands for), location_site, resolved."""
    out = found.to_dict()
    out.update(sku=None, pack=None, units=None, location_site=None, resolved=False)
    if found.gtin:
        forms = gtin_spellings(found.gtin)
        row = conn.execute(
            "SELECT v.sku, p.name, coalesce(p.qty, 1) FROM barcode b JOIN variant v ON v.id = b.variant_id"
            f" LEFT JOIN pack p ON p.id = b.pack_id WHERE b.code IN ({', '.join('?' * len(forms))})"
            " ORDER BY length(b.code) DESC LIMIT 1", forms).fetchone()
        if row is not None:
            out.update(sku=row[0], pack=row[1], units=row[2] * (found.quantity or 1), resolved=True)
    elif found.kind == "text" and found.text:
        # Supplier and internal codes are stored as barcodes too; a SKU printed as Code 128 is itself.
        row = conn.execute("SELECT v.sku FROM barcode b JOIN variant v ON v.id = b.variant_id WHERE b.code = ?"
                           " UNION ALL SELECT sku FROM variant WHERE sku = ? LIMIT 1",
                           (found.text, found.text)).fetchone()
        if row is not None:
            out.update(sku=row[0], units=1, resolved=True)
    elif found.location:
        row = conn.execute("SELECT site_id FROM location WHERE code = ?", (found.location,)).fetchone()
        if row is not None:
            out.update(location_site=row[0], resolved=True)
        elif _PO_NUMBER.fullmatch(found.location) or conn.execute(
                "SELECT 1 FROM purchase_order WHERE number = ?", (found.location,)).fetchone():
            out.update(kind="document", document_type="purchase_order", document=found.location, location=None,
                       resolved=True)
    elif found.ok:
        out["resolved"] = found.kind in ("command", "quantity", "document", "badge", "gs1")
    return out
