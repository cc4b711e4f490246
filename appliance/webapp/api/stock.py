"""GET /stock: stock per variant and location (or per lot), now from the projection or as of a past moment.

`as_of` replays the movements up to that moment (`queries.stock_as_of`), so it answers "what did we hold at
closing on 31 October" from the ledger itself, never from a snapshot.
"""

from __future__ import annotations

from flask import jsonify

from appliance.ledger import queries
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Query, next_url, paging
from appliance.webapp.context import parts, requires


def _matches(line: queries.StockLine, text: str) -> bool:
    # What stock_levels' `search` matches (SKU prefix, name part), for the replayed lines of `as_of`.
    text = text.lower()
    return line.sku.lower().startswith(text) or text in line.name.lower()


@bp.get("/stock")
@requires("view")
def list_stock():
    query = Query("sku", "location", "site", "q", "as_of", "by_lot", "include_empty", "sort", "limit", "offset")
    sku, location, site, text = query.text("sku"), query.text("location"), query.text("site"), query.text("q")
    as_of = query.timestamp("as_of")
    by_lot, include_empty = query.boolean("by_lot"), query.boolean("include_empty")
    sort = query.choice("sort", tuple(queries.STOCK_SORTS))
    limit, offset = paging(query, default=100, maximum=1000)
    query.done()
    conn = parts().db.connection()
    if as_of is None:
        lines = queries.stock_levels(conn, sku=sku, location=location, site=site, search=text, by_lot=by_lot,
                                     include_empty=include_empty, sort=sort or "sku", limit=limit + 1, offset=offset)
    else:
        replayed = queries.stock_as_of(conn, as_of, sku=sku, location=location, site=site, by_lot=by_lot,
                                       include_empty=include_empty)
        if text:
            replayed = [line for line in replayed if _matches(line, text)]
        if sort and sort != "sku":
            keys = {"location": lambda x: (x.location, x.sku), "on_hand": lambda x: (-x.on_hand, x.sku, x.location),
                    "available": lambda x: (x.available, x.sku, x.location)}
            replayed.sort(key=keys[sort])
        lines = replayed[offset:offset + limit + 1]
    more = len(lines) > limit
    return jsonify({
        "items": [line.to_dict() for line in lines[:limit]], "as_of": as_of, "limit": limit, "offset": offset,
        "next": next_url("api.list_stock", sku=sku, location=location, site=site, q=text, as_of=as_of,
                         by_lot="true" if by_lot else None, include_empty="true" if include_empty else None,
                         sort=sort, limit=limit, offset=offset + limit) if more else None})
