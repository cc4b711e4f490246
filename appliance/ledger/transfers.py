"""Transfers inside a ledger transaction: one document per request, lots read back from its movements."""

from __future__ import annotations

from appliance.errors import InvalidInput, TransferClosed, UnknownLocation, UnknownTransfer
from appliance.ledger.requests import Move, MovementRecord
from appliance.ledger.sites import LOCATION_CODE, owner_by_prefix


class TransferOps:
    """Mixed into `Operations`, whose resolution, allocation and `insert` these methods use."""

    def _transfer_out(self, m: Move) -> list[MovementRecord]:
        v, src = self.variant(m.sku), self.own(self.location(m.location))
        dest = self.destination(m.to_location)
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

    def destination(self, code: str):
        """A known location, or one another registered site owns by its prefix that this box has not seen yet."""
        try:
            return self.location(code)
        except UnknownLocation:
            owner = owner_by_prefix(self.conn.execute("SELECT id, location_prefix FROM site WHERE NOT is_local"),
                                    code)
            if owner is None or not LOCATION_CODE.fullmatch(code):
                raise
            self.conn.execute("INSERT INTO location (code, site_id, created_at) VALUES (?, ?, ?)",
                              (code, owner, self.ts))
            return self.location(code)

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
