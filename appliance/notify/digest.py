"""The daily digest ([alerts] digest = true): one email per recipient listing every open alert.

With the digest on, the alert book queues no per-alert emails (webhooks still go out at once); this queues the
digest rows in the outbox, in one short write, and sends them through the same delivery worker, so a mail
server that is down gets the same retries and the same delivery log as any alert email.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from appliance import clock

logger = logging.getLogger(__name__)

_SEVERITY_ORDER = "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"


def open_alert_rows(conn) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT id, kind, subject, site_id, severity, message, first_seen, last_seen, seen_count, acknowledged_by"
        f" FROM alert WHERE resolved_at IS NULL ORDER BY {_SEVERITY_ORDER}, first_seen, id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def digest_text(config, alerts: list[dict[str, Any]], now: datetime) -> tuple[str, str]:
    """(subject, plain text) of the digest of these open alerts."""
    from appliance.notify.delivery import kind_words
    site = config.site.id
    critical = sum(1 for a in alerts if a["severity"] == "critical")
    subject = f"[{site}] daily digest: {len(alerts)} open alert(s)" + (f", {critical} critical" if critical else "")
    lines = [f"Open alerts at {config.site.name} ({site}) on {clock.to_ts(now)[:10]}: {len(alerts)}", ""]
    for a in alerts:
        seen = f"since {a['first_seen'][:16].replace('T', ' ')} UTC"
        if a["seen_count"] > 1:
            seen += f", seen {a['seen_count']} times"
        acked = f", acknowledged by {a['acknowledged_by']}" if a["acknowledged_by"] else ""
        lines.append(f"- #{a['id']} {a['severity']}: {kind_words(a['kind'])} {a['subject']}"
                     f" [{a['site_id'] or site}] ({seen}{acked})")
        lines.append(f"  {a['message']}")
    lines += ["", "-- ", f"The warehouse appliance of {config.site.name} ({site}). "
              "`appliance alerts list` shows them; `appliance alerts ack ID` acknowledges one."]
    return subject, "\n".join(lines) + "\n"


def send_digest(app, now: datetime | None = None) -> int:
    """Queue one digest email per recipient and send them now; the number queued (0: digest off, no [smtp],
    no recipient, or no open alert)."""
    from appliance.notify.alerts import Recipients
    from appliance.notify.delivery import deliver_due
    config = app.config
    if not config.alerts.digest or config.smtp is None:
        return 0
    now = now or clock.utcnow()
    now_ts = clock.to_ts(now)
    conn = app.db.connection()
    alerts = open_alert_rows(conn)
    if not alerts:
        logger.info("digest: no open alert, nothing to send")
        return 0
    recipients = Recipients(config).email_addresses(conn)
    if not recipients:
        logger.warning("digest: %d open alert(s) but no recipient ([alerts] email_to / email_roles)", len(alerts))
        return 0
    subject, text = digest_text(config, alerts, now)
    body = json.dumps({"event": "digest", "site": config.site.id, "subject": subject, "text": text,
                       "alert_ids": [a["id"] for a in alerts], "generated_at": now_ts},
                      sort_keys=True, separators=(",", ":"))
    with app.ledger.write() as ops:
        ops.conn.executemany(
            "INSERT INTO alert_delivery (alert_id, event, channel, target, payload, next_attempt_at, created_at)"
            " VALUES (NULL, 'digest', 'email', ?, ?, ?, ?)", [(address, body, now_ts, now_ts)
                                                              for address in recipients])
    logger.info("digest of %d open alert(s) queued for %d recipient(s)", len(alerts), len(recipients))
    deliver_due(app, now)
    return len(recipients)
