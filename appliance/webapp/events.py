"""Live updates: Server-Sent Events fed from committed rows, whichever process committed them.

One `ChangeFeed` thread per web process watches `PRAGMA data_version` (it changes when any other connection,
in any process, commits) and wakes the streams. Each stream then reads the rows past its own cursor, so an
event is only ever sent for a committed row, and a browser that reconnects with `Last-Event-ID` (or a page
that passes the cursor it was rendered at as `?since=`) gets everything it missed, from the database.

Cursor / event id: `m<movement id>.s<scan log id>.a<alarm version>`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TOPICS = ("movement", "scan", "alert")
_CURSOR = re.compile(r"m(\d+)\.s(\d+)(?:\.a([0-9a-f]*))?")
MAX_ROWS = 200          # per topic per wake-up; the rest follows at once in the next round
HEARTBEAT_S = 15.0      # a comment line keeps proxies and phones from closing an idle stream
STREAM_LIFETIME_S = 600  # then the browser reconnects with Last-Event-ID; frees threads of closed tabs


@dataclass
class Cursor:
    movement: int = 0
    scan: int = 0
    alerts: str = ""

    def text(self) -> str:
        return f"m{self.movement}.s{self.scan}.a{self.alerts}"

    @classmethod
    def parse(cls, text: str | None) -> "Cursor | None":
        match = _CURSOR.fullmatch((text or "").strip())
        if not match:
            return None
        return cls(int(match.group(1)), int(match.group(2)), match.group(3) or "")


# Set when the worker is told to stop (gunicorn_conf.py): open streams end within a second, the browsers
# reconnect (to the next worker) with Last-Event-ID, and a restart does not wait out the graceful timeout.
SHUTDOWN = threading.Event()


class ChangeFeed:
    """Wakes waiting streams when the database changed. Started on first use, in the web process only."""

    def __init__(self, db_path: str | Path, poll_s: float = 0.1) -> None:
        self.db_path = str(db_path)
        self.poll_s = poll_s
        self._changed = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._watch, name="change-feed", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def generation(self) -> int:
        return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the generation moves past `seen` or `timeout` passes; returns the generation."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation

    def _watch(self) -> None:
        conn = None
        last = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, check_same_thread=False)
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != last:
                    last = version
                    with self._changed:
                        self._generation += 1
                        self._changed.notify_all()
            except sqlite3.Error as error:
                logger.warning("change feed: %s; retrying", error)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(1)
            self._stop.wait(self.poll_s)
        if conn is not None:
            conn.close()


def current_cursor(conn: sqlite3.Connection) -> Cursor:
    movement = conn.execute("SELECT coalesce(max(id), 0) FROM movement").fetchone()[0]
    scan = conn.execute("SELECT coalesce(max(id), 0) FROM scan_log").fetchone()[0]
    return Cursor(movement, scan, _alerts_version(conn))


def _alerts_version(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT count(*), coalesce(sum(count), 0), coalesce(max(last_at), '') FROM sync_alarm"
                       ).fetchone()
    # The alert table's triggers count every change of an alert row (migration m0007).
    changes = conn.execute("SELECT n FROM change_counter WHERE name = 'alert'").fetchone()
    changes = changes[0] if changes else 0
    return hashlib.sha256(repr((row, changes)).encode()).hexdigest()[:8] if row[0] or changes else ""


def movements_after(conn: sqlite3.Connection, after: int, limit: int = MAX_ROWS) -> list[dict]:
    rows = conn.execute(
        "SELECT m.id, m.origin, m.kind, v.sku, l.code, l.site_id, m.lot, m.d_on_hand, m.d_reserved, "
        " m.d_in_transit, m.ref_type, m.ref_id, m.user_login, m.device, m.ts, m.variant_id, m.location_id "
        "FROM movement m JOIN variant v ON v.id = m.variant_id JOIN location l ON l.id = m.location_id "
        "WHERE m.id > ? ORDER BY m.id LIMIT ?", (after, limit)).fetchall()
    out = []
    for (id_, origin, kind, sku, code, site, lot, d_oh, d_res, d_tr, ref_type, ref_id, user, device, ts,
         variant_id, location_id) in rows:
        on_hand, reserved, in_transit = conn.execute(
            "SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0), coalesce(sum(in_transit), 0) "
            "FROM stock WHERE variant_id = ? AND location_id = ?", (variant_id, location_id)).fetchone()
        out.append({"id": id_, "origin": origin, "kind": kind, "sku": sku, "location": code, "site": site,
                    "lot": lot, "d_on_hand": d_oh, "d_reserved": d_res, "d_in_transit": d_tr,
                    "ref_type": ref_type, "ref_id": ref_id, "user": user, "device": device, "ts": ts,
                    "stock": {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved,
                              "in_transit": in_transit}})
    return out


def scans_after(conn: sqlite3.Connection, after: int, station: str | None = None,
                limit: int = MAX_ROWS) -> list[dict]:
    sql = ("SELECT id, at, station, device, raw, kind, outcome, message, feedback FROM scan_log WHERE id > ?"
           + (" AND station = ?" if station else "") + " ORDER BY id LIMIT ?")
    params = (after, station, limit) if station else (after, limit)
    return [{"id": id_, "at": at, "station": st, "device": device, "raw": raw, "kind": kind, "outcome": outcome,
             "message": message, "feedback": json.loads(feedback) if feedback else None}
            for id_, at, st, device, raw, kind, outcome, message, feedback in conn.execute(sql, params)]


def open_alerts(conn: sqlite3.Connection) -> list[dict]:
    """Open alerts of the alert book (newest first), then the sync alarms. Both carry `count`, `last_at` and a
    `detail` text, which is what the dashboard draws; the alert book's rows add their own fields."""
    alerts = [{"source": "stock", "id": id_, "kind": kind, "subject": subject, "severity": severity,
               "message": message, "site": site, "first_seen": first, "last_seen": last, "first_at": first,
               "last_at": last, "count": count, "detail": message, "acknowledged": acked_at is not None,
               "acknowledged_by": acked_by}
              for id_, kind, subject, severity, message, site, first, last, count, acked_at, acked_by in conn.execute(
                  "SELECT id, kind, subject, severity, message, site_id, first_seen, last_seen, seen_count,"
                  " acknowledged_at, acknowledged_by FROM alert WHERE resolved_at IS NULL"
                  " ORDER BY first_seen DESC, id DESC LIMIT ?", (MAX_ROWS,))]
    return alerts + [{"source": "sync", "site": site, "kind": kind, "count": count, "first_at": first,
                      "last_at": last, "detail": detail}
                     for site, kind, count, first, last, detail in conn.execute(
                         "SELECT site_id, kind, count, first_at, last_at, detail FROM sync_alarm"
                         " ORDER BY last_at DESC")]


