"""Alerts: raised once while their condition holds, resolved when it clears, each notification queued in the
same transaction as the alert row (the `alert_delivery` outbox, sent by the agent's delivery worker).

An alert is identified by its kind and subject (`low_stock` / `DOG-FOOD-5KG@BER-A-01`): raising one that is
already open only moves its `last_seen` and `seen_count`, so a condition seen by every sweep notifies once.
All functions take the connection of an open write transaction (`Ledger.write()`'s `ops.conn`): the caller
decides what commits together, and nothing here does network I/O.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from appliance.config import Config

SEVERITIES = ("info", "warning", "critical")

# kind -> default severity. The kinds the issue names, plus the agent's own failures.
KINDS = {
    "low_stock": "warning",
    "out_of_stock": "critical",
    "over_stock": "info",
    "expiring_lot": "warning",
    "reservation_expired": "info",
    "count_variance": "warning",
    # A site short of stock that another site can spare: someone has to move it, like a draft awaiting review.
    "transfer_suggested": "warning",
    "peer_offline": "warning",
    "printer_error": "warning",
    "scanner_gone": "warning",
    "check_failed": "critical",
    "backup_failed": "critical",
    "job_failed": "warning",
    "job_missed": "warning",
}


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    message: str
    severity: str = ""            # empty: the kind's default
    site: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")
        if not self.severity:
            object.__setattr__(self, "severity", KINDS[self.kind])
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")


def at_least(severity: str, floor: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)


@dataclass(frozen=True)
class Recipients:
    """Where notifications of an alert go, from the config: built once per process, asked per alert."""
    config: Config

    def targets(self, conn: sqlite3.Connection, severity: str) -> list[tuple[str, str]]:
        """(channel, target) pairs for one notification of this severity."""
        out: list[tuple[str, str]] = []
        alerts = self.config.alerts
        if self.config.smtp is not None and not alerts.digest and at_least(severity, alerts.email_severity):
            for address in self.email_addresses(conn):
                out.append(("email", address))
        for hook in self.config.webhooks:
            if at_least(severity, hook.severity):
                out.append(("webhook", hook.name))
        return out

    def email_addresses(self, conn: sqlite3.Connection) -> list[str]:
        alerts = self.config.alerts
        addresses = [a.strip() for a in alerts.email_to.split(",") if a.strip()]
        roles = [r.strip() for r in alerts.email_roles.split(",") if r.strip()]
        if roles:
            marks = ", ".join("?" * len(roles))
            addresses += [row[0] for row in conn.execute(
                f"SELECT email FROM app_user WHERE active AND email IS NOT NULL AND email != '' AND role IN ({marks})"
                " ORDER BY login", roles)]
        return list(dict.fromkeys(addresses))


def payload(row: dict[str, Any], event: str) -> str:
    """The JSON every channel is given (the webhook body as sent; the email is written from it)."""
    return json.dumps({"event": event, "alert": row}, sort_keys=True, separators=(",", ":"))


def _row(conn: sqlite3.Connection, alert_id: int) -> dict[str, Any]:
    cur = conn.execute("SELECT id, kind, subject, site_id, severity, message, detail, first_seen, last_seen,"
                       " seen_count, resolved_at, acknowledged_at, acknowledged_by FROM alert WHERE id = ?",
                       (alert_id,))
    names = [d[0] for d in cur.description]
    row = dict(zip(names, cur.fetchone()))
    row["site"] = row.pop("site_id")
    row["detail"] = json.loads(row["detail"])
    return row


def _queue(conn: sqlite3.Connection, recipients: Recipients | None, alert_id: int, event: str, now: str) -> int:
    if recipients is None:
        return 0
    row = _row(conn, alert_id)
    targets = recipients.targets(conn, row["severity"])
    body = payload(row, event)
    conn.executemany(
        "INSERT INTO alert_delivery (alert_id, event, channel, target, payload, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", [(alert_id, event, channel, target, body, now, now)
                                          for channel, target in targets])
    return len(targets)


def raise_alert(conn: sqlite3.Connection, alert: Alert, now: str, recipients: Recipients | None) -> tuple[int, bool]:
    """(alert id, whether it is new). A new alert queues its notifications; an open one is only touched."""
    detail = json.dumps(alert.detail, sort_keys=True)
    alert_id, count = conn.execute(
        "INSERT INTO alert (kind, subject, site_id, severity, message, detail, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE SET last_seen = excluded.last_seen,"
        " seen_count = seen_count + 1, message = excluded.message, detail = excluded.detail,"
        " severity = excluded.severity"
        " RETURNING id, seen_count",
        (alert.kind, alert.subject, alert.site, alert.severity, alert.message, detail, now, now)).fetchone()
    if count == 1:
        _queue(conn, recipients, alert_id, "raised", now)
    return alert_id, count == 1


def resolve_alert(conn: sqlite3.Connection, kind: str, subject: str, now: str,
                  recipients: Recipients | None) -> int | None:
    """Close the open alert of (kind, subject), if any, and queue its 'resolved' notifications; its id or None."""
    found = conn.execute("UPDATE alert SET resolved_at = ? WHERE kind = ? AND subject = ? AND resolved_at IS NULL"
                         " RETURNING id", (now, kind, subject)).fetchone()
    if found is None:
        return None
    _queue(conn, recipients, found[0], "resolved", now)
    return found[0]


def acknowledge(conn: sqlite3.Connection, alert_id: int, user: str, now: str) -> bool:
    """Someone has seen it: recorded once (the first acknowledgement stands). False if there is no such alert."""
    if conn.execute("SELECT 1 FROM alert WHERE id = ?", (alert_id,)).fetchone() is None:
        return False
    conn.execute("UPDATE alert SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL",
                 (now, user, alert_id))
    return True


def open_subjects(conn: sqlite3.Connection, kind: str) -> set[str]:
    return {row[0] for row in conn.execute("SELECT subject FROM alert WHERE kind = ? AND resolved_at IS NULL",
                                           (kind,))}

