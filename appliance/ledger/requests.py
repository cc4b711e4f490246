"""What callers ask the ledger to do (`Move`) and what it wrote (`MovementRecord`). Pure: no database here.

A `Move` is validated on its own before the write lock is taken, so a malformed request never waits for
the lock and never reaches SQL. Rules that depend on stock (availability, ownership) are checked by the
service inside the transaction.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any

from appliance import clock
from appliance.errors import InvalidInput, InvalidQuantity

# Kinds a caller may post. `discrepancy` and `reversal` are written by the ledger itself.
POSTABLE_KINDS = (
    "receive", "ship", "adjust", "damage", "return_in", "return_out", "count",
    "reserve", "release", "transfer_out", "transfer_in",
)
ALL_KINDS = POSTABLE_KINDS + ("discrepancy", "reversal")
# Kinds whose quantity must leave available stock (on hand − reserved) non-negative.
CONSUMING_KINDS = ("ship", "damage", "return_out", "transfer_out")
INCOMING_KINDS = ("receive", "return_in")

_LOT = re.compile(r"^[\x21-\x7e\u00a0-\uffff][\x20-\x7e\u00a0-\uffff]{0,63}$")
MAX_QTY = 10**9


@dataclass(frozen=True)
class Move:
    """One requested stock change. Which fields matter depends on `kind` (see `validate`)."""

    kind: str
    sku: str | None = None
    location: str | None = None
    qty: int = 0
    lot: str = ""
    expiry: str | None = None          # YYYY-MM-DD
    to_location: str | None = None     # transfer_out: destination, on any site
    transfer: str | None = None        # transfer_in: transfer code (BER-TR-000001) or id
    close: bool = False                # transfer_in: close the transfer, booking any shortfall
    reservation_id: int | None = None  # ship: consume this reservation; release: release it
    expires_at: str | None = None      # reserve: UTC timestamp after which the scheduler releases it
    unit_cost: int | None = None       # minor units; receive defaults to the variant's cost price
    ref_type: str | None = None
    ref_id: str | None = None
    reason: str | None = None
    note: str | None = None

    def validate(self) -> "Move":
        kind = self.kind
        if kind not in POSTABLE_KINDS:
            raise InvalidInput(f"unknown movement kind {kind!r}; one of {', '.join(POSTABLE_KINDS)}", field="kind")
        qty = self.qty
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise InvalidQuantity(f"quantity must be a whole number, not {qty!r}", field="qty")
        if abs(qty) > MAX_QTY:
            raise InvalidQuantity(f"quantity {qty} is beyond {MAX_QTY}", field="qty")
        if kind == "adjust":
            if qty == 0:
                raise InvalidQuantity("an adjustment needs a non-zero signed quantity", field="qty")
        elif kind == "count":
            if qty < 0:
                raise InvalidQuantity(f"a counted quantity cannot be negative ({qty})", field="qty")
        elif kind == "transfer_in" and self.close:
            if qty < 0:
                raise InvalidQuantity(f"a received quantity cannot be negative ({qty})", field="qty")
        elif kind == "release" and self.reservation_id is not None and qty == 0:
            pass  # release whatever remains of the reservation
        elif qty <= 0:
            raise InvalidQuantity(f"{kind} takes a positive quantity, not {qty}", field="qty")

        if kind == "transfer_in":
            if not self.transfer:
                raise InvalidInput("transfer_in needs the transfer code or id", field="transfer")
        elif kind == "release" and self.reservation_id is not None:
            pass
        elif kind == "ship" and self.reservation_id is not None:
            pass  # the reservation names the variant and location
        else:
            _require_text(self.sku, "sku")
            _require_text(self.location, "location")
        if kind == "transfer_out":
            _require_text(self.to_location, "to_location")
            if self.to_location == self.location:
                raise InvalidInput("a transfer needs a destination other than its source", field="to_location")
        if self.lot and not _LOT.match(self.lot):
            raise InvalidInput(f"lot {self.lot!r} must be 1-64 printable characters", field="lot")
        if self.expiry is not None:
            try:
                date.fromisoformat(self.expiry)
            except (TypeError, ValueError):
                raise InvalidInput(f"expiry {self.expiry!r} is not a date (YYYY-MM-DD)", field="expiry") from None
        if self.expires_at is not None:
            try:
                clock.parse_ts(self.expires_at)
            except (TypeError, ValueError, AttributeError):
                raise InvalidInput(f"expires_at {self.expires_at!r} is not a timestamp (YYYY-MM-DDTHH:MM[:SS][Z|+01:00])",
                                   field="expires_at") from None
        if self.unit_cost is not None and (isinstance(self.unit_cost, bool) or not isinstance(self.unit_cost, int)
                                           or self.unit_cost < 0):
            raise InvalidInput(f"unit_cost must be a non-negative whole number of minor units, not {self.unit_cost!r}",
                               field="unit_cost")
        for name in ("reason", "note", "ref_type", "ref_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > 500):
                raise InvalidInput(f"{name} must be text of at most 500 characters", field=name)
        return self


MOVE_FIELDS = tuple(f.name for f in fields(Move))


def _require_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required", field=name)


def digest(moves: list[Move]) -> str:
    """A stable fingerprint of a request, to tell a retry (same op_id, same request) from a reused key.

    Field values are str, int, bool or None, whose repr is stable; `asdict` + JSON cost a third of a post.
    """
    canonical = repr([tuple(getattr(m, name) for name in MOVE_FIELDS) for m in moves])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class MovementRecord:
    """A committed movement as callers see it: ids resolved to SKU and location codes."""

    id: int
    origin: str
    epoch: int
    seq: int
    op_id: str | None
    kind: str
    sku: str
    location: str
    to_location: str | None
    lot: str
    expiry: str | None
    d_on_hand: int
    d_reserved: int
    d_in_transit: int
    unit_cost: int | None
    ref_type: str | None
    ref_id: str | None
    reverses_id: int | None
    reason: str | None
    note: str | None
    user: str | None
    device: str | None
    ts: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_FIELDS = tuple(f.name for f in fields(MovementRecord))


@dataclass
class PostResult:
    movements: list[MovementRecord] = field(default_factory=list)
    replayed: bool = False   # True when the op_id was seen before and nothing new was written

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.movements]
