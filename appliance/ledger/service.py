"""The ledger service: the only code that writes movements, stock levels, transfers and reservations.

Every write is one `BEGIN IMMEDIATE` transaction (`Ledger.write()`), so the rules below are checked against
the state that the write will change, with no other writer in between, whichever process posts:
- on hand never negative; available (on hand − reserved, per variant and location) never negative for
  ship, reserve, transfer_out, damage and return_out;
- this box writes movements only for locations its site owns;
- an op_id seen before returns the earlier movements instead of writing again.
Movements get `(origin, epoch, seq)` from the site row in the same transaction, so the sequence is gapless.
The hot path is plain SQL on the connection peewee holds; the rules are the readable part.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

import peewee

from appliance import clock
from appliance.errors import InconsistentState, InvalidInput, UnknownUser
from appliance.ledger.group_commit import GroupCommit
from appliance.ledger.movement_token import Signer
from appliance.ledger.operations import Operations
from appliance.ledger.requests import Move, MovementRecord, PostResult, digest
from appliance.sync.identity import SigningKey

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Ledger:
    """`key` signs every movement (movement_token.py). None writes unsigned movements, which never sync: only
    for measuring what signing costs and for tests of the ledger alone."""

    def __init__(self, db: peewee.SqliteDatabase, site_id: str, key: SigningKey | None,
                 now: Callable[[], datetime] = clock.utcnow) -> None:
        self.db = db
        self.site_id = site_id
        self._now = now
        row = db.execute_sql("SELECT is_local FROM site WHERE id = ?", (site_id,)).fetchone()
        if not row or not row[0]:
            raise InconsistentState(
                f"this database has no local site {site_id!r}: run `appliance init --site {site_id}` first",
                site=site_id)
        self._gate = WriteGate(db.database)
        self._group = GroupCommit(self._transaction, lambda sql: self.db.connection().execute(sql))
        self.signer = None if key is None else Signer(key)
        if key is not None:
            registered = db.execute_sql("SELECT public_key FROM site_key WHERE kid = ? AND site_id = ?",
                                        (key.kid, site_id)).fetchone()
            if registered is None or registered[0] != key.public.text():
                # Peers would refuse every movement signed with it: better to stop here.
                raise InconsistentState(
                    f"the site key {key.kid} is not the one registered for {site_id} in this database: "
                    "was the key file or the database replaced?", site=site_id, kid=key.kid)

    @contextmanager
    def write(self, *, user: str | None = None, device: str | None = None,
              op_id: str | None = None) -> Iterator[Operations]:
        """One BEGIN IMMEDIATE transaction; other modules may add their own rows through `ops.conn`."""
        if self.db.in_transaction():
            # A nested atomic() would silently become a savepoint that holds no write lock.
            raise RuntimeError("ledger writes open their own BEGIN IMMEDIATE transaction; do not nest them")
        with self._transaction():
            ops = Operations(self.db.connection(), self.site_id, clock.to_ts(self._now()), signer=self.signer,
                             user=user, device=device, op_id=op_id)
            if user is not None:
                _check_user(ops.conn, user)
            yield ops

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._gate.held(), self.db.atomic("IMMEDIATE"):
            yield

    def submit(self, work: Callable[[Operations], T], *, user: str | None = None, device: str | None = None,
               op_id: str | None = None) -> T:
        """`with write(...) as ops: return work(ops)`, except that threads of this process writing at the same
        moment share one transaction and one fsync (group_commit.py). `work` runs on whichever thread leads the
        group, so it must use `ops.conn` (or peewee on that thread), never a connection of its own; an error
        it raises undoes only its own rows and is raised here."""
        if self.db.in_transaction():
            raise RuntimeError("ledger writes open their own BEGIN IMMEDIATE transaction; do not nest them")

        def member() -> T:
            ops = Operations(self.db.connection(), self.site_id, clock.to_ts(self._now()), signer=self.signer,
                             user=user, device=device, op_id=op_id)
            if user is not None:
                _check_user(ops.conn, user)
            return work(ops)
        return self._group.run(member)

    def post(self, moves: Move | Sequence[Move], *, op_id: str | None = None, user: str | None = None,
             device: str | None = None) -> PostResult:
        """Write one movement request or a batch, all or nothing. Returns the committed movements."""
        batch = [moves] if isinstance(moves, Move) else list(moves)
        if not batch:
            raise InvalidInput("nothing to post", field="moves")
        for move in batch:
            move.validate()
        _check_op_id(op_id)
        return self.submit(lambda ops: apply_request(ops, batch), user=user, device=device, op_id=op_id)

    def reverse(self, movement_id: int, reason: str, *, op_id: str | None = None, user: str | None = None,
                device: str | None = None) -> PostResult:
        """Post the opposite of a movement, referencing it. The original stays as it was."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("a reversal needs a reason", field="reason")
        _check_op_id(op_id)

        def reverse(ops: Operations) -> PostResult:
            if op_id is not None:
                earlier = ops.claim_op(op_id, f"reverse:{movement_id}:{reason}")
                if earlier is not None:
                    return PostResult(earlier, replayed=True)
            return PostResult(ops.reverse(movement_id, reason.strip()))
        return self.submit(reverse, user=user, device=device, op_id=op_id)

    # Conveniences over post(): the names the CLI, the workflows and the web API use.

    def reserve(self, sku: str, location: str, qty: int, *, ref: str | None = None, lot: str = "",
                expires_at: str | None = None, **kw) -> PostResult:
        return self.post(Move("reserve", sku=sku, location=location, qty=qty, lot=lot, ref_id=ref,
                              expires_at=expires_at), **kw)

    def release(self, reservation_id: int, qty: int = 0, **kw) -> PostResult:
        return self.post(Move("release", reservation_id=reservation_id, qty=qty), **kw)

    def consume(self, reservation_id: int, qty: int, **kw) -> PostResult:
        return self.post(Move("ship", reservation_id=reservation_id, qty=qty), **kw)

    def transfer(self, sku: str, from_location: str, to_location: str, qty: int, *, lot: str = "",
                 **kw) -> PostResult:
        return self.post(Move("transfer_out", sku=sku, location=from_location, to_location=to_location,
                              qty=qty, lot=lot), **kw)

    def move(self, moves: Move | Sequence[Move], *, op_id: str | None = None, user: str | None = None,
             device: str | None = None) -> PostResult:
        """Move stock between two locations of this site: each `transfer_out` arrives in the same transaction
        (its transfer closed at once), so nothing is ever "in transit" inside one warehouse."""
        batch = [moves] if isinstance(moves, Move) else list(moves)
        if not batch:
            raise InvalidInput("nothing to move", field="moves")
        for move in batch:
            if move.kind != "transfer_out":
                raise InvalidInput(f"a move is a transfer_out within this site, not {move.kind!r}", field="kind")
            move.validate()
        _check_op_id(op_id)
        return self.submit(lambda ops: apply_request(ops, batch, then=arrive_within_site(ops)), user=user,
                           device=device, op_id=op_id)

    def transfer_in(self, transfer: str | int, qty: int, *, close: bool = False, **kw) -> PostResult:
        return self.post(Move("transfer_in", transfer=str(transfer), qty=qty, close=close), **kw)

    def expire_reservations(self, now: datetime | None = None) -> list[int]:
        """Release every held reservation whose expiry has passed; returns their ids. For the scheduler."""
        cutoff = clock.to_ts(now or self._now())
        with self.write(device="scheduler") as ops:
            expired = ops.expire_reservations(cutoff)
        if expired:
            logger.info("expired %d reservation(s): %s", len(expired), expired)
        return expired


