"""Write one verified movement received from its origin (or, in recovery, one of this site's own movements
that peers held) into this box's ledger: the same row and projection the origin wrote, plus the documents
this box keeps about it (transfers to or from here; for its own movements, reservations and op ids).

The body names SKUs and locations by code; this box resolves them to its own row ids, creating what it
lacks: a location the origin owns, or a placeholder variant for a SKU missing from this box's catalog, so
that no movement is ever refused for a catalog that lags behind.

Stock of other sites is a projection that may be transiently negative here: in-transit stock at a
destination is raised by the sender's `transfer_out` and lowered by the receiver's `transfer_in`, which come
from two origins with no order between them. The CHECK constraints guard this box's own writes; while
replicas are applied they are suspended (`PRAGMA ignore_check_constraints`) and every site settles to the
origin's numbers once both logs are in.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.ledger.movement_token import GLOBAL_ID, Body
from appliance.ledger.operations import INSERT_MOVEMENT, Operations
from appliance.ledger.sites import owner_by_prefix




class Unresolvable(Exception):
    """The movement names something this box cannot place (a location no registered site owns)."""


@dataclass(frozen=True)
class Verified:
    token: str
    hash: str
    kid: str
    body: Body


class Replica:
    """Resolution caches and the write of one movement; used inside the inbox's BEGIN IMMEDIATE."""

    def __init__(self, conn: sqlite3.Connection, site: str) -> None:
        self.conn = conn
        self.site = site
        self._variants: dict[str, int] = {}
        self._locations: dict[str, tuple[int, str]] = {}
        self.prefixes: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the registry (a site added while the agent runs)."""
        self.prefixes = {site: prefix for site, prefix in self.conn.execute(
            "SELECT id, coalesce(location_prefix, id) FROM site")}

    def owner_of(self, code: str) -> str | None:
        known = self._location(code)
        if known is not None:
            return known[1]
        return owner_by_prefix(self.prefixes.items(), code)

    def _location(self, code: str) -> tuple[int, str] | None:
        found = self._locations.get(code)
        if found is None:
            row = self.conn.execute("SELECT id, site_id FROM location WHERE code = ?", (code,)).fetchone()
            if row is not None:
                found = self._locations[code] = (row[0], row[1])
        return found

    def _location_id(self, code: str, owner: str, ts: str) -> int:
        found = self._location(code)
        if found is not None:
            return found[0]
        loc_id = self.conn.execute(
            "INSERT INTO location (code, site_id, name, kind, created_at) VALUES (?, ?, '', 'bin', ?)",
            (code, owner, ts)).lastrowid
        self._locations[code] = (loc_id, owner)
        return loc_id

    def _variant_id(self, sku: str, origin: str, ts: str) -> int:
        found = self._variants.get(sku)
        if found is not None:
            return found
        row = self.conn.execute("SELECT id FROM variant WHERE sku = ?", (sku,)).fetchone()
        if row is None:
            product = self.conn.execute("SELECT id FROM product WHERE sku = ?", (sku,)).fetchone()
            product_id = product[0] if product else self.conn.execute(
                "INSERT INTO product (sku, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (sku, sku, f"Created by sync: site {origin} moved this SKU, which is not in this box's catalog "
                           "yet; import the catalog to name it.", ts, ts)).lastrowid
            row = (self.conn.execute("INSERT INTO variant (product_id, sku, created_at, updated_at) VALUES (?, ?, ?, ?)",
                                     (product_id, sku, ts, ts)).lastrowid,)
        self._variants[sku] = row[0]
        return row[0]

    def write(self, v: Verified) -> None:
        b = v.body
        to_owner = None
        if b.to_location is not None:
            to_owner = self.owner_of(b.to_location)
            if to_owner is None:
                raise Unresolvable(f"destination {b.to_location} belongs to no registered site "
                                   "(add that site with `appliance site add`)")
        reverses_id = None
        if b.reverses is not None:
            origin, epoch, seq = GLOBAL_ID.fullmatch(b.reverses).groups()
            row = self.conn.execute("SELECT id FROM movement WHERE origin = ? AND epoch = ? AND seq = ?",
                                    (origin, int(epoch), int(seq))).fetchone()
            if row is None:
                raise Unresolvable(f"reverses {b.reverses}, which this box does not hold")
            reverses_id = row[0]
        # Nothing is written above this line, so an Unresolvable movement leaves no trace (no savepoint needed).
        variant_id = self._variant_id(b.sku, b.origin, b.ts)
        loc_id = self._location_id(b.location, b.origin, b.ts)
        to_id = self._location_id(b.to_location, to_owner, b.ts) if to_owner else None
        self.conn.execute(INSERT_MOVEMENT, (
            b.origin, b.epoch, b.seq, b.op_id, b.kind, variant_id, loc_id, to_id, b.lot, b.expiry, b.d_on_hand,
            b.d_reserved, b.d_in_transit, b.unit_cost, b.ref_type, b.ref_id, reverses_id, b.reason, b.note, b.user,
            b.device, b.ts, v.token, v.hash))
        ops = Operations(self.conn, self.site, b.ts, signer=None, user=None, device=None, op_id=None)
        ops.project_movement(variant_id, loc_id, to_id, b.lot, b.expiry, b.d_on_hand, b.d_reserved, b.d_in_transit)
        self._documents(b, variant_id, loc_id, to_id, to_owner)

    # --- documents kept beside the movements -----------------------------------------------------------------

    def _documents(self, b: Body, variant_id: int, loc_id: int, to_id: int | None, to_owner: str | None) -> None:
        if b.ref_type == "transfer" and b.ref_id:
            if b.kind == "transfer_out" and self.site in (b.origin, to_owner):
                # Our own code BER-TR-000005 is row 5 (TransferOps): keep it so, or a later transfer reuses it.
                own_id = int(b.ref_id.rsplit("-", 1)[1]) if b.origin == self.site else None
                self.conn.execute(
                    "INSERT INTO transfer (id, code, origin, variant_id, from_location_id, to_location_id, qty_sent,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (code) DO UPDATE SET qty_sent = qty_sent + excluded.qty_sent",
                    (own_id, b.ref_id, b.origin, variant_id, loc_id, to_id, b.d_in_transit, b.ts))
            elif b.kind in ("transfer_in", "discrepancy"):
                self._receipt(b)
        if b.origin == self.site:
            self._own(b, variant_id, loc_id)

    def _receipt(self, b: Body) -> None:
        received = -b.d_in_transit if b.kind == "transfer_in" else 0
        over = b.d_on_hand if b.kind == "discrepancy" and b.reason == "over_receipt" else 0
        short = -b.d_in_transit if b.kind == "discrepancy" and b.reason == "short_receipt" else 0
        self.conn.execute(
            "UPDATE transfer SET qty_received = qty_received + ?, qty_over = qty_over + ?, qty_short = qty_short + ?,"
            " status = CASE WHEN qty_sent > qty_received + ? + qty_short + ? THEN"
            "   CASE WHEN qty_received + ? > 0 THEN 'partial' ELSE 'in_transit' END"
            "   WHEN qty_short + ? > 0 THEN 'closed' ELSE 'received' END,"
            " closed_at = CASE WHEN qty_sent > qty_received + ? + qty_short + ? THEN NULL ELSE ? END"
            " WHERE code = ?",
            (received, over, short, received, short, received, short, received, short, b.ts, b.ref_id))

    def _own(self, b: Body, variant_id: int, loc_id: int) -> None:
        """This site's own movement recovered from peers: rebuild what its ledger kept beside it."""
        if b.op_id is not None:
            # The request itself is gone; a client retrying it gets these movements back (Operations.claim_op).
            self.conn.execute("INSERT OR IGNORE INTO op (op_id, request_digest, created_at) VALUES (?, 'recovered', ?)",
                              (b.op_id, b.ts))
        if b.ref_type != "reservation" or not (b.ref_id or "").isdigit():
            return
        res_id = int(b.ref_id)
        if b.kind == "reserve":
            self.conn.execute(
                "INSERT OR IGNORE INTO reservation (id, variant_id, location_id, lot, qty, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (res_id, variant_id, loc_id, b.lot, b.d_reserved, b.ts))
            return
        if not b.d_reserved:
            return
        column = "qty_consumed" if b.kind == "ship" or b.reason == "consumed" else "qty_released"
        final = {"qty_consumed": "consumed", "qty_released": "expired" if b.reason == "expired" else "released"}
        self.conn.execute(
            f"UPDATE reservation SET {column} = {column} + ?,"
            f" status = CASE WHEN qty = qty_consumed + qty_released + ? THEN ? ELSE status END,"
            f" closed_at = CASE WHEN qty = qty_consumed + qty_released + ? THEN ? ELSE closed_at END WHERE id = ?",
            (-b.d_reserved, -b.d_reserved, final[column], -b.d_reserved, b.ts, res_id))
