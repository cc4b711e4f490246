"""The stock pages: the site-wide list (filters, level colours, live cells), one variant everywhere, one location.

Everything reads the `stock` projection, never sums movements (the chart reads one variant's recent movements,
see stock_chart.py). The list walks the SKU index: it picks the page's variants first and sums stock for those
only (the trick of `queries.stock_levels`, with the level filter and reorder points added), and pages by key,
so a page costs about the same at 50,000 variants as at 50. A level few lines have would make that walk cross
the whole catalog: "out" is found through a cheap scan for rows with nothing available, and the other levels
look through SCAN_VARIANTS SKUs per page, offering to keep looking.

A line's level: out when available (on hand − reserved) is 0 or less; low at or below the reorder point (the
location's `reorder_override`, else the variant's); over above reorder point + 2 × reorder quantity when both
are set; else ok. web/static/stock.js applies the same rule when a live movement changes a line.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _

from appliance.errors import UnknownLocation, UnknownSku
from appliance.ledger import queries
from appliance.webapp import events, stock_chart
from appliance.webapp.context import parts, requires

bp = Blueprint("stock", __name__)

PAGE = 50   # a phone screen's worth several times over; rendering, not the query, is what a row costs
SCAN_VARIANTS = 5000   # SKUs one page of a level filter looks through at most
LEVELS = ("out", "low", "over", "ok")
OVER_FACTOR = 2


def level_of(on_hand: int, reserved: int, reorder_point: int | None, reorder_qty: int | None) -> str:
    available = on_hand - reserved
    if available <= 0:
        return "out"
    if reorder_point is not None and available <= reorder_point:
        return "low"
    if reorder_point is not None and reorder_qty is not None and available > reorder_point + OVER_FACTOR * reorder_qty:
        return "over"
    return "ok"


def _level_sql(on_hand: str, reserved: str, point: str, qty: str) -> str:
    """`level_of` in SQL, over the given column expressions."""
    available = f"({on_hand} - {reserved})"
    return (f"CASE WHEN {available} <= 0 THEN 'out'"
            f" WHEN {point} IS NOT NULL AND {available} <= {point} THEN 'low'"
            f" WHEN {point} IS NOT NULL AND {qty} IS NOT NULL AND {available} > {point} + {OVER_FACTOR} * {qty}"
            " THEN 'over' ELSE 'ok' END")


@dataclass(frozen=True)
class Line:
    sku: str
    product: str
    name: str
    unit: str
    location: str
    site: str
    on_hand: int
    reserved: int
    in_transit: int
    expiry: str | None
    reorder_point: int | None
    reorder_qty: int | None
    level: str

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def stock_lines(conn: sqlite3.Connection, *, search: str = "", site: str | None = None,
                location_id: int | None = None, level: str | None = None, limit: int = PAGE,
                after: tuple[str, str] | None = None, before: str | None = None) -> list[Line]:
    """Lines per variant and location in (SKU, location) order, the first `limit` past `after` (a line's SKU and
    location code) and of SKUs before `before`: those holding stock, and empty ones where a reorder override
    says stock belongs (out).

    Paging by key, not by offset, so the 500th page costs what the first does."""
    variant_where, variant_args = [], []
    text = search.strip()
    if len(text) >= 3:
        # The trigram index finds the text anywhere in SKU and names; a barcode must match whole.
        variant_where.append("(v.id IN (SELECT rowid FROM variant_search WHERE variant_search MATCH ?)"
                             " OR v.id IN (SELECT variant_id FROM barcode WHERE code = ?))")
        variant_args += ['"' + text.replace('"', '""') + '"', text]
    elif text:
        # SKUs starting with the text along the SKU index, product names starting with it (as search_variants).
        variant_where.append("v.id IN (SELECT id FROM variant WHERE sku >= ? AND sku < ? || char(1114111)"
                             " UNION SELECT w.id FROM product p JOIN variant w ON w.product_id = p.id"
                             " WHERE p.name LIKE ? ESCAPE '\\')")
        variant_args += [text.upper(), text.upper(), _escape_like(text) + "%"]
    if after is not None:
        variant_where.append("v.sku >= ?")
        variant_args.append(after[0])
    if before is not None:
        variant_where.append("v.sku < ?")
        variant_args.append(before)
    if level == "out":
        # Few lines are out, so walking every variant to find them would read the whole stock table grouped.
        # An out line has a non-empty row with on hand <= reserved, or an override: a cheap scan finds those.
        variant_where.append("v.id IN (SELECT variant_id FROM stock WHERE on_hand <= reserved"
                             " AND (on_hand != 0 OR reserved != 0 OR in_transit != 0)"
                             " UNION SELECT variant_id FROM reorder_override)")
    elif level in ("low", "over"):
        # Neither is possible without a reorder point; many catalogs set one for a few variants only.
        variant_where.append("(v.reorder_point IS NOT NULL OR v.id IN"
                             " (SELECT variant_id FROM reorder_override WHERE reorder_point IS NOT NULL))")
    place_where, place_args = [], []
    if site:
        place_where.append("l.site_id = ?")
        place_args.append(site)
    if location_id is not None:
        place_where.append("l.id = ?")
        place_args.append(location_id)
        # One location holds few of the 50,000 variants: let SQLite start from them, not from every variant.
        variant_where.append("v.id IN (SELECT variant_id FROM stock WHERE location_id = ?"
                             " UNION SELECT variant_id FROM reorder_override WHERE location_id = ?)")
        variant_args += [location_id, location_id]
    places = " AND ".join(place_where) or "1"
    # The location is joined only to filter by it: on a page of every site it would cost a lookup per row.
    located = " JOIN location l ON l.id = s.location_id" if place_where else ""
    point = "coalesce(ro.reorder_point, v.reorder_point)"
    qty = "coalesce(ro.reorder_qty, v.reorder_qty)"
    grouped_level = _level_sql("sum(s.on_hand)", "sum(s.reserved)", point, qty)
    keep = ("(sum(s.on_hand) != 0 OR sum(s.reserved) != 0 OR sum(s.in_transit) != 0 OR ro.id IS NOT NULL)"
            + (f" AND {grouped_level} = ?" if level else ""))
    keep_args = [level] if level else []
    # An override with no stock row at all is an empty line, which is always "out".
    bare_overrides = level in (None, "out")
    bare = (" UNION ALL SELECT 1 FROM reorder_override ro JOIN location l ON l.id = ro.location_id"
            f" WHERE ro.variant_id = v.id AND {places} AND NOT EXISTS (SELECT 1 FROM stock s"
            " WHERE s.variant_id = ro.variant_id AND s.location_id = ro.location_id)") if bare_overrides else ""
    holds = (f"EXISTS (SELECT 1 FROM stock s{located}"
             " LEFT JOIN reorder_override ro ON ro.variant_id = s.variant_id AND ro.location_id = s.location_id"
             f" WHERE s.variant_id = v.id AND {places} GROUP BY s.location_id HAVING {keep}{bare})")
    lines_level = _level_sql("x.on_hand", "x.reserved", point, qty)
    past = "AND (v.sku, l.code) > (?, ?)" if after is not None else ""
    sql = f"""
        WITH page AS (
            SELECT v.id FROM variant v WHERE {' AND '.join(variant_where + [holds])}
            ORDER BY v.sku LIMIT ?),
        lines AS (
            SELECT s.variant_id, s.location_id, sum(s.on_hand) AS on_hand, sum(s.reserved) AS reserved,
                   sum(s.in_transit) AS in_transit,
                   min(CASE WHEN s.on_hand != 0 OR s.in_transit != 0 THEN s.expiry END) AS expiry
            FROM page CROSS JOIN stock s ON s.variant_id = page.id GROUP BY s.variant_id, s.location_id
            UNION ALL
            SELECT ro.variant_id, ro.location_id, 0, 0, 0, NULL
            FROM page CROSS JOIN reorder_override ro ON ro.variant_id = page.id
            WHERE NOT EXISTS (SELECT 1 FROM stock s WHERE s.variant_id = ro.variant_id
                              AND s.location_id = ro.location_id))
        SELECT v.sku, p.name, v.name, v.unit, l.code, l.site_id, x.on_hand, x.reserved, x.in_transit, x.expiry,
               {point}, {qty}, {lines_level} AS level
        FROM lines x JOIN variant v ON v.id = x.variant_id JOIN product p ON p.id = v.product_id
        JOIN location l ON l.id = x.location_id
        LEFT JOIN reorder_override ro ON ro.variant_id = x.variant_id AND ro.location_id = x.location_id
        WHERE {places} {past}
          AND (x.on_hand != 0 OR x.reserved != 0 OR x.in_transit != 0 OR ro.id IS NOT NULL)
          {"AND level = ?" if level else ""}
        ORDER BY v.sku, l.code LIMIT ?"""
    # Every variant of the page yields a line, except perhaps the one the previous page ended in.
    variants = limit + (1 if after is not None else 0)
    args = (variant_args + place_args + keep_args + (place_args if bare_overrides else []) + [variants]
            + place_args + (list(after) if after is not None else []) + keep_args + [limit])
    return [Line(*row) for row in conn.execute(sql, args)]


def thresholds(conn: sqlite3.Connection, variant_id: int) -> tuple[dict[str, tuple[int | None, int | None]],
                                                                  tuple[int | None, int | None]]:
    """(reorder point, reorder qty) of one variant per location code that overrides it, and the variant's own."""
    own = conn.execute("SELECT reorder_point, reorder_qty FROM variant WHERE id = ?", (variant_id,)).fetchone()
    overrides = {code: (point, qty) for code, point, qty in conn.execute(
        "SELECT l.code, ro.reorder_point, ro.reorder_qty FROM reorder_override ro"
        " JOIN location l ON l.id = ro.location_id WHERE ro.variant_id = ?", (variant_id,))}
    return overrides, (own[0], own[1]) if own else (None, None)


