"""Reservations inside a ledger transaction: reserve, release, consume (ship against), expire.

A reservation holds units on one stock row (its lot, or the lot-less row for "any lot"); its movements
reference it as `reservation:<id>`, and the order reference lives on the reservation row.
"""

from __future__ import annotations

from appliance import clock
from appliance.errors import InsufficientStock, InvalidInput, ReservationClosed, UnknownReservation
from appliance.ledger.requests import Move, MovementRecord


class ReservationOps:
    """Mixed into `Operations`, whose resolution, allocation and `insert` these methods use."""

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
