"""Sync alarms: what the agent refused or could not apply, counted per (claimed site, kind) for the dashboard,
`appliance sync status` and the alerts. The count and the last detail are kept; the log has every one.

Kinds: bad_topic, bad_message, bad_signature, bad_body, not_owner, fork, own_fork, epoch, unresolvable,
denied (the broker refused one of our publishes).
"""

from __future__ import annotations

import logging
import sqlite3

from appliance import clock

logger = logging.getLogger(__name__)

_UPSERT = """
INSERT INTO sync_alarm (site_id, kind, count, first_at, last_at, detail) VALUES (?, ?, 1, ?, ?, ?)
ON CONFLICT (site_id, kind) DO UPDATE SET count = count + 1, last_at = excluded.last_at, detail = excluded.detail"""


def raise_alarm(conn: sqlite3.Connection, site: str, kind: str, detail: str) -> None:
    """Record an alarm in the caller's transaction (or on its own when there is none)."""
    logger.warning("sync alarm %s from %s: %s", kind, site, detail)
    now = clock.now_ts()
    conn.execute(_UPSERT, (site or "?", kind, now, now, detail[:500]))


def alarms(conn: sqlite3.Connection) -> list[dict]:
    return [{"site": r[0], "kind": r[1], "count": r[2], "first_at": r[3], "last_at": r[4], "detail": r[5]}
            for r in conn.execute("SELECT site_id, kind, count, first_at, last_at, detail FROM sync_alarm"
                                  " ORDER BY last_at DESC")]
