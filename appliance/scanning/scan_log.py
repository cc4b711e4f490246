"""Writing and reading the scan log (migrations 0004, 0005): one row per raw scan, whatever became of it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import peewee

from appliance import clock
from appliance.errors import NotFound
from appliance.scanning.scan import Scan, visible

OUTCOMES = ("ok", "warning", "error", "unresolved")


class ScanNotFound(NotFound):
    code = "unknown_scan"

    def __init__(self, scan_id: int) -> None:
        super().__init__(f"no scan {scan_id} in the scan log", scan_id=scan_id)


def insert(conn, scan: Scan, *, kind: str | None, interpretation: dict[str, Any] | None,
           session: dict[str, Any] | None = None, replay_of: int | None = None) -> int:
    """Log one scan inside the caller's transaction (the station desk's, so the row commits with the scan's
    movements); returns its id. The outcome is settled by `finish` before the transaction ends."""
    return conn.execute(
        "INSERT INTO scan_log (at, station, device, raw, kind, interpretation, outcome, session, replay_of)"
        " VALUES (?, ?, ?, ?, ?, ?, 'ok', ?, ?)",
        (clock.to_ts(clock.from_epoch(scan.at)), scan.station, scan.device, scan.raw, kind,
         json.dumps(interpretation, ensure_ascii=False, default=str) if interpretation is not None else None,
         json.dumps(session) if session is not None else None, replay_of)).lastrowid


def finish(conn, scan_id: int, outcome: str, message: str, *, movement_ids: Iterable[int] = (),
           feedback: dict[str, Any] | None = None) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    ids = list(movement_ids)
    conn.execute("UPDATE scan_log SET outcome = ?, message = ?, movement_ids = ?, feedback = ? WHERE id = ?",
                 (outcome, message, json.dumps(ids) if ids else None,
                  json.dumps(feedback, ensure_ascii=False) if feedback is not None else None, scan_id))


def recent(db: peewee.SqliteDatabase, *, station: str | None = None, unresolved: bool = False,
           limit: int = 50) -> list[dict[str, Any]]:
    rows = db.execute_sql(
        "SELECT id, at, station, device, raw, kind, outcome, message, movement_ids, resolved_at FROM scan_log"
        " WHERE (? IS NULL OR station = ?) AND (NOT ? OR (outcome = 'unresolved' AND resolved_at IS NULL))"
        " ORDER BY id DESC LIMIT ?", (station, station, unresolved, limit)).fetchall()
    cols = ("id", "at", "station", "device", "raw", "kind", "outcome", "message", "movement_ids", "resolved_at")
    out = []
    for row in rows:
        item = dict(zip(cols, row))
        item["raw_visible"] = visible(item["raw"])
        item["movement_ids"] = json.loads(item["movement_ids"]) if item["movement_ids"] else []
        out.append(item)
    return out


def dismiss(db: peewee.SqliteDatabase, scan_id: int) -> None:
    """Mark an unresolved scan as dealt with without replaying it (a misread, a code of no interest)."""
    with db.atomic("IMMEDIATE"):
        if db.execute_sql("UPDATE scan_log SET resolved_at = coalesce(resolved_at, ?) WHERE id = ?",
                          (clock.now_ts(), scan_id)).rowcount == 0:
            raise ScanNotFound(scan_id)
