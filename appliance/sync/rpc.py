"""Reserve and release stock another site owns (DESIGN.md §3): only the owner decides.

Requester: `request_reserve` / `request_release` write a `remote_request` row (any process: CLI, web); the
agent sends it to the owner, re-sends it with the same idempotency key and a fresh req_id until an answer
arrives or the deadline passes, and writes the answer back. Without an answer within `rpc_timeout_s` the
status is UNKNOWN, which means exactly that: the owner may hold the stock; a retry finds out.

Owner: a reserve becomes a ledger reservation with op_id `rpc:{requester}:{key}`, so the retried request
replays the same reservation instead of holding twice; a release releases what that reservation still holds.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import peewee

from appliance import clock
from appliance.errors import ApplianceError, InsufficientStock, InvalidInput, Recovering, UnknownLocation
from appliance.ledger.service import Ledger
from appliance.sync.messages import BadMessage, ReleaseRequest, ReleaseResponse, ReserveRequest, ReserveResponse

FINAL = ("HELD", "REJECTED", "RELEASED", "NOT_HELD")


def op_id_for(requester: str, idem_key: str, action: str = "rpc") -> str:
    key = idem_key if len(idem_key) <= 100 else hashlib.sha256(idem_key.encode()).hexdigest()
    return f"{action}:{requester}:{key}"


# --- owner side --------------------------------------------------------------------------------------------------

def answer_reserve(ledger: Ledger, requester: str, req: ReserveRequest) -> ReserveResponse:
    conn = ledger.db.connection()
    owner = conn.execute("SELECT site_id FROM location WHERE code = ?", (req.location,)).fetchone()
    if owner is None or owner[0] != ledger.site_id:
        return ReserveResponse(req.req_id, req.idem_key, "REJECTED",
                               reason=f"{req.location} is not a location of {ledger.site_id}")
    op_id = op_id_for(requester, req.idem_key)
    earlier = _reservation_of(conn, op_id, ledger.site_id)
    if earlier is not None:
        # A retry (the answer was lost): the hold made the first time, whatever became of it since.
        res_id, status, expires_at = earlier
        if status != "held":
            return ReserveResponse(req.req_id, req.idem_key, "REJECTED", reason=f"reservation {res_id} is {status}")
        return ReserveResponse(req.req_id, req.idem_key, "HELD", reservation_id=res_id, expires_at=expires_at)
    expires = clock.to_ts(clock.utcnow() + timedelta(seconds=req.ttl_s))
    try:
        result = ledger.reserve(req.sku, req.location, req.qty, ref=f"{requester}:{req.idem_key}"[:200],
                                expires_at=expires, op_id=op_id,
                                device=f"sync:{requester}")
    except Recovering as exc:
        # Not a refusal: the owner cannot decide until it has its own log back; the requester asks again.
        return ReserveResponse(req.req_id, req.idem_key, "UNKNOWN", reason=exc.message[:200])
    except InsufficientStock as exc:
        return ReserveResponse(req.req_id, req.idem_key, "REJECTED", available=max(exc.details["available"], 0),
                               reason=exc.message[:200])
    except (ApplianceError, UnknownLocation) as exc:
        return ReserveResponse(req.req_id, req.idem_key, "REJECTED", reason=exc.message[:200])
    res_id = int(result.movements[0].ref_id)
    status, expires_at = conn.execute("SELECT status, expires_at FROM reservation WHERE id = ?", (res_id,)).fetchone()
    if status != "held":
        return ReserveResponse(req.req_id, req.idem_key, "REJECTED", reason=f"reservation {res_id} is {status}")
    return ReserveResponse(req.req_id, req.idem_key, "HELD", reservation_id=res_id, expires_at=expires_at)


def _reservation_of(conn, op_id: str, site: str) -> tuple | None:
    return conn.execute(
        "SELECT r.id, r.status, r.expires_at FROM movement m JOIN reservation r ON r.id = CAST(m.ref_id AS INTEGER)"
        " WHERE m.op_id = ? AND m.origin = ? AND m.kind = 'reserve'", (op_id, site)).fetchone()


def answer_release(ledger: Ledger, requester: str, req: ReleaseRequest) -> ReleaseResponse:
    conn = ledger.db.connection()
    row = _reservation_of(conn, op_id_for(requester, req.idem_key), ledger.site_id)
    release_op = op_id_for(requester, req.idem_key, "rpc-release")
    done = conn.execute("SELECT 1 FROM op WHERE op_id = ?", (release_op,)).fetchone()
    if done:
        return ReleaseResponse(req.req_id, req.idem_key, "RELEASED")
    if row is None or row[1] != "held":
        return ReleaseResponse(req.req_id, req.idem_key, "NOT_HELD",
                               reason="no reservation under this key" if row is None else f"reservation is {row[1]}")
    ledger.release(row[0], op_id=release_op, device=f"sync:{requester}")
    return ReleaseResponse(req.req_id, req.idem_key, "RELEASED")


# --- requester side ------------------------------------------------------------------------------------------------

def request_reserve(db: peewee.SqliteDatabase, owner: str, sku: str, location: str, qty: int, *, ttl_s: int = 900,
                    idem_key: str | None = None, deadline_s: float = 60.0) -> str:
    """Record a reserve request for the agent to send; returns its idempotency key. Repeating a key is a no-op."""
    key = idem_key or uuid.uuid4().hex
    try:
        ReserveRequest("check", key, sku, location, qty, ttl_s)   # every field checked before anything is stored
    except BadMessage as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    now = clock.utcnow()
    with db.atomic("IMMEDIATE"):
        known = db.execute_sql("SELECT action, owner, sku, location, qty FROM remote_request WHERE idem_key = ?",
                               (key,)).fetchone()
        if known is not None:
            if known != ("reserve", owner, sku, location, qty):
                raise InvalidInput(f"idempotency key {key!r} was used for another request", field="key")
            return key
        db.execute_sql(
            "INSERT INTO remote_request (idem_key, action, owner, sku, location, qty, ttl_s, created_at, updated_at,"
            " deadline) VALUES (?, 'reserve', ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, owner, sku, location, qty, ttl_s, clock.to_ts(now), clock.to_ts(now),
             clock.to_ts(now + timedelta(seconds=deadline_s))))
    return key


def request_release(db: peewee.SqliteDatabase, reserve_key: str, *, deadline_s: float = 3600.0) -> str:
    row = db.execute_sql("SELECT owner FROM remote_request WHERE idem_key = ? AND action = 'reserve'",
                         (reserve_key,)).fetchone()
    if row is None:
        raise InvalidInput(f"no remote reservation with key {reserve_key!r}", field="key")
    key = f"release:{reserve_key}"
    now = clock.utcnow()
    with db.atomic("IMMEDIATE"):
        db.execute_sql(
            "INSERT OR IGNORE INTO remote_request (idem_key, action, owner, reserve_key, created_at, updated_at,"
            " deadline) VALUES (?, 'release', ?, ?, ?, ?, ?)",
            (key, row[0], reserve_key, clock.to_ts(now), clock.to_ts(now),
             clock.to_ts(now + timedelta(seconds=deadline_s))))
    return key


def due_requests(db: peewee.SqliteDatabase) -> list[tuple]:
    """Requests the agent still has to (re)send: (idem_key, action, owner, sku, location, qty, ttl_s, reserve_key)."""
    now = clock.now_ts()
    db.execute_sql("UPDATE remote_request SET status = 'UNKNOWN', reason = 'no answer before the deadline'"
                   " WHERE status IN ('PENDING', 'UNKNOWN') AND deadline < ? AND reason IS NULL", (now,))
    return db.execute_sql(
        "SELECT idem_key, action, owner, sku, location, qty, ttl_s, reserve_key FROM remote_request"
        " WHERE status IN ('PENDING', 'UNKNOWN') AND deadline >= ? ORDER BY created_at", (now,)).fetchall()


def message_for(row: tuple) -> tuple[str, ReserveRequest | ReleaseRequest]:
    idem_key, action, owner, sku, location, qty, ttl_s, reserve_key = row
    req_id = uuid.uuid4().hex[:16]
    if action == "reserve":
        return owner, ReserveRequest(req_id, idem_key, sku, location, qty, ttl_s)
    return owner, ReleaseRequest(req_id, reserve_key)


def record_sent(db: peewee.SqliteDatabase, idem_key: str) -> None:
    db.execute_sql("UPDATE remote_request SET attempts = attempts + 1, updated_at = ? WHERE idem_key = ?",
                   (clock.now_ts(), idem_key))


def record_timeout(db: peewee.SqliteDatabase, idem_key: str) -> None:
    db.execute_sql("UPDATE remote_request SET status = 'UNKNOWN', updated_at = ? WHERE idem_key = ?"
                   " AND status = 'PENDING'", (clock.now_ts(), idem_key))


def record_answer(db: peewee.SqliteDatabase, answer: ReserveResponse | ReleaseResponse) -> None:
    now = clock.now_ts()
    if isinstance(answer, ReserveResponse):
        if answer.status == "UNKNOWN":
            return
        db.execute_sql(
            "UPDATE remote_request SET status = ?, reservation_id = ?, available = ?, expires_at = ?, reason = ?,"
            " updated_at = ? WHERE idem_key = ? AND action = 'reserve'",
            (answer.status, answer.reservation_id, answer.available, answer.expires_at, answer.reason, now,
             answer.idem_key))
    else:
        db.execute_sql("UPDATE remote_request SET status = ?, reason = ?, updated_at = ? WHERE reserve_key = ?"
                       " AND action = 'release'", (answer.status, answer.reason, now, answer.idem_key))
        if answer.status == "RELEASED":
            db.execute_sql("UPDATE remote_request SET status = 'RELEASED', updated_at = ? WHERE idem_key = ?"
                           " AND action = 'reserve'", (now, answer.idem_key))


def list_requests(db: peewee.SqliteDatabase) -> list[dict]:
    cols = ("idem_key", "action", "owner", "sku", "location", "qty", "status", "reservation_id", "available",
            "expires_at", "reason", "attempts", "created_at", "updated_at", "deadline")
    return [dict(zip(cols, row)) for row in db.execute_sql(
        f"SELECT {', '.join(cols)} FROM remote_request ORDER BY created_at DESC")]
