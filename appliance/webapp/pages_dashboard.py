"""The dashboard `/`: stock health per site and per location, the lines of this site that need stock, open
alerts, the latest movements and the sync state; kept current in the browser over SSE (web/static/dashboard.js).

Stock health (the rules are in stock_health.py) is kept per web process by a `StockHealth` that moves its
counts by the movements since the previous request, so the page costs about the same at 1,000,000 movements
and 140,000 stock lines as at ten.

`GET /dashboard/summary` renders the same summary as an HTML fragment: the page fetches it after movements
arrive, which keeps the counts exact without teaching the browser the rules.
"""

from __future__ import annotations

from flask import Blueprint, current_app, get_template_attribute, render_template

from appliance.sync.status import sync_status
from appliance.webapp import events
from appliance.webapp.context import parts, requires
from appliance.webapp.stock_health import StockHealth

bp = Blueprint("dashboard", __name__)

RECENT = 20


def stock_health() -> StockHealth:
    """One per app in each process: the threads of a gunicorn worker share it, each worker keeps its own."""
    health = current_app.extensions.get("dashboard.stock_health")
    if health is None:
        health = current_app.extensions.setdefault("dashboard.stock_health", StockHealth(parts().config.site.id))
    return health


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
    # The cursor first: anything committed while the page is built arrives again over SSE, never goes missing.
    cursor = events.current_cursor(conn).text()
    return render_template("dashboard.html", cursor=cursor, summary=stock_health().summary(conn),
                           movements=recent_movements(conn), alerts=events.open_alerts(conn),
                           sync=sync_state(conn), recent_limit=RECENT)


@bp.route("/dashboard/summary")
@requires("view")
def summary_fragment():
    render = get_template_attribute("dashboard_summary.html", "render_summary")
    return str(render(stock_health().summary(parts().db.connection())))
