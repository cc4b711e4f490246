"""What `appliance sync status` and the dashboard show: per peer, presence, last heard, its head, what this
box applied from it, the lag in movements and seconds, quarantine; and this site's own head, how far the
slowest peer has it, recovery and alarms. Read from the database the agent keeps, so any process can ask."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from appliance import clock
from appliance.sync.alarms import alarms


def sync_status(conn: sqlite3.Connection) -> dict[str, Any]:
    local, epoch, head, recovering = conn.execute(
        "SELECT id, epoch, head_seq, recovering FROM site WHERE is_local").fetchone()
    peers = []
    own_marks = []
    for site, applied, applied_hash in conn.execute(
            "SELECT id, head_seq, head_hash FROM site WHERE NOT is_local AND id IN (SELECT site_id FROM site_key)"
            " ORDER BY id").fetchall():
        row = conn.execute("SELECT state, last_heard, head_epoch, head_seq, head_ts, hwm, quarantined_at,"
                           " quarantine_reason FROM sync_peer WHERE site_id = ?", (site,)).fetchone()
        state, heard, head_epoch, peer_head, head_ts, hwm, q_at, q_reason = row or (
            "unknown", None, 0, 0, None, "{}", None, None)
        marks = json.loads(hwm or "{}")
        if local in marks:
            own_marks.append(marks[local]["seq"])
        lag = max(peer_head - applied, 0)
        last_applied_ts = conn.execute("SELECT ts FROM movement WHERE origin = ? AND seq = ?",
                                       (site, applied)).fetchone()
        lag_s = 0.0
        if lag and head_ts:
            since = clock.parse_ts(last_applied_ts[0]) if last_applied_ts else None
            lag_s = round((clock.parse_ts(head_ts) - since).total_seconds(), 3) if since else None
        peers.append({"site": site, "state": state, "last_heard": heard, "head": peer_head, "head_ts": head_ts,
                      "applied": applied, "lag_movements": lag, "lag_seconds": lag_s,
                      "has_of_ours": marks.get(local, {}).get("seq"),
                      "quarantined": q_at is not None, "quarantine_reason": q_reason})
    return {"site": local, "epoch": epoch, "head": head, "recovering": bool(recovering),
            "slowest_peer_has_of_ours": min(own_marks) if own_marks else None,
            "peers": peers, "alarms": alarms(conn)}
