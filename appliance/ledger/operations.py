"""The rules and writes of one ledger transaction. Only `Ledger.write()` creates an `Operations`.

Projection rule (also used by `check`): a movement's `d_on_hand` and `d_reserved` apply to the stock row
(variant, location, lot); its `d_in_transit` applies to (variant, to_location or location, lot), so stock in
transit shows at its destination on every box.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from appliance.errors import (ForeignLocation, InsufficientStock, InvalidInput, NotReversible, OpIdReused,
                              Recovering, UnknownLocation, UnknownMovement, UnknownSku)
from appliance.ledger.movement_token import Body, Signer
from appliance.ledger.queries import load_movements
from appliance.ledger.reservations import ReservationOps
from appliance.ledger.transfers import TransferOps
from appliance.ledger.requests import CONSUMING_KINDS, INCOMING_KINDS, Move, MovementRecord

REVERSIBLE_KINDS = ("receive", "ship", "adjust", "damage", "return_in", "return_out", "count")


class Variant(NamedTuple):
    id: int
    sku: str
    cost_price: int | None


class Loc(NamedTuple):
    id: int
    code: str
    site: str


class Take(NamedTuple):
    lot: str
    qty: int
    expiry: str | None


INSERT_MOVEMENT = """
INSERT INTO movement (origin, epoch, seq, op_id, kind, variant_id, location_id, to_location_id, lot, expiry,
    d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, note, user_login,
    device, ts, token, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# UPDATE first, INSERT when the row is new: SQLite checks CHECK constraints on an upsert's candidate row
# before resolving the conflict, so a negative delta cannot go through INSERT ... ON CONFLICT.
_UPDATE_STOCK = """
UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ?, in_transit = in_transit + ?,
    expiry = coalesce(min(expiry, ?), expiry, ?)
WHERE variant_id = ? AND location_id = ? AND lot = ?"""
_INSERT_STOCK = """
INSERT INTO stock (variant_id, location_id, lot, expiry, on_hand, reserved, in_transit) VALUES (?, ?, ?, ?, ?, ?, ?)"""


class Operations(ReservationOps, TransferOps):
    def __init__(self, conn: sqlite3.Connection, site: str, ts: str, *, signer: Signer | None, user: str | None,
                 device: str | None, op_id: str | None) -> None:
        self.conn = conn
        self.site = site
        self.signer = signer
        self.ts = ts
        self.user = user
        self.device = device
        self.op_id = op_id

    # --- idempotency -------------------------------------------------------------------------------------

    def claim_op(self, op_id: str, request_digest: str) -> list[MovementRecord] | None:
        """None if the op_id is new (and now taken); the earlier movements if this request was posted before."""
        if self.conn.execute("INSERT OR IGNORE INTO op (op_id, request_digest, created_at) VALUES (?, ?, ?)",
                             (op_id, request_digest, self.ts)).rowcount:
            return None
        row = self.conn.execute("SELECT request_digest FROM op WHERE op_id = ?", (op_id,)).fetchone()
        # 'recovered': the op's movements came back from peers after a restore; the request itself was lost.
        if row[0] not in (request_digest, "recovered"):
            raise OpIdReused(op_id)
        return load_movements(self.conn, "m.op_id = ? AND m.origin = ?", (op_id, self.site))

    # --- dispatch ----------------------------------------------------------------------------------------

    def apply(self, move: Move) -> list[MovementRecord]:
        kind = move.kind
        if kind in INCOMING_KINDS:
            return self._incoming(move)
        if kind == "ship" and move.reservation_id is not None:
            return self._consume(move)
        if kind in CONSUMING_KINDS and kind != "transfer_out":
            return self._outgoing(move)
        return getattr(self, "_" + kind)(move)

    # --- resolution --------------------------------------------------------------------------------------

    def variant(self, sku: str) -> Variant:
        row = self.conn.execute("SELECT id, sku, cost_price FROM variant WHERE sku = ?", (sku,)).fetchone()
        if row is None:
            raise UnknownSku(sku)
        return Variant(*row)

    def variant_by_id(self, variant_id: int) -> Variant:
        return Variant(*self.conn.execute(
            "SELECT id, sku, cost_price FROM variant WHERE id = ?", (variant_id,)).fetchone())

    def variant_and_location(self, sku: str, code: str) -> tuple[Variant, Loc]:
        """Both lookups of the common request in one round trip."""
        found = self.conn.execute(
            "SELECT v.id, v.sku, v.cost_price, l.id, l.code, l.site_id FROM (SELECT 1)"
            " LEFT JOIN variant v ON v.sku = ? LEFT JOIN location l ON l.code = ?", (sku, code)).fetchone()
        if found[0] is None:
            raise UnknownSku(sku)
        if found[3] is None:
            raise UnknownLocation(code)
        return Variant(*found[:3]), Loc(*found[3:])

    def location(self, code: str) -> Loc:
        row = self.conn.execute("SELECT id, code, site_id FROM location WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise UnknownLocation(code)
        return Loc(*row)

    def own(self, loc: Loc) -> Loc:
        if loc.site != self.site:
            raise ForeignLocation(loc.code, loc.site, self.site)
        return loc

    def own_pair(self, sku: str, code: str) -> tuple[Variant, Loc]:
        v, loc = self.variant_and_location(sku, code)
        return v, self.own(loc)

    def own_location_by_id(self, location_id: int) -> Loc:
        return self.own(Loc(*self.conn.execute(
            "SELECT id, code, site_id FROM location WHERE id = ?", (location_id,)).fetchone()))

    # --- stock reads (inside the write lock, so they are what the write will change) ---------------------

    def totals(self, v: Variant, loc: Loc) -> tuple[int, int]:
        on_hand, reserved = self.conn.execute(
            "SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0) FROM stock"
            " WHERE variant_id = ? AND location_id = ?", (v.id, loc.id)).fetchone()
        return on_hand, reserved

    def row(self, v: Variant, loc: Loc, lot: str) -> tuple[int, int, int, str | None]:
        found = self.conn.execute(
            "SELECT on_hand, reserved, in_transit, expiry FROM stock"
            " WHERE variant_id = ? AND location_id = ? AND lot = ?", (v.id, loc.id, lot)).fetchone()
        return found or (0, 0, 0, None)

    def require_available(self, v: Variant, loc: Loc, qty: int) -> None:
        on_hand, reserved = self.totals(v, loc)
        if on_hand - reserved < qty:
            raise InsufficientStock(v.sku, loc.code, qty, on_hand - reserved)

    def take_available(self, v: Variant, loc: Loc, qty: int, lot: str) -> list[Take]:
        """`require_available` and `allocate` from one read of the location's rows (the ship hot path)."""
        rows = self._rows(v, loc)
        available = sum(r[1] - r[2] for r in rows)
        if available < qty:
            raise InsufficientStock(v.sku, loc.code, qty, available)
        return self._allocate_rows(v, loc, qty, lot, rows, keep_lot_reservations=True)

    def allocate(self, v: Variant, loc: Loc, qty: int, lot: str, *, keep_lot_reservations: bool = True,
                 own_reserved: int = 0) -> list[Take]:
        """Which lots `qty` comes from: the named lot, else first-expiry-first-out across the location."""
        return self._allocate_rows(v, loc, qty, lot, self._rows(v, loc), keep_lot_reservations=keep_lot_reservations,
                                   own_reserved=own_reserved)

    def _rows(self, v: Variant, loc: Loc) -> list[tuple]:
        return self.conn.execute(
            "SELECT lot, on_hand, reserved, expiry FROM stock WHERE variant_id = ? AND location_id = ?"
            " ORDER BY expiry IS NULL, expiry, lot", (v.id, loc.id)).fetchall()

    @staticmethod
    def _allocate_rows(v: Variant, loc: Loc, qty: int, lot: str, rows: list, *, keep_lot_reservations: bool,
                       own_reserved: int = 0) -> list[Take]:
        # Units a lot reservation holds stay in that lot; reservations on the lot-less row may be served from
        # any lot (the location-wide availability check covers them). `own_reserved` is what the caller's own
        # reservation holds in the named lot.
        def free(row_lot: str, on_hand: int, reserved: int) -> int:
            if not keep_lot_reservations or not row_lot:
                return on_hand
            return on_hand - reserved + (own_reserved if row_lot == lot else 0)

        if lot:
            row = next((r for r in rows if r[0] == lot), None)
            usable = free(lot, row[1], row[2]) if row else 0
            if usable < qty:
                raise InsufficientStock(v.sku, loc.code, qty, max(usable, 0), what=f"available in lot {lot}")
            return [Take(lot, qty, row[3])]
        takes, left = [], qty
        for row_lot, on_hand, reserved, expiry in rows:
            usable = min(free(row_lot, on_hand, reserved), on_hand)
            if usable <= 0:
                continue
            take = min(usable, left)
            takes.append(Take(row_lot, take, expiry))
            left -= take
            if not left:
                return takes
        raise InsufficientStock(v.sku, loc.code, qty, qty - left, what="on hand")

    # --- the one write ------------------------------------------------------------------------------------

    def insert(self, kind: str, v: Variant, loc: Loc, *, lot: str = "", expiry: str | None = None,
               d_on_hand: int = 0, d_reserved: int = 0, d_in_transit: int = 0, to: Loc | None = None,
               unit_cost: int | None = None, ref_type: str | None = None, ref_id: str | None = None,
               reverses_id: int | None = None, reason: str | None = None,
               note: str | None = None) -> MovementRecord:
        # The site row is the sequence: bumped in this transaction, so numbers are gapless and never reused.
        # It refuses while the agent pulls this site's own movements back from peers (boot recovery).
        found = self.conn.execute("SELECT epoch, head_seq, head_hash, recovering FROM site WHERE id = ?",
                                  (self.site,)).fetchone()
        if found[3]:
            raise Recovering(self.site)
        epoch, seq, prev = found[0], found[1] + 1, found[2]
        to_code = to.code if to else None
        token = digest = None
        if self.signer is not None:
            reverses = self._global_id(reverses_id) if reverses_id is not None else None
            token, digest = self.signer.sign(Body(
                1, self.site, epoch, seq, prev, kind, v.sku, loc.code, to_code, lot, expiry, d_on_hand, d_reserved,
                d_in_transit, unit_cost, ref_type, ref_id, reverses, reason, note, self.user, self.device,
                self.op_id, self.ts))
        # One write of the site row per movement: it is the sequence (inside BEGIN IMMEDIATE no other writer
        # can read the same head_seq) and the head of the hash chain.
        self.conn.execute("UPDATE site SET head_seq = ?, head_hash = coalesce(?, head_hash) WHERE id = ?",
                          (seq, digest, self.site))
        to_id = to.id if to else None
        cur = self.conn.execute(INSERT_MOVEMENT, (
            self.site, epoch, seq, self.op_id, kind, v.id, loc.id, to_id, lot, expiry,
            d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, note,
            self.user, self.device, self.ts, token, digest))
        self.project_movement(v.id, loc.id, to_id, lot, expiry, d_on_hand, d_reserved, d_in_transit)
        return MovementRecord(
            cur.lastrowid, self.site, epoch, seq, self.op_id, kind, v.sku, loc.code,
            to_code, lot, expiry, d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type,
            ref_id, reverses_id, reason, note, self.user, self.device, self.ts)

    def _global_id(self, movement_id: int) -> str:
        origin, epoch, seq = self.conn.execute(
            "SELECT origin, epoch, seq FROM movement WHERE id = ?", (movement_id,)).fetchone()
        return f"{origin}:{epoch}:{seq}"

    def project_movement(self, variant_id: int, location_id: int, to_location_id: int | None, lot: str,
                         expiry: str | None, d_on_hand: int, d_reserved: int, d_in_transit: int) -> None:
        """The projection rule of the module docstring, for a movement written here or replicated (replica.py)."""
        if to_location_id is None:
            self.project(variant_id, location_id, lot, expiry, d_on_hand, d_reserved, d_in_transit)
            return
        if d_on_hand or d_reserved:
            self.project(variant_id, location_id, lot, expiry, d_on_hand, d_reserved, 0)
        self.project(variant_id, to_location_id, lot, expiry, 0, 0, d_in_transit)

    def project(self, variant_id: int, location_id: int, lot: str, expiry: str | None, d_on_hand: int,
                 d_reserved: int, d_in_transit: int) -> None:
        # A lot shows the earliest expiry it was ever booked with: the safe date to sell by.
        cur = self.conn.execute(_UPDATE_STOCK, (d_on_hand, d_reserved, d_in_transit, expiry, expiry,
                                                variant_id, location_id, lot))
        if cur.rowcount == 0:
            self.conn.execute(_INSERT_STOCK, (variant_id, location_id, lot, expiry, d_on_hand, d_reserved,
                                              d_in_transit))

    # --- kinds --------------------------------------------------------------------------------------------

    def _incoming(self, m: Move) -> list[MovementRecord]:
        v, loc = self.own_pair(m.sku, m.location)
        cost = m.unit_cost if m.unit_cost is not None else (v.cost_price if m.kind == "receive" else None)
        return [self.insert(m.kind, v, loc, lot=m.lot, expiry=m.expiry, d_on_hand=m.qty, unit_cost=cost,
                            ref_type=m.ref_type, ref_id=m.ref_id, reason=m.reason, note=m.note)]

    def _outgoing(self, m: Move) -> list[MovementRecord]:
        v, loc = self.own_pair(m.sku, m.location)
        return [self.insert(m.kind, v, loc, lot=t.lot, expiry=t.expiry, d_on_hand=-t.qty, unit_cost=m.unit_cost,
                            ref_type=m.ref_type, ref_id=m.ref_id, reason=m.reason, note=m.note)
                for t in self.take_available(v, loc, m.qty, m.lot)]

    def _adjust(self, m: Move) -> list[MovementRecord]:
        v, loc = self.own_pair(m.sku, m.location)
        common = dict(unit_cost=m.unit_cost, ref_type=m.ref_type, ref_id=m.ref_id, reason=m.reason, note=m.note)
        if m.qty > 0:
            return [self.insert("adjust", v, loc, lot=m.lot, expiry=m.expiry, d_on_hand=m.qty, **common)]
        # Stock that is gone is gone even when promised: only on hand limits a downward adjustment.
        return [self.insert("adjust", v, loc, lot=t.lot, expiry=t.expiry, d_on_hand=-t.qty, **common)
                for t in self.allocate(v, loc, -m.qty, m.lot, keep_lot_reservations=False)]

    def _count(self, m: Move) -> list[MovementRecord]:
        v, loc = self.own_pair(m.sku, m.location)
        if not m.lot:
            lots = [r[0] for r in self.conn.execute(
                "SELECT lot FROM stock WHERE variant_id = ? AND location_id = ? AND lot != '' AND on_hand > 0",
                (v.id, loc.id))]
            if lots:
                raise InvalidInput(f"{v.sku} at {loc.code} is held in lots {', '.join(sorted(lots))}: count each lot",
                                   field="lot")
        on_hand, _, _, expiry = self.row(v, loc, m.lot)
        # A count that finds no difference is still written: it is the evidence that someone looked.
        return [self.insert("count", v, loc, lot=m.lot, expiry=m.expiry or expiry, d_on_hand=m.qty - on_hand,
                            ref_type=m.ref_type, ref_id=m.ref_id, reason=m.reason or "count", note=m.note)]

    def reverse(self, movement_id: int, reason: str) -> list[MovementRecord]:
        row = self.conn.execute(
            "SELECT id, origin, kind, variant_id, location_id, lot, expiry, d_on_hand, d_reserved, d_in_transit,"
            " unit_cost, ref_type, ref_id FROM movement WHERE id = ?", (movement_id,)).fetchone()
        if row is None:
            raise UnknownMovement(movement_id)
        (m_id, origin, kind, variant_id, location_id, lot, expiry, d_on_hand, d_reserved, d_in_transit,
         unit_cost, ref_type, ref_id) = row
        if kind not in REVERSIBLE_KINDS or d_reserved or d_in_transit:
            raise NotReversible(f"movement {m_id} ({kind}) cannot be reversed; "
                                f"reversible kinds: {', '.join(REVERSIBLE_KINDS)} (use release or transfer-in "
                                "for reservations and transfers)", movement_id=m_id, kind=kind)
        if origin != self.site:
            raise NotReversible(f"movement {m_id} was written by site {origin}; reverse it there",
                                movement_id=m_id, origin=origin)
        done = self.conn.execute("SELECT id FROM movement WHERE reverses_id = ?", (m_id,)).fetchone()
        if done:
            raise NotReversible(f"movement {m_id} was already reversed by movement {done[0]}",
                                movement_id=m_id, reversed_by=done[0])
        v, loc = self.variant_by_id(variant_id), self.own_location_by_id(location_id)
        if d_on_hand > 0:
            # Taking back a receipt is like shipping those units from that lot: only free units may go.
            if lot:
                self.take_available(v, loc, d_on_hand, lot)
            else:
                on_hand = self.row(v, loc, "")[0]
                if on_hand < d_on_hand:
                    raise InsufficientStock(v.sku, loc.code, d_on_hand, on_hand, what="on hand without a lot")
                self.require_available(v, loc, d_on_hand)
        return [self.insert("reversal", v, loc, lot=lot, expiry=expiry, d_on_hand=-d_on_hand, unit_cost=unit_cost,
                            ref_type=ref_type, ref_id=ref_id, reverses_id=m_id, reason=reason)]
