"""The rules and writes of one ledger transaction. Only `Ledger.write()` creates an `Operations`.

Projection rule (also used by `check`): a movement's `d_on_hand` and `d_reserved` apply to the stock row
(variant, location, lot); its `d_in_transit` applies to (variant, to_location or location, lot), so stock in
transit shows at its destination on every box.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from appliance import clock
from appliance.errors import (ForeignLocation, InsufficientStock, InvalidInput, NotReversible, OpIdReused,
                              ReservationClosed, TransferClosed, UnknownLocation, UnknownMovement,
                              UnknownReservation, UnknownSku, UnknownTransfer)
from appliance.ledger.queries import load_movements
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


_INSERT_MOVEMENT = """
INSERT INTO movement (origin, epoch, seq, op_id, kind, variant_id, location_id, to_location_id, lot, expiry,
    d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, note, user_login,
    device, ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# UPDATE first, INSERT when the row is new: SQLite checks CHECK constraints on an upsert's candidate row
# before resolving the conflict, so a negative delta cannot go through INSERT ... ON CONFLICT.
_UPDATE_STOCK = """
UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ?, in_transit = in_transit + ?,
    expiry = coalesce(min(expiry, ?), expiry, ?)
WHERE variant_id = ? AND location_id = ? AND lot = ?"""
_INSERT_STOCK = """
INSERT INTO stock (variant_id, location_id, lot, expiry, on_hand, reserved, in_transit) VALUES (?, ?, ?, ?, ?, ?, ?)"""


class Operations:
    def __init__(self, conn: sqlite3.Connection, site: str, ts: str, *, user: str | None,
                 device: str | None, op_id: str | None) -> None:
        self.conn = conn
        self.site = site
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
        if row[0] != request_digest:
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
        epoch, seq = self.conn.execute(
            "UPDATE site SET head_seq = head_seq + 1 WHERE id = ? RETURNING epoch, head_seq", (self.site,)).fetchone()
        to_id = to.id if to else None
        cur = self.conn.execute(_INSERT_MOVEMENT, (
            self.site, epoch, seq, self.op_id, kind, v.id, loc.id, to_id, lot, expiry,
            d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, note,
            self.user, self.device, self.ts))
        if to is None:
            self._project(v.id, loc.id, lot, expiry, d_on_hand, d_reserved, d_in_transit)
        else:
            if d_on_hand or d_reserved:
                self._project(v.id, loc.id, lot, expiry, d_on_hand, d_reserved, 0)
            self._project(v.id, to.id, lot, expiry, 0, 0, d_in_transit)
        return MovementRecord(
            cur.lastrowid, self.site, epoch, seq, self.op_id, kind, v.sku, loc.code,
            to.code if to else None, lot, expiry, d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type,
            ref_id, reverses_id, reason, note, self.user, self.device, self.ts)

    def _project(self, variant_id: int, location_id: int, lot: str, expiry: str | None, d_on_hand: int,
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

    def _reserve(self, m: Move) -> list[MovementRecord]:
        v, loc = self.own_pair(m.sku, m.location)
        self.require_available(v, loc, m.qty)
        if m.lot:
            self.allocate(v, loc, m.qty, m.lot)  # raises unless the lot itself has the units free
        expires_at = clock.to_ts(clock.parse_ts(m.expires_at)) if m.expires_at else None
        res_id = self.conn.execute(
            "INSERT INTO reservation (variant_id, location_id, lot, qty, ref, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", (v.id, loc.id, m.lot, m.qty, m.ref_id, expires_at, self.ts)).lastrowid
        return [self.insert("reserve", v, loc, lot=m.lot, d_reserved=m.qty, ref_type="reservation",
                            ref_id=str(res_id), reason=m.reason, note=m.note)]

    def _reservation(self, reservation_id: int) -> tuple:
        row = self.conn.execute(
            "SELECT id, variant_id, location_id, lot, qty - qty_consumed - qty_released, status FROM reservation"
            " WHERE id = ?", (reservation_id,)).fetchone()
        if row is None:
            raise UnknownReservation(reservation_id)
        if row[5] != "held":
            raise ReservationClosed(f"reservation {reservation_id} is {row[5]}", reservation_id=reservation_id,
                                    status=row[5])
        return row

    def _consume(self, m: Move) -> list[MovementRecord]:
        res_id, variant_id, location_id, res_lot, remaining, _ = self._reservation(m.reservation_id)
        v, loc = self.variant_by_id(variant_id), self.own_location_by_id(location_id)
        if m.sku is not None and m.sku != v.sku:
            raise InvalidInput(f"reservation {res_id} is for {v.sku}, not {m.sku}", field="sku")
        if m.qty > remaining:
            raise InsufficientStock(v.sku, loc.code, m.qty, remaining, what=f"left on reservation {res_id}")
        ref = dict(ref_type=m.ref_type or "reservation", ref_id=m.ref_id or str(res_id), note=m.note)
        takes = self.allocate(v, loc, m.qty, m.lot or res_lot, own_reserved=m.qty if (m.lot or res_lot) == res_lot else 0)
        if len(takes) == 1 and takes[0].lot == res_lot:
            records = [self.insert("ship", v, loc, lot=res_lot, expiry=takes[0].expiry, d_on_hand=-m.qty,
                                   d_reserved=-m.qty, reason=m.reason, **ref)]
        else:
            # The reservation sits on one stock row, the goods leave from others: say both, in two kinds.
            records = [self.insert("ship", v, loc, lot=t.lot, expiry=t.expiry, d_on_hand=-t.qty, reason=m.reason,
                                   **ref) for t in takes]
            records.append(self.insert("release", v, loc, lot=res_lot, d_reserved=-m.qty, reason="consumed", **ref))
        self._close_reservation(res_id, remaining - m.qty, "qty_consumed", m.qty, "consumed")
        return records

    def _release(self, m: Move) -> list[MovementRecord]:
        if m.reservation_id is not None:
            res = self._reservation(m.reservation_id)
            qty = m.qty or res[4]
            if qty > res[4]:
                v = self.variant_by_id(res[1])
                raise InsufficientStock(v.sku, self.own_location_by_id(res[2]).code, qty, res[4],
                                        what=f"left on reservation {res[0]}")
            return self._release_from(res, qty, "released", m)
        v, loc = self.own_pair(m.sku, m.location)
        held = self.conn.execute(
            "SELECT id, variant_id, location_id, lot, qty - qty_consumed - qty_released, status FROM reservation"
            " WHERE variant_id = ? AND location_id = ? AND status = 'held' AND (? IS NULL OR ref = ?)"
            " ORDER BY id", (v.id, loc.id, m.ref_id, m.ref_id)).fetchall()
        if sum(r[4] for r in held) < m.qty:
            raise InsufficientStock(v.sku, loc.code, m.qty, sum(r[4] for r in held), what="reserved")
        records, left = [], m.qty
        for res in held:
            take = min(left, res[4])
            records += self._release_from(res, take, "released", m)
            left -= take
            if not left:
                break
        return records

    def _release_from(self, res: tuple, qty: int, status: str, m: Move | None) -> list[MovementRecord]:
        res_id, variant_id, location_id, lot, remaining, _ = res
        v, loc = self.variant_by_id(variant_id), self.own_location_by_id(location_id)
        record = self.insert("release", v, loc, lot=lot, d_reserved=-qty, ref_type="reservation",
                             ref_id=str(res_id), reason=(m.reason if m else None) or status,
                             note=m.note if m else None)
        self._close_reservation(res_id, remaining - qty, "qty_released", qty, status)
        return [record]

    def _close_reservation(self, res_id: int, left: int, column: str, qty: int, final_status: str) -> None:
        self.conn.execute(
            f"UPDATE reservation SET {column} = {column} + ?, status = CASE WHEN ? = 0 THEN ? ELSE status END,"
            " closed_at = CASE WHEN ? = 0 THEN ? ELSE closed_at END WHERE id = ?",
            (qty, left, final_status, left, self.ts, res_id))

    def expire_reservations(self, cutoff: str) -> list[int]:
        due = self.conn.execute(
            "SELECT id, variant_id, location_id, lot, qty - qty_consumed - qty_released, status FROM reservation"
            " WHERE status = 'held' AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id", (cutoff,)).fetchall()
        for res in due:
            self._release_from(res, res[4], "expired", None)
        return [res[0] for res in due]

    def _transfer_out(self, m: Move) -> list[MovementRecord]:
        v, src = self.variant(m.sku), self.own(self.location(m.location))
        dest = self.location(m.to_location)
        takes = self.take_available(v, src, m.qty, m.lot)
        transfer_id = self.conn.execute(
            "INSERT INTO transfer (code, origin, variant_id, from_location_id, to_location_id, qty_sent, created_at)"
            " VALUES ('', ?, ?, ?, ?, ?, ?)", (self.site, v.id, src.id, dest.id, m.qty, self.ts)).lastrowid
        # The origin prefix keeps codes unique across sites although the number is this box's row id.
        code = f"{self.site}-TR-{transfer_id:06d}"
        self.conn.execute("UPDATE transfer SET code = ? WHERE id = ?", (code, transfer_id))
        return [self.insert("transfer_out", v, src, lot=t.lot, expiry=t.expiry, to=dest, d_on_hand=-t.qty,
                            d_in_transit=t.qty, unit_cost=m.unit_cost, ref_type="transfer", ref_id=code,
                            reason=m.reason, note=m.note) for t in takes]

    def _transfer_in(self, m: Move) -> list[MovementRecord]:
        key = m.transfer.strip()
        row = self.conn.execute(
            "SELECT id, code, variant_id, to_location_id, status FROM transfer"
            " WHERE code = ? OR (? NOT GLOB '*[^0-9]*' AND id = CAST(? AS INTEGER))",
            (key.upper(), key, key)).fetchone()
        if row is None:
            raise UnknownTransfer(key)
        t_id, code, variant_id, dest_id, status = row
        if status not in ("in_transit", "partial"):
            raise TransferClosed(f"transfer {code} is already {status}", transfer=code, status=status)
        v, dest = self.variant_by_id(variant_id), self.own_location_by_id(dest_id)
        if m.sku is not None and m.sku != v.sku:
            raise InvalidInput(f"transfer {code} carries {v.sku}, not {m.sku}", field="sku")
        # What is still on the way, per lot, in the order it was sent.
        legs = [list(r) for r in self.conn.execute(
            "SELECT lot, max(expiry), sum(d_in_transit) FROM movement WHERE ref_type = 'transfer' AND ref_id = ?"
            " AND variant_id = ? GROUP BY lot HAVING sum(d_in_transit) > 0 ORDER BY min(id)", (code, v.id))]
        if m.lot:
            legs = [leg for leg in legs if leg[0] == m.lot]
            if not legs:
                raise InvalidInput(f"transfer {code} has no lot {m.lot} in transit", field="lot")
        ref = dict(ref_type="transfer", ref_id=code, note=m.note)
        records, left, received = [], m.qty, 0
        for leg in legs:
            take = min(left, leg[2])
            if take:
                records.append(self.insert("transfer_in", v, dest, lot=leg[0], expiry=leg[1], d_on_hand=take,
                                           d_in_transit=-take, reason=m.reason, **ref))
                leg[2] -= take
                left -= take
                received += take
        if left:
            # More arrived than was sent: book it, visibly, on the last lot of the shipment.
            lot, expiry = (legs[-1][0], legs[-1][1]) if legs else (m.lot, m.expiry)
            records.append(self.insert("discrepancy", v, dest, lot=lot, expiry=expiry, d_on_hand=left,
                                       reason="over_receipt", **ref))
        short = 0
        if m.close:
            for lot, expiry, remaining in legs:
                if remaining:
                    records.append(self.insert("discrepancy", v, dest, lot=lot, expiry=expiry,
                                               d_in_transit=-remaining, reason="short_receipt", **ref))
                    short += remaining
        still_open = sum(leg[2] for leg in legs) - short
        new_status = "partial" if still_open else ("closed" if short else "received")
        self.conn.execute(
            "UPDATE transfer SET qty_received = qty_received + ?, qty_over = qty_over + ?, qty_short = qty_short + ?,"
            " status = ?, closed_at = CASE WHEN ? = 'partial' THEN NULL ELSE ? END WHERE id = ?",
            (received, left, short, new_status, new_status, self.ts, t_id))
        return records

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
            on_hand = self.row(v, loc, lot)[0]
            if on_hand < d_on_hand:
                raise InsufficientStock(v.sku, loc.code, d_on_hand, on_hand, what=f"on hand in lot {lot or '-'}")
            self.require_available(v, loc, d_on_hand)
        return [self.insert("reversal", v, loc, lot=lot, expiry=expiry, d_on_hand=-d_on_hand, unit_cost=unit_cost,
                            ref_type=ref_type, ref_id=ref_id, reverses_id=m_id, reason=reason)]
