"""The dashboard `/`: stock health per site and per location, the lines of this site that need stock, open
alerts, the latest movements and the sync state; kept current in the browser over SSE (web/static/dashboard.js).

Stock health is read from the `stock` projection only (one grouped query, never the movements), so the page
costs the same at 1,000,000 movements as at ten. A line is one SKU at one location (lots added up, plus every
pair that has a reorder override, so a bin that should hold a SKU and holds none shows as out):
- out: available (on hand − reserved) ≤ 0;
- low: available ≤ the reorder point (the location's override, else the variant's);
- over: available > reorder point + 2 × reorder quantity, when both are set.
A site's SKU is its locations added up and measured against the variant's own reorder point (overrides are
per location, so they have no meaning for a whole site).

`GET /dashboard/summary` renders the same summary as an HTML fragment: the page fetches it after movements
arrive, which keeps the counts exact without teaching the browser the rules above.
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass, field

from flask import Blueprint, current_app, get_template_attribute, render_template

from appliance.sync.status import sync_status
from appliance.webapp import events
from appliance.webapp.context import parts, requires
from appliance.webapp.i18n import current_language

bp = Blueprint("dashboard", __name__)

TOP_LINES = 20
RECENT = 20
MAX_LOCATIONS = 60   # the page is a summary; the stock page lists every location
OK, OUT, LOW, OVER = 0, 1, 2, 3
LEVELS = ("ok", "out", "low", "over")


@dataclass
class Counts:
    """SKUs of one site or location, and how many of them are out, low or over-stocked."""
    key: str
    site: str
    skus: int = 0
    out: int = 0
    low: int = 0
    over: int = 0
    on_hand: int = 0

    @property
    def attention(self) -> int:
        return self.out + self.low + self.over

    def add(self, level: int, on_hand: int) -> None:
        self.skus += 1
        self.on_hand += on_hand
        if level == OUT:
            self.out += 1
        elif level == LOW:
            self.low += 1
        elif level == OVER:
            self.over += 1


@dataclass
class Summary:
    site: str
    sites: list[Counts] = field(default_factory=list)
    locations: list[Counts] = field(default_factory=list)
    more_locations: int = 0
    lines: list[dict] = field(default_factory=list)
    lines_total: int = 0


def level(available: int, point: int | None, qty: int | None) -> int:
    if available <= 0:
        return OUT
    if point is not None and available <= point:
        return LOW
    if point is not None and qty is not None and available > point + 2 * qty:
        return OVER
    return OK


def summary(conn, site: str) -> Summary:
    """One pass over the stock projection, grouped per line in SQL, counted here.

    Three grouped SQL queries (per location, per site, top lines) each re-read and re-sort every stock row;
    one streaming pass in variant order reads them once, and the per-site sums close as each variant ends.
    """
    points = {vid: (rp, rq) for vid, rp, rq in conn.execute(
        "SELECT id, reorder_point, reorder_qty FROM variant WHERE reorder_point IS NOT NULL"
        " OR reorder_qty IS NOT NULL")}
    inactive = {vid for (vid,) in conn.execute("SELECT id FROM variant WHERE NOT active")}
    overrides = {(vid, lid): (rp, rq) for vid, lid, rp, rq in conn.execute(
        "SELECT variant_id, location_id, reorder_point, reorder_qty FROM reorder_override")}
    locations = {lid: (code, site_id) for lid, code, site_id in conn.execute("SELECT id, code, site_id FROM location")}
    by_location: dict[int, Counts] = {}
    by_site = {sid: Counts(sid, sid) for (sid,) in conn.execute("SELECT id FROM site")}  # empty sites too
    urgent: list[tuple] = []   # this site's out and low lines, to pick the most urgent from
    none = (None, None)

    # Overrides without any stock row are lines too (stocked nothing yet): fed in as zeros, in variant order.
    stocked = conn.execute(
        "SELECT variant_id, location_id, sum(on_hand - reserved), sum(on_hand) FROM stock"
        " GROUP BY variant_id, location_id ORDER BY variant_id, location_id")
    bare = sorted((vid, lid, 0, 0) for (vid, lid) in overrides if not conn.execute(
        "SELECT 1 FROM stock WHERE variant_id = ? AND location_id = ?", (vid, lid)).fetchone())
    current, per_site = None, {}

    def close_variant():
        variant_points = points.get(current, none)
        for sid, (available, on_hand) in per_site.items():
            by_site.setdefault(sid, Counts(sid, sid)).add(level(available, *variant_points), on_hand)

    for vid, lid, available, on_hand in heapq.merge(stocked, bare):
        if vid in inactive:
            continue
        if vid != current:
            close_variant()
            current, per_site = vid, {}
        rp, rq = variant = points.get(vid, none)
        own = overrides.get((vid, lid))
        if own is not None:
            rp = own[0] if own[0] is not None else variant[0]
            rq = own[1] if own[1] is not None else variant[1]
        line_level = level(available, rp, rq)
        code, sid = locations[lid]
        counts = by_location.get(lid)
        if counts is None:
            counts = by_location[lid] = Counts(code, sid)
        counts.add(line_level, on_hand)
        total = per_site.get(sid)
        per_site[sid] = (available, on_hand) if total is None else (total[0] + available, total[1] + on_hand)
        if sid == site and line_level in (OUT, LOW):
            # Out before low; then the furthest below its reorder point.
            urgent.append((line_level == LOW, available - (rp or 0), vid, lid, available, on_hand, rp, rq, line_level))
    close_variant()

    # This site first, then the others; within a site the locations that need attention first.
    sites = sorted(by_site.values(), key=lambda c: (c.site != site, c.site))
    ordered = sorted(by_location.values(), key=lambda c: (c.site != site, c.site, -c.out, -c.attention, c.key))
    return Summary(site=site, sites=sites, locations=ordered[:MAX_LOCATIONS],
                   more_locations=max(len(ordered) - MAX_LOCATIONS, 0),
                   lines=_describe(conn, heapq.nsmallest(TOP_LINES, urgent), locations), lines_total=len(urgent))


def _describe(conn, picked: list[tuple], locations: dict) -> list[dict]:
    names = {}
    if picked:
        ids = sorted({entry[2] for entry in picked})
        names = {vid: (sku, product, variant) for vid, sku, product, variant in conn.execute(
            "SELECT v.id, v.sku, p.name, v.name FROM variant v JOIN product p ON p.id = v.product_id"
            f" WHERE v.id IN ({','.join('?' * len(ids))})", ids)}
    out = []
    for _low, _gap, vid, lid, available, on_hand, rp, rq, line_level in picked:
        sku, product, variant = names[vid]
        out.append({"sku": sku, "product": product, "variant": variant, "location": locations[lid][0],
                    "on_hand": on_hand, "available": available, "reorder_point": rp, "reorder_qty": rq,
                    "level": LEVELS[line_level]})
    return out


def recent_movements(conn, limit: int = RECENT) -> list[dict]:
    cols = ("id", "ts", "kind", "sku", "location", "site", "lot", "d_on_hand", "d_reserved", "d_in_transit",
            "user", "device")
    return [dict(zip(cols, row)) for row in conn.execute(
        "SELECT m.id, m.ts, m.kind, v.sku, l.code, l.site_id, m.lot, m.d_on_hand, m.d_reserved, m.d_in_transit,"
        " m.user_login, m.device FROM movement m JOIN variant v ON v.id = m.variant_id"
        " JOIN location l ON l.id = m.location_id ORDER BY m.id DESC LIMIT ?", (limit,))]


def sync_state(conn) -> dict | None:
    """None when this box has no [mqtt] section: sync is off, there is nothing to show."""
    if parts().config.mqtt is None:
        return None
    return sync_status(conn)


@bp.route("/")
@requires("view")
def index():
    conn = parts().db.connection()
    site = parts().config.site.id
    # The cursor first: anything committed while the page is built arrives again over SSE, never goes missing.
    cursor = events.current_cursor(conn).text()
    return render_template("dashboard.html", cursor=cursor, summary=summary(conn, site),
                           movements=recent_movements(conn), alerts=events.open_alerts(conn),
                           sync=sync_state(conn), recent_limit=RECENT)


class FragmentCache:
    """Every open dashboard asks for the summary after the same movement: compute it once per process.

    Keyed by the latest movement id (stock changes only through movements) and the language; a reorder point
    edited without a movement shows at the next movement or after `ttl_s`. The full page never uses it.
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._at = 0.0
        self._value = ""

    def get(self, key: tuple, compute) -> str:
        with self._lock:
            if key == self._key and time.monotonic() - self._at < self.ttl_s:
                return self._value
        value = compute()   # outside the lock: a slow computation must not queue the other threads' hits
        with self._lock:
            self._key, self._at, self._value = key, time.monotonic(), value
        return value


@bp.route("/dashboard/summary")
@requires("view")
def summary_fragment():
    conn = parts().db.connection()
    site = parts().config.site.id
    cache = current_app.extensions.setdefault("dashboard.summary", FragmentCache())
    latest = conn.execute("SELECT coalesce(max(id), 0) FROM movement").fetchone()[0]
    render = get_template_attribute("dashboard_summary.html", "render_summary")
    return cache.get((latest, current_language()), lambda: str(render(summary(conn, site))))
