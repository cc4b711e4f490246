"""Reading the alert book and the delivery log: the CLI (`appliance alerts`) and the API show the same rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from appliance import clock
from appliance.errors import NotFound

class UnknownAlert(NotFound):
    code = "unknown_alert"

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"unknown alert {alert_id}", alert_id=alert_id)


ALERT_STATES = ("open", "resolved", "all")
_ALERT_SQL = ("SELECT id, kind, subject, site_id, severity, message, detail, first_seen, last_seen, seen_count,"
              " resolved_at, acknowledged_at, acknowledged_by FROM alert")


def _alert_dict(row: tuple) -> dict[str, Any]:
    (id_, kind, subject, site, severity, message, detail, first_seen, last_seen, seen_count, resolved_at,
     acknowledged_at, acknowledged_by) = row
    return {"id": id_, "kind": kind, "subject": subject, "site": site, "severity": severity, "message": message,
            "detail": json.loads(detail or "{}"), "state": "open" if resolved_at is None else "resolved",
            "first_seen": first_seen, "last_seen": last_seen, "seen_count": seen_count, "resolved_at": resolved_at,
            "acknowledged_at": acknowledged_at, "acknowledged_by": acknowledged_by}


def list_alerts(conn, state: str = "open", kind: str | None = None, limit: int = 1000,
                offset: int = 0) -> list[dict[str, Any]]:
    """Alerts, newest first: open ones by default, `resolved` or `all`; `kind` narrows them."""
    where, params = [], []
    if state == "open":
        where.append("resolved_at IS NULL")
    elif state == "resolved":
        where.append("resolved_at IS NOT NULL")
    if kind:
        where.append("kind = ?")
        params.append(kind)
    rows = conn.execute(f"{_ALERT_SQL} WHERE {' AND '.join(where) or '1'} ORDER BY first_seen DESC, id DESC"
                        " LIMIT ? OFFSET ?", [*params, limit, offset])
    return [_alert_dict(row) for row in rows]


def get_alert(conn, alert_id: int) -> dict[str, Any]:
    row = conn.execute(f"{_ALERT_SQL} WHERE id = ?", (alert_id,)).fetchone() if 0 < alert_id < 2 ** 63 else None
    if row is None:
        raise UnknownAlert(alert_id)
    return _alert_dict(row)


def acknowledge_alert(app, alert_id: int, user: str, now: datetime | None = None) -> dict[str, Any]:
    """Record that `user` has seen the alert (the first acknowledgement stands); the alert as it is now."""
    from appliance.notify.alerts import acknowledge
    with app.ledger.write() as ops:
        if not 0 < alert_id < 2 ** 63 or not acknowledge(ops.conn, alert_id, user, clock.to_ts(now or clock.utcnow())):
            raise UnknownAlert(alert_id)
    return get_alert(app.db.connection(), alert_id)


def list_deliveries(conn, failed_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """The delivery log, newest first (the payload left out: the alert id says what was sent)."""
    cur = conn.execute(
        "SELECT id, alert_id, event, channel, target, status, attempts, next_attempt_at, last_error, created_at,"
        " delivered_at FROM alert_delivery" + (" WHERE status = 'failed'" if failed_only else "")
        + " ORDER BY id DESC LIMIT ?", (limit,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
