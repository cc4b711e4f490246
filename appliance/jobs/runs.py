"""The `job_run` book: one row per run of a scheduled job (running → ok / failed / interrupted), plus 'missed'
rows for slots that passed without a run. Any process reads it (`appliance jobs list`, the web app).

Writers take the connection of an open `Ledger.write()` transaction; readers any connection. Timestamps are
`clock.to_ts` text, which sorts as time.
"""

from __future__ import annotations

import sqlite3
from typing import Any

OUTCOMES = ("running", "ok", "failed", "missed", "interrupted")
# Rows kept per job: the frequent jobs (alert delivery every 5 s) would otherwise grow the table by thousands
# of rows a day. Failures that matter outlive this as alerts.
KEEP_RUNS = 500
# The first time a scheduler started on this database (UTC epoch seconds): slots before it were not missed.
SINCE_CURSOR = "jobs.since"


def begin(conn: sqlite3.Connection, job: str, scheduled_for: str | None, now: str) -> int:
    return conn.execute("INSERT INTO job_run (job, scheduled_for, started_at, outcome) VALUES (?, ?, ?, 'running')"
                        " RETURNING id", (job, scheduled_for, now)).fetchone()[0]


def finish(conn: sqlite3.Connection, run_id: int, outcome: str, detail: str, now: str) -> None:
    conn.execute("UPDATE job_run SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
                 (now, outcome, detail, run_id))
    job = conn.execute("SELECT job FROM job_run WHERE id = ?", (run_id,)).fetchone()[0]
    prune(conn, job)


def record(conn: sqlite3.Connection, job: str, outcome: str, scheduled_for: str | None, now: str,
           detail: str, finished: str | None = None) -> int:
    """A finished row in one write: a missed slot (`finished` None: at `now`), or an interval job's run."""
    return conn.execute("INSERT INTO job_run (job, scheduled_for, started_at, finished_at, outcome, detail)"
                        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                        (job, scheduled_for, now, finished or now, outcome, detail)).fetchone()[0]


def prune(conn: sqlite3.Connection, job: str, keep: int = KEEP_RUNS) -> None:
    conn.execute("DELETE FROM job_run WHERE job = ? AND id < (SELECT id FROM job_run WHERE job = ?"
                 " ORDER BY id DESC LIMIT 1 OFFSET ?)", (job, job, keep - 1))


def running(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """(id, job, started_at) of the rows still marked running."""
    return conn.execute("SELECT id, job, started_at FROM job_run WHERE outcome = 'running' ORDER BY id").fetchall()


def interrupt(conn: sqlite3.Connection, run_id: int, now: str) -> None:
    conn.execute("UPDATE job_run SET outcome = 'interrupted', finished_at = ?,"
                 " detail = 'the process stopped during the run' WHERE id = ? AND outcome = 'running'",
                 (now, run_id))


def ran_since(conn: sqlite3.Connection, job: str, since: str, *, ignore: tuple[str, ...] = ()) -> bool:
    """Whether a row of `job` started at or after `since`, leaving out rows whose outcome is in `ignore`."""
    marks = ", ".join("?" * len(ignore))
    return conn.execute(f"SELECT 1 FROM job_run WHERE job = ? AND started_at >= ? AND outcome NOT IN ({marks})"
                        " LIMIT 1", (job, since, *ignore)).fetchone() is not None


def last_started(conn: sqlite3.Connection, job: str) -> str | None:
    """When the latest real run (not a 'missed' row) of `job` started."""
    row = conn.execute("SELECT started_at FROM job_run WHERE job = ? AND outcome != 'missed' ORDER BY id DESC"
                       " LIMIT 1", (job,)).fetchone()
    return row[0] if row else None


def last_run(conn: sqlite3.Connection, job: str) -> dict[str, Any] | None:
    cur = conn.execute("SELECT id, scheduled_for, started_at, finished_at, outcome, detail FROM job_run"
                       " WHERE job = ? ORDER BY id DESC LIMIT 1", (job,))
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


def history(conn: sqlite3.Connection, job: str, limit: int = 20) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT id, scheduled_for, started_at, finished_at, outcome, detail FROM job_run"
                       " WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def since(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM agent_cursor WHERE name = ?", (SINCE_CURSOR,)).fetchone()
    return row[0] if row else None


def mark_since(conn: sqlite3.Connection, epoch_s: int) -> int:
    """Remember the first start (kept if already there); returns the value in force."""
    conn.execute("INSERT INTO agent_cursor (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                 (SINCE_CURSOR, epoch_s))
    return since(conn)
