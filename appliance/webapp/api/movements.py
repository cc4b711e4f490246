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


_REF_TYPES = ("SELECT x FROM (WITH RECURSIVE t(x) AS (SELECT min(ref_type) FROM movement WHERE ref_type IS NOT NULL"
              " UNION ALL SELECT (SELECT min(ref_type) FROM movement WHERE ref_type > t.x) FROM t"
              " WHERE t.x IS NOT NULL) SELECT x FROM t WHERE x IS NOT NULL)")


# A location with fewer movements out of it than this is looked up through indexes; a busier one is found
# soon enough by walking the newest movements (see _location_filter).
BUSY_LOCATION = 1000


def _location_filter(conn, code: str) -> tuple[str, list]:
    """Movements from or to a location. Only a transfer_out has a destination (`to_location_id`, which has no
    index), always with ref_type 'transfer' (ledger/transfers.py, and so on every site). Walking the newest
    movements finds 50 of a busy location in a few hundred rows, but would read all million for a quiet one;
    the quiet one is read through movement_location and movement_ref instead, in a bounded time."""
    found = conn.execute("SELECT id FROM location WHERE code = ?", (code,)).fetchone()
    if found is None:
        return "0", []
    busy = conn.execute("SELECT count(*) FROM (SELECT 1 FROM movement WHERE location_id = ? LIMIT ?)",
                        (found[0], BUSY_LOCATION)).fetchone()[0] >= BUSY_LOCATION
    if busy:
        return "(m.location_id = ? OR m.to_location_id = ?)", [found[0], found[0]]
    return "(m.location_id = ? OR (m.ref_type = 'transfer' AND m.to_location_id = ?))", [found[0], found[0]]


def _filters(conn, sku, location, kind, user, ref, since, until, origin, after_id) -> tuple[str, list]:
    """The filters of `queries.history`, plus the cursor."""
    where, params = [], []
    if sku:
        where.append("m.variant_id = (SELECT id FROM variant WHERE sku = ?)")
        params.append(sku)
    if location:
        condition, values = _location_filter(conn, location)
        where.append(condition)
        params += values
    if kind:
        where.append("m.kind = ?")
        params.append(kind)
    if user:
        where.append("m.user_login = ?")
        params.append(user)
    if ref:
        ref_type, _colon, ref_id = ref.rpartition(":")
        if ref_type:
            where.append("m.ref_type = ? AND m.ref_id = ?")
            params += [ref_type, ref_id]
        else:
            # Any type: the few distinct types, read by skipping along the (ref_type, ref_id) index, make the
            # lookup one index search per type instead of a scan of every movement.
            where.append(f"m.ref_type IN ({_REF_TYPES}) AND m.ref_id = ?")
            params.append(ref_id)
    if since:
        where.append("m.ts >= ?")
        params.append(since)
    if until:
        where.append("m.ts <= ?")
        params.append(until)
    if origin:
        # `+`: not the (origin, epoch, seq) index, whose order is not the listing's and would mean a sort.
        where.append("+m.origin = ?")
        params.append(origin)
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