def located(conn: sqlite3.Connection, variant_id: int, sku: str) -> list[dict]:
    """One variant's stock per location of every site, with its level and thresholds (for the detail pages)."""
    overrides, own = thresholds(conn, variant_id)
    out = []
    for line in queries.stock_levels(conn, sku=sku):
        point, qty = overrides.get(line.location, (None, None))
        point = own[0] if point is None else point
        qty = own[1] if qty is None else qty
        out.append({"line": line, "reorder_point": point, "reorder_qty": qty,
                    "level": level_of(line.on_hand, line.reserved, point, qty)})
    return out


def find_variant(conn: sqlite3.Connection, sku: str) -> dict:
    row = conn.execute(
        "SELECT v.id, v.sku, v.name, v.unit, v.active, p.sku, p.name, p.category FROM variant v"
        " JOIN product p ON p.id = v.product_id WHERE v.sku = ?", (sku,)).fetchone()
    if row is None:
        raise UnknownSku(sku)
    return dict(zip(("id", "sku", "name", "unit", "active", "product_sku", "product", "category"), row))


def chart(conn: sqlite3.Connection, variant: dict) -> object:
    config = parts().config
    return stock_chart.chart_for(
        conn, variant["id"], tz=config.site.timezone,
        title=_("On hand of %(sku)s at the end of each day, last %(days)s days", sku=variant["sku"],
                days=stock_chart.DAYS))