def _sse(event: str, data, id_: str | None = None) -> str:
    lines = [f"event: {event}"]
    if id_:
        lines.append(f"id: {id_}")
    lines.extend(f"data: {line}" for line in json.dumps(data, separators=(",", ":")).split("\n"))
    return "\n".join(lines) + "\n\n"


def stream(feed: ChangeFeed, connect, cursor: Cursor, topics: frozenset[str], station: str | None = None,
           lifetime_s: float = STREAM_LIFETIME_S) -> Iterator[str]:
    """The SSE body. `connect()` returns this thread's sqlite3 connection (peewee's, reused per thread)."""
    feed.ensure_started()
    yield "retry: 2000\n\n"
    ends = time.monotonic() + lifetime_s
    last_beat = time.monotonic()
    while time.monotonic() < ends and not SHUTDOWN.is_set():
        generation = feed.generation  # read before the rows: a commit after this wakes the wait below
        sent = False
        conn = connect()
        if "movement" in topics:
            rows = movements_after(conn, cursor.movement)
            for row in rows:
                cursor.movement = row["id"]
                yield _sse("movement", row, cursor.text())
                sent = True
        else:
            cursor.movement = max(cursor.movement, conn.execute(
                "SELECT coalesce(max(id), 0) FROM movement").fetchone()[0])
        if "scan" in topics:
            for row in scans_after(conn, cursor.scan, station):
                cursor.scan = row["id"]
                yield _sse("scan", row, cursor.text())
                sent = True
        if "alert" in topics:
            version = _alerts_version(conn)
            if version != cursor.alerts:
                cursor.alerts = version
                yield _sse("alerts", open_alerts(conn), cursor.text())
                sent = True
        if sent:
            last_beat = time.monotonic()
            continue  # more rows may be waiting beyond MAX_ROWS
        if time.monotonic() - last_beat >= HEARTBEAT_S:
            yield ": keep-alive\n\n"
            last_beat = time.monotonic()
        feed.wait(generation, timeout=1.0)
