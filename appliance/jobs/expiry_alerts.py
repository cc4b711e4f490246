"""Expiring lots: one 'expiring_lot' alert per stock row of this site's locations that holds stock
(on_hand > 0) and expires within `[alerts] expiry_days` (already expired included, as critical), subject
`<sku>@<location>/<lot>`. An alert whose row no longer qualifies (sold, moved, written off) is resolved."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.notify.alerts import Alert, Recipients, open_subjects, raise_alert, resolve_alert

logger = logging.getLogger(__name__)

KIND = "expiring_lot"

_EXPIRING = """
SELECT v.sku, l.code, s.lot, s.expiry, s.on_hand FROM stock s
JOIN variant v ON v.id = s.variant_id
JOIN location l ON l.id = s.location_id
WHERE l.site_id = ? AND s.on_hand > 0 AND s.expiry IS NOT NULL AND s.expiry != '' AND s.expiry <= ?
ORDER BY s.expiry, v.sku, l.code, s.lot"""


def subject(sku: str, location: str, lot: str) -> str:
    return f"{sku}@{location}/{lot}"


def expiring(conn, site: str, today: date, days: int) -> list[tuple[str, str, str, str, int]]:
    """(sku, location, lot, expiry, on_hand) of the rows that qualify on `today` (the site's date)."""
    cutoff = (today + timedelta(days=days)).isoformat()
    # Expiry is stored as YYYY-MM-DD; a longer value (with a time) still compares by its date prefix.
    return [row for row in conn.execute(_EXPIRING, (site, cutoff + "\uffff"))]


def run_expiry_alerts(app, now: datetime) -> str:
    """The `expiry_alerts` job."""
    config = app.config
    site = config.site.id
    today = now.astimezone(ZoneInfo(config.site.timezone)).date()
    now_ts = clock.to_ts(now)
    recipients = Recipients(config)
    raised = resolved = 0
    with app.ledger.write(device="scheduler") as ops:
        rows = expiring(ops.conn, site, today, config.alerts.expiry_days)
        current = set()
        for sku, location, lot, expiry, on_hand in rows:
            key = subject(sku, location, lot)
            current.add(key)
            expired = expiry[:10] < today.isoformat()
            when = f"expired on {expiry[:10]}" if expired else f"expires on {expiry[:10]}"
            _, new = raise_alert(ops.conn, Alert(
                KIND, key, f"{on_hand} × {sku} at {location}, lot {lot or '(none)'}, {when}",
                severity="critical" if expired else "", site=site,
                detail={"sku": sku, "location": location, "lot": lot, "expiry": expiry, "on_hand": on_hand}),
                now_ts, recipients)
            raised += new
        for gone in sorted(open_subjects(ops.conn, KIND) - current):
            resolve_alert(ops.conn, KIND, gone, now_ts, recipients)
            resolved += 1
    if raised or resolved:
        logger.info("expiring lots: %d new alert(s), %d resolved, %d open", raised, resolved, len(rows))
    return f"{len(rows)} lot(s) expiring within {config.alerts.expiry_days} days ({raised} new); {resolved} resolved"