def _offset() -> int:
    return max(0, request.args.get("offset", 0, type=int) or 0)


@bp.route("/stock")
@requires("view")
def index():
    conn = parts().db.connection()
    # The cursor comes first: a movement committed while the page is read is sent again, never missed.
    since = events.current_cursor(conn).text()
    search = request.args.get("q", "").strip()[:200]
    site = request.args.get("site", "").strip().upper()
    location = request.args.get("location", "").strip().upper()
    level = request.args.get("level", "").strip().lower()
    after_sku, after_location = request.args.get("after", ""), request.args.get("after_location", "")
    after = (after_sku, after_location) if after_sku else None
    sites = conn.execute("SELECT id, name FROM site ORDER BY id").fetchall()
    errors = {}
    if site and site not in {row[0] for row in sites}:
        errors["site"] = _("There is no site %(site)s.", site=site)
    if level and level not in LEVELS:
        errors["level"] = _("Choose a level: out, low, over or ok.")
    location_id = None
    if location:
        row = conn.execute("SELECT id FROM location WHERE code = ?", (location,)).fetchone()
        if row is None:
            errors["location"] = _("There is no location %(code)s.", code=location)
        else:
            location_id = row[0]
    horizon = None
    if level in ("low", "over", "ok") and not errors:
        # A level that few lines have would make the page walk the whole catalog (half a second at 50,000
        # variants): look through the next SCAN_VARIANTS SKUs only, and offer to look further.
        row = conn.execute("SELECT sku FROM variant WHERE sku >= ? ORDER BY sku LIMIT 1 OFFSET ?",
                           (after[0] if after else "", SCAN_VARIANTS)).fetchone()
        horizon = row[0] if row else None
    lines = [] if errors else stock_lines(conn, search=search, site=site or None, location_id=location_id,
                                          level=level or None, limit=PAGE + 1, after=after, before=horizon)
    filters = {name: value for name, value in
               (("q", search), ("site", site), ("location", location), ("level", level)) if value}
    more_url, looked_to = None, None
    if len(lines) > PAGE:
        lines = lines[:PAGE]
        more_url = url_for("stock.index", after=lines[-1].sku, after_location=lines[-1].location, **filters)
    elif horizon is not None:
        looked_to = horizon
        more_url = url_for("stock.index", after=horizon, after_location="", **filters)
    codes = [code for (code,) in conn.execute(
        "SELECT code FROM location WHERE site_id = ? AND active ORDER BY code LIMIT 2000",
        (site or parts().config.site.id,))]
    return render_template("stock/index.html", lines=lines, more_url=more_url, looked_to=looked_to,
                           paged=after is not None,
                           filters=filters, errors=errors, sites=sites,
                           location_codes=codes, since=since), 400 if errors else 200


@bp.route("/stock/<path:sku>")
@requires("view")
def variant(sku: str):
    conn = parts().db.connection()
    since = events.current_cursor(conn).text()
    found = find_variant(conn, sku)
    return render_template("stock/variant.html", variant=found, since=since,
                           by_location=located(conn, found["id"], sku),
                           lots=queries.stock_levels(conn, sku=sku, by_lot=True),
                           totals=queries.totals_by_site(conn, sku), chart=chart(conn, found))


@bp.route("/locations/<code>")
@requires("view")
def location(code: str):
    conn = parts().db.connection()
    row = conn.execute("SELECT l.code, l.name, l.kind, l.active, l.site_id, s.name FROM location l"
                       " JOIN site s ON s.id = l.site_id WHERE l.code = ?", (code.upper(),)).fetchone()
    if row is None:
        raise UnknownLocation(code)
    place = dict(zip(("code", "name", "kind", "active", "site", "site_name"), row))
    offset = _offset()
    lines = queries.stock_levels(conn, location=place["code"], by_lot=True, limit=PAGE + 1, offset=offset)
    return render_template("stock/location.html", place=place, lines=lines[:PAGE], more=len(lines) > PAGE,
                           offset=offset, page=PAGE)
