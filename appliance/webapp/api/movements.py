"""GET /movements (newest first, cursor paging), GET /movements/<id>, POST /movements/<id>/reverse.

Newest first is by timestamp, then id, as `queries.history` orders; that order is an index (movement_ts, and
movement_variant_ts for one SKU), so a page reads a page of rows. Paging is a cursor, not an offset: `next`
carries `after_id` (the last movement of the page) and the next page starts right after it, so a page never
shows a row twice or skips one while movements arrive, and page 500 costs what page 1 costs.
Posting movements is in movements_post.py.
"""

from __future__ import annotations

from flask import jsonify
from flask_babel import gettext as _

from appliance.errors import UnknownMovement
from appliance.ledger import queries
from appliance.ledger.requests import ALL_KINDS
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import MAX_INT, Fields, Query, json_body, next_url, raise_if
from appliance.webapp.api.shapes import movement_json, movements_json, posted
from appliance.webapp.context import can, parts, principal, requires


def _filters(conn, sku, location, kind, user, ref, since, until, origin, after_id) -> tuple[str, list]:
    """The filters of `queries.history`, plus the cursor."""
    where, params = queries.movement_conditions(conn, sku=sku, location=location, kind=kind, user=user, ref=ref,
                                                since=since, until=until, origin=origin)
    if after_id is not None:
        cursor_ts, cursor_id = after_id
        where.append("m.ts <= ? AND (m.ts < ? OR m.id < ?)")
        params += [cursor_ts, cursor_ts, cursor_id]
    return " AND ".join(where) or "1", params


@bp.get("/movements")
@requires("view")
def list_movements():
    query = Query("sku", "location", "kind", "user", "ref", "since", "until", "origin", "limit", "after_id")
    args = {name: query.text(name) for name in ("sku", "location", "user", "ref", "origin")}
    args["kind"] = query.choice("kind", ALL_KINDS)
    args["since"], args["until"] = query.timestamp("since"), query.timestamp("until")
    limit = query.integer("limit", 50, 1, 500)
    after_id = query.integer("after_id", None, 1, MAX_INT)
    conn = parts().db.connection()
    cursor = None
    if after_id is not None:
        found = conn.execute("SELECT ts FROM movement WHERE id = ?", (after_id,)).fetchone()
        if found is None:
            query.errors["after_id"] = _("no movement %(id)d: use the `next` link of the previous page",
                                         id=after_id)
        cursor = (found[0] if found else "", after_id)
    query.done()
    where, params = _filters(conn, **args, after_id=cursor)
    records = queries.load_movements(conn, where, params, order="m.ts DESC, m.id DESC", limit=limit + 1)
    page = records[:limit]
    more = len(records) > limit
    return jsonify({"items": movements_json(page), "limit": limit,
                    "next": next_url("api.list_movements", **args, limit=limit, after_id=page[-1].id)
                    if more else None})


@bp.get("/movements/<int:movement_id>")
@requires("view")
def get_movement(movement_id: int):
    Query().done()
    found = queries.load_movements(parts().db.connection(), "m.id = ?", (movement_id,)) \
        if movement_id <= MAX_INT else []
    if not found:
        raise UnknownMovement(movement_id)
    item = movement_json(found[0], can("see_costs"))
    reversed_by = parts().db.connection().execute("SELECT id FROM movement WHERE reverses_id = ?",
                                                  (movement_id,)).fetchone()
    item["reversed_by"] = reversed_by[0] if reversed_by else None
    return jsonify(item)


@bp.post("/movements/<int:movement_id>/reverse")
@requires("reverse")
def reverse_movement(movement_id: int):
    fields = Fields(json_body())
    fields.only(("reason", "op_id"))
    reason = fields.text("reason", required=True)
    op_id = fields.op_id()
    raise_if(fields.errors)
    if movement_id > MAX_INT:   # beyond SQLite's integers: no such row, and no OverflowError from the driver
        raise UnknownMovement(movement_id)
    result = parts().ledger.reverse(movement_id, reason, op_id=op_id, user=principal().login, device="api")
    return posted(result, op_id)
