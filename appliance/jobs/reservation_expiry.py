"""Reservations past their `expires_at` are released (ledger), and each one leaves a 'reservation_expired'
info alert, subject `reservation:<id>`.

The alert is resolved in the same transaction, without a 'resolved' notification: an expiry is an event,
not a condition that later clears, so an open alert would stay open for good (acknowledging does not resolve)
and pile up on the dashboard. Resolved at once, it is one line in the alert history, and its 'raised'
notification goes to whoever asked for info alerts.
"""

from __future__ import annotations

import logging
from datetime import datetime

from appliance import clock
from appliance.notify.alerts import Alert, Recipients, raise_alert, resolve_alert

logger = logging.getLogger(__name__)

KIND = "reservation_expired"


def run_reservation_expiry(app, now: datetime) -> str | None:
    """The `reservation_expiry` job."""
    now_ts = clock.to_ts(now)
    recipients = Recipients(app.config)
    # The release and its alerts commit together: a crash between them would lose the alerts for good.
    with app.ledger.write(device="scheduler") as ops:
        expired = ops.expire_reservations(now_ts)
        if not expired:
            return None
        marks = ", ".join("?" * len(expired))
        rows = ops.conn.execute(
            "SELECT r.id, v.sku, l.code, r.lot, r.qty, r.ref FROM reservation r JOIN variant v ON v.id = r.variant_id"
            f" JOIN location l ON l.id = r.location_id WHERE r.id IN ({marks}) ORDER BY r.id", expired).fetchall()
        for res_id, sku, location, lot, qty, ref in rows:
            subject = f"reservation:{res_id}"
            raise_alert(ops.conn, Alert(
                KIND, subject, f"reservation {res_id} of {qty} × {sku} at {location}"
                f"{' for ' + ref if ref else ''} expired and was released", site=app.config.site.id,
                detail={"reservation": res_id, "sku": sku, "location": location, "lot": lot, "qty": qty,
                        "ref": ref}), now_ts, recipients)
            resolve_alert(ops.conn, KIND, subject, now_ts, None)
    logger.info("expired %d reservation(s): %s", len(expired), expired)
    return f"{len(expired)} expired: {', '.join(map(str, expired))}"
