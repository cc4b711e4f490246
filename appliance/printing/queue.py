"""The print queue: `print_job` rows and their states (migration m0009 says why it looks the way it does).

    queued ──claim──> sending ──> done
      ^                  │
      └──── retry_later ─┤ (printer offline, connection dropped: after a backoff)
                         ├──> failed     (gave up after `give_up_hours`, or the label cannot be rendered)
                         └──> uncertain  (caught mid-send by a restart, or part of an ESC/POS job left the box)
    queued | failed | uncertain ──cancel──> cancelled;  failed | uncertain | cancelled ──requeue──> queued;
    done ──reprint──> a new job

Writers take the connection of an open `Ledger.write()` transaction, so a job is queued in the same transaction
as the movement that asked for it and vanishes with it on a rollback.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from appliance.errors import InvalidInput, NotFound, RuleViolation

STATES = ("queued", "sending", "done", "failed", "uncertain", "cancelled")
MAX_COPIES = 1000

_COLUMNS = ("id, printer, label, data, copies, state, attempts, last_error, created_at, updated_at, "
            "next_attempt_at, sent_at, created_by, station, ref_type, ref_id, reprint_of, partial")


class JobStateError(RuleViolation):
    code = "job_state"


class UnknownJob(NotFound):
    code = "unknown_print_job"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"there is no print job {job_id}", job=job_id)


@dataclass(frozen=True)
class Job:
    id: int
    printer: str
    label: str
    data: dict[str, Any]
    copies: int
    state: str
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str
    next_attempt_at: str
    sent_at: str | None
    created_by: str | None
    station: str | None
    ref_type: str | None
    ref_id: str | None
    reprint_of: int | None
    partial: bool

    @classmethod
    def from_row(cls, row: tuple) -> Job:
        values = list(row)
        values[3] = json.loads(values[3])
        values[17] = bool(values[17])
        return cls(*values)

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def enqueue(conn: sqlite3.Connection, printer: str, label: str, data: dict[str, Any], *, now: str, copies: int = 1,
            user: str | None = None, station: str | None = None, ref_type: str | None = None,
            ref_id: str | None = None, reprint_of: int | None = None) -> int:
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= MAX_COPIES:
        raise InvalidInput(f"copies must be a whole number from 1 to {MAX_COPIES}, not {copies!r}", field="copies")
    return conn.execute(
        "INSERT INTO print_job (printer, label, data, copies, created_at, updated_at, next_attempt_at, created_by,"
        " station, ref_type, ref_id, reprint_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (printer, label, json.dumps(data, sort_keys=True), copies, now, now, now, user, station, ref_type, ref_id,
         reprint_of)).lastrowid


def get(conn: sqlite3.Connection, job_id: int) -> Job | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM print_job WHERE id = ?", (job_id,)).fetchone()
    return Job.from_row(row) if row else None


def require(conn: sqlite3.Connection, job_id: int) -> Job:
    job = get(conn, job_id)
    if job is None:
        raise UnknownJob(job_id)
    return job


def listing(conn: sqlite3.Connection, *, states: tuple[str, ...] = (), printer: str | None = None,
            limit: int = 50, offset: int = 0) -> list[Job]:
    where, params = [], []
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        params += list(states)
    if printer:
        where.append("printer = ?")
        params.append(printer)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM print_job {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                        (*params, limit, offset)).fetchall()
    return [Job.from_row(row) for row in rows]


def due(conn: sqlite3.Connection, printer: str, now: str, limit: int = 20) -> list[Job]:
    """Queued jobs of `printer` whose time has come, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM print_job WHERE state = 'queued' AND printer = ?"
                        " AND next_attempt_at <= ? ORDER BY id LIMIT ?", (printer, now, limit)).fetchall()
    return [Job.from_row(row) for row in rows]


def waiting(conn: sqlite3.Connection, printer: str) -> int:
    return conn.execute("SELECT count(*) FROM print_job WHERE state = 'queued' AND printer = ?",
                        (printer,)).fetchone()[0]


def claim(conn: sqlite3.Connection, job_id: int, now: str) -> bool:
    """queued -> sending, committed by the caller before any byte is sent. False if someone else took it (a
    cancel in between)."""
    return conn.execute("UPDATE print_job SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                        " WHERE id = ? AND state = 'queued'", (now, job_id)).rowcount == 1


def finish(conn: sqlite3.Connection, job_id: int, now: str) -> None:
    conn.execute("UPDATE print_job SET state = 'done', sent_at = ?, updated_at = ?, partial = 0 WHERE id = ?"
                 " AND state = 'sending'", (now, now, job_id))


def retry_later(conn: sqlite3.Connection, job_id: int, now: str, next_at: str, error: str, *,
                partial: bool = False) -> None:
    """Back to the queue after a failed attempt. `partial`: part of a ZPL format reached the printer, so the next
    attempt first cancels it (~JX)."""
    conn.execute("UPDATE print_job SET state = 'queued', next_attempt_at = ?, last_error = ?, updated_at = ?,"
                 " partial = max(partial, ?) WHERE id = ? AND state = 'sending'",
                 (next_at, error, now, int(partial), job_id))


def settle(conn: sqlite3.Connection, job_id: int, state: str, now: str, error: str) -> None:
    """sending -> failed or uncertain, with the reason."""
    assert state in ("failed", "uncertain")
    conn.execute("UPDATE print_job SET state = ?, last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
                 (state, error, now, job_id))


def recover(conn: sqlite3.Connection, now: str) -> list[int]:
    """At agent start: jobs a stop or crash caught mid-send. Whether the printer got them is unknown, so a
    person decides (reprint or dismiss); printing them again unasked could double a batch of labels."""
    rows = conn.execute("UPDATE print_job SET state = 'uncertain', updated_at = ?, last_error = coalesce("
                        "last_error || '; ', '') || 'the agent stopped while sending this job: check the printer, "
                        "then reprint or cancel it' WHERE state = 'sending' RETURNING id", (now,)).fetchall()
    return sorted(row[0] for row in rows)


def cancel(conn: sqlite3.Connection, job_id: int, now: str) -> Job:
    job = require(conn, job_id)
    if job.state == "cancelled":
        return job
    if job.state not in ("queued", "failed", "uncertain"):
        raise JobStateError(f"print job {job_id} is {job.state}: only a queued, failed or uncertain job can be "
                            "cancelled", job=job_id, state=job.state)
    conn.execute("UPDATE print_job SET state = 'cancelled', updated_at = ? WHERE id = ?", (now, job_id))
    return require(conn, job_id)


def requeue(conn: sqlite3.Connection, job_id: int, now: str, *, printer: str | None = None,
            user: str | None = None) -> Job:
    """Print it (again): a failed, uncertain or cancelled job goes back to the queue now; a done job is
    printed again as a new job that points at it. `printer` moves it to another printer."""
    job = require(conn, job_id)
    if job.state in ("queued", "sending"):
        raise JobStateError(f"print job {job_id} is already {job.state}", job=job_id, state=job.state)
    if job.state == "done":
        new_id = enqueue(conn, printer or job.printer, job.label, job.data, now=now, copies=job.copies, user=user,
                         station=job.station, ref_type=job.ref_type, ref_id=job.ref_id, reprint_of=job.id)
        return require(conn, new_id)
    # An uncertain job may have left half a format in the printer: cancel it before this one.
    partial = job.partial or job.state == "uncertain"
    conn.execute("UPDATE print_job SET state = 'queued', next_attempt_at = ?, updated_at = ?, printer = ?,"
                 " partial = ? WHERE id = ?", (now, now, printer or job.printer, int(partial), job_id))
    return require(conn, job_id)
