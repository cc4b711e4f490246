"""GET /locations and /locations/<code>: the places stock is kept, on this site and the others this box knows."""

from __future__ import annotations

from flask import jsonify

from appliance.errors import UnknownLocation
from appliance.ledger import queries
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Query, next_url, paging
from appliance.webapp.api.shapes import row_dict
from appliance.webapp.context import parts, requires

LOCATION = ("code", "site", "name", "kind", "parent", "active", "local")
_LOCATION_SQL = ("SELECT l.code, l.site_id, l.name, l.kind, parent.code, l.active, s.is_local FROM location l"
                 " JOIN site s ON s.id = l.site_id LEFT JOIN location parent ON parent.id = l.parent_id")
KINDS = ("warehouse", "zone", "bin", "dock", "in-transit")


@bp.get("/locations")
@requires("view")
def list_locations():
    query = Query("site", "kind", "include_inactive", "limit", "offset")
    site = query.text("site")
    kind = query.choice("kind", KINDS)
    include_inactive = query.boolean("include_inactive")
    limit, offset = paging(query, default=200, maximum=1000)
    query.done()
    where, params = [], []
    if site:
        where.append("l.site_id = ?")
        params.append(site)
    if kind:
        where.append("l.kind = ?")
        params.append(kind)
    if not include_inactive:
        where.append("l.active")
    condition = " AND ".join(where) or "1"
    conn = parts().db.connection()
    total = conn.execute(f"SELECT count(*) FROM location l WHERE {condition}", params).fetchone()[0]
    items = [row_dict(LOCATION, row, flags=("active", "local")) for row in conn.execute(
        f"{_LOCATION_SQL} WHERE {condition} ORDER BY l.code LIMIT ? OFFSET ?", params + [limit, offset])]
    more = offset + len(items) < total
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset,
                    "next": next_url("api.list_locations", site=site, kind=kind, limit=limit, offset=offset + limit,
                                     include_inactive="true" if include_inactive else None) if more else None})


@bp.get("/locations/<code>")
@requires("view")
def get_location(code: str):
    query = Query("by_lot", "limit", "offset")
    by_lot = query.boolean("by_lot")
    limit, offset = paging(query, default=200, maximum=1000)
    query.done()
    conn = parts().db.connection()
    row = conn.execute(f"{_LOCATION_SQL} WHERE l.code = ?", (code,)).fetchone()
    if row is None:
        raise UnknownLocation(code)
    location = row_dict(LOCATION, row, flags=("active", "local"))
    # One more line than the page, to know whether there is a next page without counting them all.
    lines = queries.stock_levels(conn, location=code, by_lot=by_lot, limit=limit + 1, offset=offset)
    location["stock"] = [line.to_dict() for line in lines[:limit]]
    location["next"] = next_url("api.get_location", code=code, by_lot="true" if by_lot else None, limit=limit,
                                offset=offset + limit) if len(lines) > limit else None
    return jsonify(location)
