"""Reservations: list, read, reserve (POST /reservations) and release (POST /reservations/<id>/release).

Both writes are ledger posts (`Ledger.reserve`, `Ledger.release`), idempotent on `op_id` like every post.
"""

from __future__ import annotations

import re

from flask import jsonify, url_for

from appliance.errors import UnknownReservation
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import MAX_INT, Fields, Query, json_body, offset_page, paging, raise_if
from appliance.webapp.api.shapes import posted, row_dict
from appliance.webapp.context import parts, principal, requires

STATUSES = ("held", "consumed", "released", "expired")
RESERVATION = ("id", "sku", "location", "lot", "qty", "qty_consumed", "qty_released", "qty_open", "ref", "status",
               "expires_at", "created_at", "closed_at")
_RESERVATION_SQL = ("SELECT r.id, v.sku, l.code, r.lot, r.qty, r.qty_consumed, r.qty_released,"
                    " r.qty - r.qty_consumed - r.qty_released, r.ref, r.status, r.expires_at, r.created_at,"
                    " r.closed_at FROM reservation r JOIN variant v ON v.id = r.variant_id"
                    " JOIN location l ON l.id = r.location_id")
_DIGITS = re.compile(r"[0-9]+")


def _reservation(reservation_id: int) -> dict:
    row = parts().db.connection().execute(f"{_RESERVATION_SQL} WHERE r.id = ?", (reservation_id,)).fetchone() \
        if reservation_id <= MAX_INT else None
    if row is None:
        raise UnknownReservation(reservation_id)
    return row_dict(RESERVATION, row)


@bp.get("/reservations")
@requires("view")
def list_reservations():
    query = Query("status", "ref", "sku", "location", "limit", "offset")
    status = query.choice("status", STATUSES)
    ref, sku, location = query.text("ref"), query.text("sku"), query.text("location")
    limit, offset = paging(query)
    query.done()
    where, params = [], []
    for condition, value in (("r.status = ?", status), ("r.ref = ?", ref), ("v.sku = ?", sku),
                             ("l.code = ?", location)):
        if value:
            where.append(condition)
            params.append(value)
    rows = parts().db.connection().execute(
        f"{_RESERVATION_SQL} WHERE {' AND '.join(where) or '1'} ORDER BY r.id DESC LIMIT ? OFFSET ?",
        params + [limit + 1, offset])
    items = [row_dict(RESERVATION, row) for row in rows]
    return jsonify(offset_page(items, limit, offset, "api.list_reservations", status=status, ref=ref, sku=sku,
                               location=location))


@bp.get("/reservations/<int:reservation_id>")
@requires("view")
def get_reservation(reservation_id: int):
    Query().done()
    return jsonify(_reservation(reservation_id))


@bp.post("/reservations")
@requires("reserve")
def reserve():
    fields = Fields(json_body())
    fields.only(("sku", "location", "qty", "ref", "lot", "expires_at", "op_id"))
    sku = fields.text("sku", required=True)
    location = fields.text("location", required=True, max_len=40)
    qty = fields.integer("qty", required=True, minimum=1)
    ref = fields.text("ref", nullable=True, default=None)
    lot = fields.text("lot", nullable=True, default=None, max_len=64) or ""
    expires_at = fields.text("expires_at", nullable=True, default=None, max_len=40)
    op_id = fields.op_id()
    raise_if(fields.errors)
    result = parts().ledger.reserve(sku, location, qty, ref=ref, lot=lot, expires_at=expires_at, op_id=op_id,
                                    user=principal().login, device="api")
    created = result.movements[0].ref_id if result.movements else None
    reservation = _reservation(int(created)) if created and _DIGITS.fullmatch(created) else None
    response = posted(result, op_id, reservation=reservation)
    if reservation is not None:
        response.headers["Location"] = url_for("api.get_reservation", reservation_id=reservation["id"])
    return response


@bp.post("/reservations/<int:reservation_id>/release")
@requires("reserve")
def release(reservation_id: int):
    fields = Fields(json_body(empty_ok=True))
    fields.only(("qty", "op_id"))
    qty = fields.integer("qty", nullable=True, default=None, minimum=1)
    op_id = fields.op_id()
    raise_if(fields.errors)
    if reservation_id > MAX_INT:
        raise UnknownReservation(reservation_id)
    result = parts().ledger.release(reservation_id, qty or 0, op_id=op_id, user=principal().login, device="api")
    return posted(result, op_id, reservation=_reservation(reservation_id))