class WriteGate:
    """Ledger writers of one database file queue here, across threads and processes, before BEGIN IMMEDIATE.

    Without it they queue in SQLite's busy handler, which polls with sleeps of up to 100 ms: two gunicorn workers
    posting at once spent most of their time asleep while the lock stood free (p99 140 ms, stalls of 1.5 s). A
    blocking flock(2) hands the lock over the moment it is released. It only orders the ledger's own writers;
    every other writer still meets SQLite's lock, so correctness never depends on it.
    """

    def __init__(self, db_path: str) -> None:
        self._path = None if db_path in ("", ":memory:") or db_path.startswith("file:") else f"{db_path}-writer.lock"
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child needs its own open file
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
            except OSError as error:
                logger.warning("no writer lock file %s (%s): writers queue in SQLite", self._path, error)
                self._path = None
                return None
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            fd = self._descriptor()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def apply_request(ops: Operations, batch: Sequence[Move],
                  then: Callable[[Move, list[MovementRecord]], list[MovementRecord]] | None = None) -> PostResult:
    """A validated batch inside an open write: claim the transaction's op id (a retry gets the earlier
    movements back), then apply every move. `then(move, records)` adds what a move implies in the same request
    (a move within the site closes its transfer at once). Also used by the station desk, whose scan owns the
    transaction."""
    if ops.op_id is not None:
        earlier = ops.claim_op(ops.op_id, digest(list(batch)))
        if earlier is not None:
            return PostResult(earlier, replayed=True)
    records: list[MovementRecord] = []
    for move in batch:
        done = ops.apply(move)
        records.extend(done)
        if then is not None:
            records.extend(then(move, done))
    return PostResult(records)


def arrive_within_site(ops: Operations) -> Callable[[Move, list[MovementRecord]], list[MovementRecord]]:
    """The `then` of a move: the goods arrive as they leave. A destination on another site is refused, because a
    move would otherwise quietly become an inter-site transfer."""
    def arrive(move: Move, out: list[MovementRecord]) -> list[MovementRecord]:
        owner = ops.conn.execute("SELECT site_id FROM location WHERE code = ?", (move.to_location,)).fetchone()
        if owner is None or owner[0] != ops.site:
            raise InvalidInput(f"{move.to_location} is not a location of this site ({ops.site}); send stock to "
                               "another site as a transfer", field="to_location")
        return ops.apply(Move("transfer_in", transfer=out[0].ref_id, qty=move.qty, close=True))
    return arrive


def _check_op_id(op_id: str | None) -> None:
    if op_id is not None and (not isinstance(op_id, str) or not 1 <= len(op_id) <= 128 or not op_id.isprintable()):
        raise InvalidInput("op_id must be 1-128 printable characters", field="op_id")


def _check_user(conn, login: str) -> None:
    row = conn.execute("SELECT active FROM app_user WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise UnknownUser(login)
    if not row[0]:
        raise InvalidInput(f"user {login!r} is disabled", field="user")
