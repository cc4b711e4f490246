"""Typed sync messages: one frozen dataclass per message, compact JSON on the wire (DESIGN.md §3).

Adding a message is one class: subclass `Message`, give it a `name` (stable: it is on the wire), the
`topic_kind` that carries it, and fields annotated with checked types (checked.py, or `Marks` from wire.py).
Registration, encoding, decoding (wire.py) and validation (also when a message is built in code) follow.

Movement tokens inside `MovementBatch` and `FillResponse` are opaque here; tokens.py verifies and opens them.
The names callers use from checked.py and wire.py are re-exported, so this module stays the one to import.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from appliance.sync.checked import (INT64_MAX, MAX_ITEMS, MAX_TOKEN, MAX_TTL_S, RELEASE_STATUSES, RESERVE_STATUSES,
                                    STATES, BadMessage, Check, Epoch, Flag, Hash, IdemKey, Location, MaybeCount,
                                    MaybeId, MaybeReason, MaybeTimestamp, MaybeTokens, Qty, ReleaseStatus, ReqId,
                                    ReserveStatus, Seq, SiteId, Sku, State, Timestamp, Tokens, TtlS,
                                    hash_matches_seq, integer)
from appliance.sync.wire import MESSAGES, Mark, Marks, Message, Record, decode

__all__ = [
    # Re-exported from checked.py and wire.py: callers import them from here.
    "INT64_MAX", "MAX_ITEMS", "MAX_TOKEN", "MAX_TTL_S", "RELEASE_STATUSES", "RESERVE_STATUSES", "STATES", "BadMessage", "Check",
    "Epoch", "Flag", "Hash", "IdemKey", "Location", "MaybeCount", "MaybeId", "MaybeReason", "MaybeTimestamp",
    "MaybeTokens", "Marks", "Qty", "ReleaseStatus", "ReqId", "ReserveStatus", "Seq", "SiteId", "Sku", "State", "Timestamp",
    "Tokens", "TtlS", "MESSAGES", "Mark", "Message", "Record", "decode",
    # Defined here.
    "MovementBatch", "Head", "HighWaterMarks", "Status", "FillRequest", "FillResponse", "ReserveRequest",
    "ReserveResponse", "ReleaseRequest", "ReleaseResponse",
]


@dataclasses.dataclass(frozen=True)
class MovementBatch(Message):
    """Signed movement tokens from `origin`, in seq order: the live tail push on wh/v1/{origin}/mv."""

    name = "mv"
    topic_kind = "mv"
    origin: SiteId
    epoch: Epoch
    items: Tokens


@dataclasses.dataclass(frozen=True)
class Head(Message):
    """The origin's last movement (retained): receivers compare it with what they hold to find tail gaps."""

    name = "head"
    topic_kind = "head"
    origin: SiteId
    epoch: Epoch
    seq: Seq
    hash: Hash    # token_hash of movement `seq`; "" when seq is 0
    ts: Timestamp

    def check_together(self) -> None:
        hash_matches_seq(self.seq, self.hash)


@dataclasses.dataclass(frozen=True)
class HighWaterMarks(Message):
    """What `site` has applied, contiguously, from each origin (retained): who can fill whose gaps."""

    name = "hwm"
    topic_kind = "hwm"
    site: SiteId
    have: Marks


@dataclasses.dataclass(frozen=True)
class Status(Message):
    """Advisory presence (retained; the broker publishes `offline` as the last will)."""

    name = "status"
    topic_kind = "status"
    site: SiteId
    state: State


@dataclasses.dataclass(frozen=True)
class FillRequest(Message):
    """Ask a peer for movements first..last of origin's epoch; any site holding them may answer."""

    name = "fill"
    topic_kind = "req"
    req_id: ReqId
    origin: SiteId
    epoch: Epoch
    first: Annotated[int, integer(1, INT64_MAX)]
    last: Annotated[int, integer(1, INT64_MAX)]

    def check_together(self) -> None:
        if self.last < self.first:
            raise BadMessage("last", f"must be >= first ({self.first})", self.last)
        if self.last - self.first >= MAX_ITEMS:
            raise BadMessage("last", f"must be < first + {MAX_ITEMS} ({self.first + MAX_ITEMS})", self.last)


@dataclasses.dataclass(frozen=True)
class FillResponse(Message):
    """The stored tokens of a fill, in seq order; `more` when the responder holds movements past the chunk."""

    name = "fill_response"
    topic_kind = "resp"
    req_id: ReqId
    origin: SiteId
    epoch: Epoch
    items: MaybeTokens    # empty: the responder holds none of the range
    more: Flag

    def check_together(self) -> None:
        if self.more and not self.items:
            # The requester would ask again from the same place, forever.
            raise BadMessage("more", "must be false when items is empty", self.more)


@dataclasses.dataclass(frozen=True)
class ReserveRequest(Message):
    """Ask the owner of `location` to hold qty of sku; a retry keeps idem_key and gets a fresh req_id."""

    name = "reserve"
    topic_kind = "req"
    req_id: ReqId
    idem_key: IdemKey
    sku: Sku
    location: Location
    qty: Qty
    ttl_s: TtlS


@dataclasses.dataclass(frozen=True)
class ReserveResponse(Message):
    """The owner's answer. HELD carries the reservation; UNKNOWN means the owner could not decide yet."""

    name = "reserve_response"
    topic_kind = "resp"
    req_id: ReqId
    idem_key: IdemKey
    status: ReserveStatus
    reservation_id: MaybeId = None
    available: MaybeCount = None        # stock available to hold, when the owner says why it refused
    expires_at: MaybeTimestamp = None   # on the owner's clock
    reason: MaybeReason = None

    def check_together(self) -> None:
        held = self.status == "HELD"
        for name in ("reservation_id", "expires_at"):
            value = getattr(self, name)
            if held and value is None:
                raise BadMessage(name, "is required when status is HELD", value)
            if not held and value is not None:
                raise BadMessage(name, f"must be null when status is {self.status}", value)


@dataclasses.dataclass(frozen=True)
class ReleaseRequest(Message):
    """Release the hold made under idem_key; idempotent at the owner."""

    name = "release"
    topic_kind = "req"
    req_id: ReqId
    idem_key: IdemKey


@dataclasses.dataclass(frozen=True)
class ReleaseResponse(Message):
    """The owner's answer to a release. NOT_HELD: nothing was held under idem_key any more (never reserved,
    already released, consumed or expired); a retried release gets RELEASED again, not NOT_HELD."""

    name = "release_response"
    topic_kind = "resp"
    req_id: ReqId
    idem_key: IdemKey
    status: ReleaseStatus
    reason: MaybeReason = None
