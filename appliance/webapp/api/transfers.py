"""GET /transfers and /transfers/<code>: goods between two locations, what was sent, received, short or over."""

from __future__ import annotations

from flask import jsonify

from appliance.errors import UnknownTransfer
from appliance.ledger import queries
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Query, offset_page, paging
from appliance.webapp.api.shapes import movements_json, row_dict
from appliance.webapp.context import parts, requires

STATUSES = ("in_transit", "partial", "received", "closed")
OPEN = ("in_transit", "partial")
TRANSFER = ("code", "origin", "sku", "from_location", "to_location", "from_site", "to_site", "qty_sent",
            "qty_received", "qty_short", "qty_over", "qty_open", "status", "created_at", "closed_at")
_TRANSFER_SQL = ("SELECT t.code, t.origin, v.sku, fl.code, tl.code, fl.site_id, tl.site_id, t.qty_sent,"
                 " t.qty_received, t.qty_short, t.qty_over,"
                 " CASE WHEN t.status IN ('in_transit', 'partial') THEN t.qty_sent - t.qty_received - t.qty_short"
                 " ELSE 0 END, t.status, t.created_at, t.closed_at FROM transfer t"
                 " JOIN variant v ON v.id = t.variant_id JOIN location fl ON fl.id = t.from_location_id"
                 " JOIN location tl ON tl.id = t.to_location_id")


@bp.get("/transfers")
@requires("view")
def list_transfers():
    query = Query("status", "sku", "location", "limit", "offset")
    status = query.choice("status", STATUSES + ("open",))
    sku, location = query.text("sku"), query.text("location")
    limit, offset = paging(query)
    query.done()
    where, params = [], []
    if status == "open":
        where.append("t.status IN ('in_transit', 'partial')")
    elif status:
        where.append("t.status = ?")
        params.append(status)
    if sku:
        where.append("v.sku = ?")
        params.append(sku)
    if location:
        where.append("(fl.code = ? OR tl.code = ?)")
        params += [location, location]
    condition = " AND ".join(where) or "1"
    rows = parts().db.connection().execute(
        f"{_TRANSFER_SQL} WHERE {condition} ORDER BY t.id DESC LIMIT ? OFFSET ?", params + [limit + 1, offset])
    items = [row_dict(TRANSFER, row) for row in rows]
    return jsonify(offset_page(items, limit, offset, "api.list_transfers", status=status, sku=sku,
                               location=location))


@bp.get("/transfers/<code>")
@requires("view")
def get_transfer(code: str):
    Query().done()
    conn = parts().db.connection()
    row = conn.execute(f"{_TRANSFER_SQL} WHERE t.code = ?", (code.upper(),)).fetchone()
    if row is None:
        raise UnknownTransfer(code)
    transfer = row_dict(TRANSFER, row)
    transfer["movements"] = movements_json(queries.load_movements(
        conn, "m.ref_type = 'transfer' AND m.ref_id = ?", (transfer["code"],)))
    return jsonify(transfer)
