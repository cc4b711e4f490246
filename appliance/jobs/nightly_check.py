"""The nightly `check`: stock, sequences, reservations and transfers recomputed from the movements
(appliance/ledger/check.py). Any difference raises one 'check_failed' alert carrying the first differences;
a clean run resolves it."""

from __future__ import annotations

import logging
from datetime import datetime

from appliance import clock
from appliance.ledger.check import check
from appliance.notify.alerts import Alert, Recipients, raise_alert, resolve_alert

logger = logging.getLogger(__name__)

SUBJECT = "ledger"
SHOWN = 20   # differences copied into the alert; the rest are counted


def run_check(app, now: datetime) -> str:
    """The `nightly_check` job."""
    # Read outside the write lock: a full recompute takes a while and posting must go on meanwhile.
    differences = check(app.db.connection())
    now_ts = clock.to_ts(now)
    recipients = Recipients(app.config)
    with app.ledger.write(device="scheduler") as ops:
        if not differences:
            resolve_alert(ops.conn, "check_failed", SUBJECT, now_ts, recipients)
            return "consistent: stock, sequences, reservations and transfers match the movements"
        first = differences[0].message
        raise_alert(ops.conn, Alert(
            "check_failed", SUBJECT,
            f"check found {len(differences)} difference(s) between stored stock and the movements; first: {first}",
            site=app.config.site.id,
            detail={"count": len(differences), "differences": [d.to_dict() for d in differences[:SHOWN]]}),
            now_ts, recipients)
    logger.error("nightly check found %d difference(s); first: %s", len(differences), first)
    return f"{len(differences)} difference(s); first: {first}"
