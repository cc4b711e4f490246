"""Stock over time: daily on-hand totals of one variant and a small inline SVG of them, drawn with no script.

The totals start from today's on hand in the `stock` projection and walk back through one query of that variant's
movements in the window (index `movement_variant_ts`), so the cost follows the window, never the variant's whole
history. Movements are summed per UTC hour in SQL and the hours folded into days of the site's time zone in
Python: SQLite knows no time zones, and an hour lies within one local day wherever the offset is whole hours.

The page's Content-Security-Policy forbids inline `style`, so the drawing uses SVG presentation attributes
(fill, stroke); the stylesheet only sizes it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from appliance import clock

DAYS = 90
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 30
LINE, POINT, GRID, INK = "#1d4ed8", "#1d4ed8", "#d1d5db", "#6b7280"


def daily_on_hand(conn: sqlite3.Connection, variant_id: int, *, today: date, tz: str | ZoneInfo = "UTC",
                  days: int = DAYS, site: str | None = None) -> list[tuple[date, int]]:
    """On hand at the end of each of the `days` local days up to `today`, oldest first (all sites, or `site`)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=zone)
    at_site = " JOIN location l ON l.id = {t}.location_id AND l.site_id = ?" if site else ""
    site_args = (site,) if site else ()
    current = conn.execute(
        f"SELECT coalesce(sum(s.on_hand), 0) FROM stock s{at_site.format(t='s')} WHERE s.variant_id = ?",
        (*site_args, variant_id)).fetchone()[0]
    deltas: dict[date, int] = defaultdict(int)
    # No upper bound: a movement stamped after today (a peer's clock running ahead) is in the projection too.
    for hour, delta in conn.execute(
            f"SELECT substr(m.ts, 1, 13), sum(m.d_on_hand) FROM movement m{at_site.format(t='m')}"
            " WHERE m.variant_id = ? AND m.ts >= ? GROUP BY 1",
            (*site_args, variant_id, clock.to_ts(start))):
        moment = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
        deltas[moment.astimezone(zone).date()] += delta
    level = current - sum(delta for day, delta in deltas.items() if day > today)
    points = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        points.append((day, level))
        level -= deltas.get(day, 0)
    points.reverse()
    return points


def _scale(top_value: int) -> int:
    """A round number at or above `top_value` for the y axis (1, 2, 5 × a power of ten)."""
    if top_value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= top_value:
                return step * factor
        step *= 10


def render_svg(points: list[tuple[date, int]], title: str, chart_id: str = "stock-chart") -> Markup:
    """The chart as inline SVG markup: a line through one point per day, each point titled with its day and value."""
    if not points:
        return Markup("")
    top_value = _scale(max(value for _, value in points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points) - 1)

    def xy(index: int, value: int) -> tuple[float, float]:
        return LEFT + index * step, TOP + plot_h * (1 - max(0, value) / top_value)

    coords = [xy(i, value) for i, (_, value) in enumerate(points)]
    title_id = f"{chart_id}-title"
    parts = [
        f'<svg class="stock-chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(title_id)}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
    ]
    for value in (0, top_value // 2, top_value) if top_value >= 2 else (0, top_value):
        y = xy(0, value)[1]
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}" '
                     'stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{INK}">'
                     f'{value}</text>')
    baseline = HEIGHT - BOTTOM + 18
    parts.append(f'<text x="{LEFT}" y="{baseline}" font-size="12" fill="{INK}">{points[0][0].isoformat()}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{baseline}" text-anchor="end" font-size="12" fill="{INK}">'
                 f'{points[-1][0].isoformat()}</text>')
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2" '
                 'stroke-linejoin="round"/>')
    for (day, value), (x, y) in zip(points, coords):
        parts.append(f'<circle class="point" data-day="{day.isoformat()}" data-value="{value}" cx="{x:.1f}" '
                     f'cy="{y:.1f}" r="3" fill="{POINT}"><title>{day.isoformat()}: {value}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def chart_for(conn: sqlite3.Connection, variant_id: int, *, tz: str, title: str, days: int = DAYS,
              site: str | None = None, chart_id: str = "stock-chart") -> Markup:
    """The chart of the last `days` days in the site's time zone, ready for a template."""
    zone = ZoneInfo(tz)
    today = clock.utcnow().astimezone(zone).date()
    return render_svg(daily_on_hand(conn, variant_id, today=today, tz=zone, days=days, site=site), title, chart_id)
