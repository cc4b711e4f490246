"""Writing and reading the scan log (migration 0004): one row per raw scan, whatever became of it."""

from __future__ import annotations

import json
from typing import Any

import peewee

from appliance import clock
from appliance.scanning.scan import Scan, visible

OUTCOMES = ("ok", "warning", "error", "unresolved")


def record(db: peewee.SqliteDatabase, scan: Scan, outcome: str, message: str = "", *, kind: str | None = None,
           interpretation: dict[str, Any] | None = None, movement_ids: list[int] | None = None) -> int:
    """Log one scan in its own short transaction; returns the row id."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    with db.atomic("IMMEDIATE"):
        return db.execute_sql(
            "INSERT INTO scan_log (at, station, device, raw, kind, interpretation, outcome, message, movement_ids)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (clock.to_ts(clock.from_epoch(scan.at)), scan.station, scan.device, scan.raw, kind,
             json.dumps(interpretation, ensure_ascii=False) if interpretation is not None else None, outcome,
             message, json.dumps(movement_ids) if movement_ids else None)).lastrowid


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


def mark_resolved(db: peewee.SqliteDatabase, scan_id: int) -> None:
    with db.atomic("IMMEDIATE"):
        db.execute_sql("UPDATE scan_log SET resolved_at = ? WHERE id = ?", (clock.now_ts(), scan_id))
