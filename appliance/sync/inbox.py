"""The inbox: verify movement tokens from any source (live push, fill response, own recovery) and apply them
strictly in order per origin, exactly once (DESIGN.md §3, sync-research.md §2.1 "Receiver").

For each origin this box keeps `site.head_seq`/`head_hash`: the last movement applied contiguously. A token
- with seq <= head is a duplicate when its hash is the stored one, else a FORK: the origin is quarantined
  (nothing more is applied from it until an operator looks) and an alarm raised;
- with seq == head + 1 is applied if its `prev` is the head's hash (else a fork), then any buffered
  successors are drained;
- with seq > head + 1 arrived early: it waits in memory (bounded) while the engine asks for the gap.
Verification happens before the write lock is taken; everything applied from one call is one transaction,
which commits before the caller acknowledges the MQTT message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import peewee

from appliance import clock
from appliance.ledger.movement_token import BadBody, parse_body
from appliance.sync.alarms import raise_alarm
from appliance.sync.identity import BadKey, PublicKey
from appliance.ledger.sites import owns
from appliance.sync.replica import Replica, Unresolvable, Verified
from appliance.sync.tokens import BadToken, open_token, read_token, token_hash

logger = logging.getLogger(__name__)

MAX_EARLY = 20_000   # tokens held in memory ahead of a gap, all origins together (~1 KB each)


@dataclass
class Outcome:
    applied: dict[str, int] = field(default_factory=dict)   # origin -> movements applied
    duplicates: int = 0
    early: int = 0
    rejected: int = 0
    ignored: int = 0   # from a quarantined origin, or an epoch this box does not follow

    @property
    def total_applied(self) -> int:
        return sum(self.applied.values())


class Rejected(Exception):
    def __init__(self, kind: str, site: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.site, self.detail = kind, site, detail


class Inbox:
    def __init__(self, db: peewee.SqliteDatabase, site: str) -> None:
        self.db = db
        self.site = site
        self.early: dict[str, dict[int, Verified]] = {}
        self._keys: dict[str, PublicKey] = {}
        self._replica: Replica | None = None
        self.reload()

    def knows(self, site: str) -> bool:
        """Whether `site` has a registered key; the registry is re-read before saying no."""
        if any(key.site == site for key in self._keys.values()):
            return True
        self.reload()
        return any(key.site == site for key in self._keys.values())

    def reload(self) -> None:
        """Re-read keys and prefixes: `appliance site add` may have run while the agent was up."""
        keys = {}
        for kid, text in self.db.execute_sql("SELECT kid, public_key FROM site_key WHERE retired_at IS NULL"):
            try:
                keys[kid] = PublicKey.parse(kid, text)
            except BadKey as exc:
                logger.error("site registry: key %s unusable: %s", kid, exc)
        self._keys = keys
        if self._replica is not None:
            self._replica.reload()

    # --- verification (no lock held) ------------------------------------------------------------------------

    def verify(self, token: str, claimed_origin: str | None = None) -> Verified:
        """One token on its own: signature by a registered key of the body's origin, plus `read`'s checks."""
        v = self.read(token, claimed_origin)
        self._check_signature(v)
        return v

    def read(self, token: str, claimed_origin: str | None = None) -> Verified:
        """A well-formed token whose key belongs to the body's origin, which owns the location and published
        it where it claims; the signature is NOT checked here (`authenticate`)."""
        try:
            kid, raw = read_token(token)
        except BadToken as exc:
            raise Rejected("bad_signature", claimed_origin or "?", str(exc)) from None
        try:
            body = parse_body(raw)
        except BadBody as exc:
            raise Rejected("bad_body", claimed_origin or "?", str(exc)) from None
        signer = kid.split("#", 1)[0]
        if signer != body.origin:
            raise Rejected("bad_signature", body.origin, f"{body.global_id} is signed with {kid}, a key of {signer}")
        if claimed_origin is not None and claimed_origin != body.origin:
            raise Rejected("bad_message", claimed_origin,
                           f"{claimed_origin} published a movement of {body.origin} as its own ({body.global_id})")
        replica = self._replica_for_reads()
        owner = replica.owner_of(body.location)
        if owner != body.origin and not (owner is None and owns(replica.prefixes.get(body.origin), body.location)):
            raise Rejected("not_owner", body.origin,
                           f"{body.global_id} moves stock at {body.location}, which belongs to "
                           f"{owner or 'no registered site'}, not to {body.origin}")
        return Verified(token, token_hash(token), kid, body)

    def _check_signature(self, v: Verified) -> None:
        try:
            open_token(v.token, self._keys)
        except BadToken as exc:
            if "unknown key" not in str(exc):
                raise Rejected("bad_signature", v.body.origin, f"{v.body.global_id}: {exc}") from None
            self.reload()   # a newly registered key: one retry
            try:
                open_token(v.token, self._keys)
            except BadToken as again:
                raise Rejected("bad_signature", v.body.origin, f"{v.body.global_id}: {again}") from None

    def authenticate(self, candidates: list[Verified], rejections: list[Rejected]) -> list[Verified]:
        """The candidates whose origin signed them. A run of one origin's consecutive tokens, each naming the
        hash of the one before as `prev`, is authentic when its LAST signature verifies: that signature
        covers the last body, whose `prev` fixes the token before it byte for byte (SHA-256), and so on down
        the run. So a catch-up of 500 movements costs one signature check, not 500 (the signature is by far
        the dearest part of receiving). A token identical to one already stored needs no check at all."""
        conn = self.db.connection()
        unique = {(v.body.origin, v.body.epoch, v.body.seq, v.hash): v for v in candidates}
        ordered = sorted(unique.values(), key=lambda v: (v.body.origin, v.body.epoch, v.body.seq))
        authentic, fresh = [], []
        heads = {}
        for v in ordered:
            b = v.body
            if b.origin not in heads:
                heads[b.origin] = conn.execute("SELECT epoch, head_seq FROM site WHERE id = ?",
                                               (b.origin,)).fetchone() or (0, 0)
            epoch, head = heads[b.origin]
            if b.epoch == epoch and b.seq <= head and conn.execute(
                    "SELECT 1 FROM movement WHERE origin = ? AND epoch = ? AND seq = ? AND hash = ?",
                    (b.origin, b.epoch, b.seq, v.hash)).fetchone():
                authentic.append(v)   # a duplicate of a stored (verified) token
            else:
                fresh.append(v)
        run: list[Verified] = []
        for v in fresh + [None]:
            if run and v is not None and _follows(run[-1], v):
                run.append(v)
                continue
            if run:
                authentic += self._authenticate_run(run, rejections)
            run = [v] if v is not None else []
        return authentic

    def _authenticate_run(self, run: list[Verified], rejections: list[Rejected]) -> list[Verified]:
        try:
            self._check_signature(run[-1])
            return run
        except Rejected as exc:
            if len(run) == 1:
                rejections.append(exc)
                return []
        good = []   # the anchor is bad: judge each token on its own signature
        for v in run:
            try:
                self._check_signature(v)
                good.append(v)
            except Rejected as exc:
                rejections.append(exc)
        return good

    def _replica_for_reads(self) -> Replica:
        if self._replica is None:
            self._replica = Replica(self.db.connection(), self.site)
        return self._replica

    # --- apply ----------------------------------------------------------------------------------------------

    def receive(self, tokens: Iterable[str], claimed_origin: str | None = None) -> Outcome:
        """Verify and apply a batch; rejected tokens are counted and alarmed, never applied."""
        outcome = Outcome()
        candidates, rejections = [], []
        for token in tokens:
            try:
                candidates.append(self.read(token, claimed_origin))
            except Rejected as exc:
                rejections.append(exc)
        verified = self.authenticate(candidates, rejections)
        outcome.rejected = len(rejections)
        self.apply(verified, outcome, rejections)
        return outcome

    def apply(self, verified: list[Verified], outcome: Outcome | None = None,
              rejections: list[Rejected] = ()) -> Outcome:
        outcome = outcome or Outcome()
        if not verified and not rejections:
            return outcome
        by_origin: dict[str, list[Verified]] = {}
        for v in sorted(verified, key=lambda v: (v.body.origin, v.body.epoch, v.body.seq)):
            by_origin.setdefault(v.body.origin, []).append(v)
        with self.db.atomic("IMMEDIATE"):
            conn = self.db.connection()
            for exc in rejections:
                raise_alarm(conn, exc.site, exc.kind, exc.detail)
            if by_origin:
                conn.execute("PRAGMA ignore_check_constraints = ON")   # see replica.py
                try:
                    for origin, items in by_origin.items():
                        self._apply_origin(conn, origin, items, outcome)
                finally:
                    conn.execute("PRAGMA ignore_check_constraints = OFF")
        return outcome

    def _apply_origin(self, conn, origin: str, items: list[Verified], outcome: Outcome) -> None:
        row = conn.execute(
            "SELECT s.epoch, s.head_seq, s.head_hash, p.quarantined_at FROM site s"
            " LEFT JOIN sync_peer p ON p.site_id = s.id WHERE s.id = ?", (origin,)).fetchone()
        if row is None:
            outcome.ignored += len(items)   # cannot happen: verify() found the origin's key in the registry
            return
        epoch, head, head_hash, quarantined = row
        if quarantined:
            outcome.ignored += len(items)
            return
        replica = self._replica_for_reads()
        early = self.early.setdefault(origin, {})
        applied = 0
        pending = list(items)
        while pending:
            v = pending.pop(0)
            b = v.body
            if b.epoch != epoch:
                raise_alarm(conn, origin, "epoch", f"{b.global_id}: this box follows epoch {epoch} of {origin}")
                outcome.ignored += 1
                continue
            if b.seq <= head:
                stored = conn.execute("SELECT hash FROM movement WHERE origin = ? AND epoch = ? AND seq = ?",
                                      (origin, epoch, b.seq)).fetchone()
                if stored and stored[0] == v.hash:
                    outcome.duplicates += 1
                else:
                    self._fork(conn, origin, f"{b.global_id} differs from the movement already applied")
                    break
                continue
            if b.seq > head + 1:
                if b.seq not in early and sum(len(e) for e in self.early.values()) < MAX_EARLY:
                    early[b.seq] = v
                outcome.early += 1
                continue
            if b.prev != head_hash:
                self._fork(conn, origin, f"{b.global_id} does not follow the movement before it (hash chain)")
                break
            try:
                replica.write(v)   # raises Unresolvable before it writes anything
            except Unresolvable as exc:
                raise_alarm(conn, origin, "unresolvable", f"{b.global_id}: {exc}")
                break
            head, head_hash = b.seq, v.hash
            applied += 1
            follower = early.pop(head + 1, None)
            if follower is not None:
                pending.insert(0, follower)
        for seq in [s for s in early if s <= head]:
            del early[seq]
        if applied:
            conn.execute("UPDATE site SET head_seq = ?, head_hash = ? WHERE id = ?", (head, head_hash, origin))
            outcome.applied[origin] = outcome.applied.get(origin, 0) + applied

    def _fork(self, conn, origin: str, detail: str) -> None:
        if origin == self.site:
            # Our own log differs from what peers hold: a restored or rolled-back disk that wrote on. Only an
            # operator can decide (DESIGN.md §3: a new epoch); keep writing, keep shouting.
            raise_alarm(conn, origin, "own_fork", detail)
            return
        raise_alarm(conn, origin, "fork", detail + "; quarantined")
        conn.execute("INSERT INTO sync_peer (site_id, quarantined_at, quarantine_reason) VALUES (?, ?, ?)"
                     " ON CONFLICT (site_id) DO UPDATE SET quarantined_at = excluded.quarantined_at,"
                     " quarantine_reason = excluded.quarantine_reason", (origin, clock.now_ts(), detail))
        self.early.pop(origin, None)

    def head_known(self, origin: str) -> int:
        """The highest seq of `origin` seen waiting here (0 if none)."""
        return max(self.early.get(origin) or [0])


def _follows(before: Verified, after: Verified) -> bool:
    a, b = before.body, after.body
    return a.origin == b.origin and a.epoch == b.epoch and b.seq == a.seq + 1 and b.prev == before.hash
