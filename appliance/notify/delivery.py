"""The delivery worker: sends the `alert_delivery` outbox (emails and webhooks) and records each outcome.

The alert book queues a row in the same transaction as the alert; this sends it later, with no transaction
open while it talks to the network, so a slow mail server never holds the ledger's write lock and a failed
delivery never touches a stock row. Each row is claimed before it is sent (its `next_attempt_at` moved a lease
ahead), so a second worker (the CLI's `alerts deliver` beside the agent) does not send it too, and a worker
that dies mid-send leaves a row that is retried when the lease runs out.

Failures retry with exponential backoff: after the n-th failed attempt the row waits
min(retry_base_s * 2**(n-1), retry_max_s); once it is older than give_up_hours a failure marks it `failed`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from appliance import clock

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
CLAIM_SLACK_S = 60.0   # beyond the send's own timeout, before another worker may take the row over


def deliver_due(app, now: datetime | None = None) -> dict[str, int]:
    """Send every pending delivery due at `now`; counts of {"delivered", "retrying", "failed"}."""
    if app.db.in_transaction():
        raise RuntimeError("deliver_due sends over the network: call it with no transaction open")
    now = now or clock.utcnow()
    now_ts = clock.to_ts(now)
    rows = app.db.connection().execute(
        "SELECT id, event, channel, target, payload, created_at FROM alert_delivery"
        " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id", (now_ts,)).fetchall()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for id_, event, channel, target, payload, created_at in rows:
        if not _claim(app, id_, now, channel, target):
            continue
        try:
            _send(app, id_, channel, target, payload, now)
        except _Unconfigured as gone:
            _record_failure(app, id_, now, str(gone), give_up=True)
            counts["failed"] += 1
            continue
        except Exception as error:  # noqa: BLE001 (one bad row must not stop the others; the reason is kept)
            if not _is_expected(error):
                logger.exception("delivery %s (%s to %s) failed unexpectedly", id_, channel, target)
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            expired = now - clock.parse_ts(created_at) > timedelta(hours=app.config.alerts.give_up_hours)
            outcome = _record_failure(app, id_, now, reason, give_up=expired)
            counts[outcome] += 1
            continue
        _record_delivered(app, id_, now)
        counts["delivered"] += 1
        logger.info("delivery %s (%s %s to %s) delivered", id_, event, channel, target)
    return counts


class _Unconfigured(Exception):
    """The row's webhook or the [smtp] section is gone from the config: retrying cannot help."""


def _is_expected(error: Exception) -> bool:
    from appliance.notify.mailer import MailError
    from appliance.notify.webhooks import WebhookError
    return isinstance(error, (MailError, WebhookError))


def _claim(app, id_: int, now: datetime, channel: str, target: str) -> bool:
    lease = CLAIM_SLACK_S + _timeout_s(app, channel, target)
    with app.ledger.write() as ops:
        claimed = ops.conn.execute(
            "UPDATE alert_delivery SET next_attempt_at = ? WHERE id = ? AND status = 'pending'"
            " AND next_attempt_at <= ?", (clock.to_ts(now + timedelta(seconds=lease)), id_, clock.to_ts(now)))
        return claimed.rowcount == 1


def _timeout_s(app, channel: str, target: str) -> float:
    if channel == "webhook":
        hook = _webhook(app, target)
        return hook.timeout_s if hook is not None else 0.0
    return app.config.smtp.timeout_s if app.config.smtp is not None else 0.0


def _webhook(app, name: str):
    return next((hook for hook in app.config.webhooks if hook.name == name), None)


def _send(app, id_: int, channel: str, target: str, payload: str, now: datetime) -> None:
    if channel == "webhook":
        hook = _webhook(app, target)
        if hook is None:
            raise _Unconfigured(f"webhook {target!r} is no longer configured ([[webhook]] entries)")
        from appliance.notify.webhooks import post_webhook
        post_webhook(hook, id_, payload, now=now)
        return
    if app.config.smtp is None:
        raise _Unconfigured("email is not configured (no [smtp] section)")
    subject, text = email_content(app.config, json.loads(payload))
    from appliance.notify.mailer import send_email
    send_email(app.config.smtp, [target], subject, text)


def _record_delivered(app, id_: int, now: datetime) -> None:
    with app.ledger.write() as ops:
        ops.conn.execute("UPDATE alert_delivery SET status = 'delivered', delivered_at = ?, attempts = attempts + 1,"
                         " last_error = NULL WHERE id = ?", (clock.to_ts(now), id_))


def _record_failure(app, id_: int, now: datetime, reason: str, *, give_up: bool) -> str:
    """Count the attempt; 'failed' when giving up, else 'retrying' with the next attempt backed off."""
    alerts = app.config.alerts
    reason = reason[:MAX_ERROR_CHARS]
    with app.ledger.write() as ops:
        attempts = ops.conn.execute("UPDATE alert_delivery SET attempts = attempts + 1, last_error = ?"
                                    " WHERE id = ? RETURNING attempts", (reason, id_)).fetchone()[0]
        if give_up:
            ops.conn.execute("UPDATE alert_delivery SET status = 'failed' WHERE id = ?", (id_,))
        else:
            wait = min(alerts.retry_base_s * 2 ** (attempts - 1), alerts.retry_max_s)
            ops.conn.execute("UPDATE alert_delivery SET next_attempt_at = ? WHERE id = ?",
                             (clock.to_ts(now + timedelta(seconds=wait)), id_))
    if give_up:
        logger.warning("delivery %s failed for good after %d attempt(s): %s", id_, attempts, reason)
        return "failed"
    logger.warning("delivery %s failed (attempt %d), retrying: %s", id_, attempts, reason)
    return "retrying"


# --- the email a person reads ----------------------------------------------------------------------------------

def kind_words(kind: str) -> str:
    return kind.replace("_", " ")


def _when(ts: str | None) -> str:
    return f"{ts[:10]} {ts[11:16]} UTC" if ts else "-"


def email_content(config, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain text) of the email for one delivery's payload: an alert raised or resolved, or a digest."""
    if payload.get("event") == "digest":
        return payload["subject"], payload["text"]
    alert = payload["alert"]
    site = alert.get("site") or config.site.id
    resolved = payload.get("event") == "resolved"
    label = "resolved" if resolved else alert["severity"]
    subject = f"[{site}] {label}: {kind_words(alert['kind'])} {alert['subject']}"
    lines = []
    if resolved:
        lines += [f"Cleared: this alert ended at {_when(alert.get('resolved_at'))}.", ""]
    lines += [alert["message"], "",
              f"Alert:       {kind_words(alert['kind'])} (#{alert['id']})",
              f"Subject:     {alert['subject']}",
              f"Site:        {site}",
              f"Severity:    {alert['severity']}",
              f"First seen:  {_when(alert.get('first_seen'))}",
              f"Last seen:   {_when(alert.get('last_seen'))} ({alert.get('seen_count', 1)} time(s))"]
    if alert.get("acknowledged_by"):
        lines.append(f"Acknowledged by {alert['acknowledged_by']} at {_when(alert.get('acknowledged_at'))}")
    lines += ["", "-- ", f"The warehouse appliance of {config.site.name} ({config.site.id})."]
    if not resolved:
        lines.append(f"Acknowledge it on the dashboard or with `appliance alerts ack {alert['id']}`.")
    return subject, "\n".join(lines) + "\n"
