"""Typed sync messages: one frozen dataclass per message, compact JSON on the wire (DESIGN.md §3).

A payload is a JSON object `{"type": <name>, "v": <version>, <the fields in declaration order>}`, UTF-8.
Decoding is strict and total, because payloads come off the network: anything malformed raises
`BadMessage` naming the field, the value and the reason, and no other exception escapes. Unknown fields
are refused rather than ignored, since a field this build does not understand may change what the others
mean: a new field is a new `v`. Every field is always written (None as null), so a payload has one shape.

Adding a message is one class: subclass `Message`, give it a `name` (stable: it is on the wire), the
`topic_kind` that carries it, and fields annotated with one of the checked types below. Registration, encoding,
decoding and validation (also when a message is built in code) follow from that.

Movement tokens inside `MovementBatch` and `FillResponse` are opaque here; tokens.py verifies and opens them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Self

from appliance.clock import TS_FORMAT
from appliance.ledger.requests import MAX_QTY
from appliance.sync.topics import KINDS, SITE_ID, SITE_ID_RULE, Kind

INT64_MAX = 2**63 - 1      # SQLite INTEGER: a larger number would only fail later, at the insert
MAX_ITEMS = 500            # one fill chunk (sync-research §2.1); no batch carries more than a fill may ask for
MAX_TOKEN = 16_384         # the same bound as tokens.MAX_TOKEN; a movement token is well under 1 KiB
MAX_TTL_S = 7 * 24 * 3600  # the owner keeps reservation rows 7 days: a hold must not outlive its idempotency record
STATES = ("online", "offline", "recovering")
RESERVE_STATUSES = ("HELD", "REJECTED", "UNKNOWN")

_MISSING: Any = object()


class BadMessage(ValueError):
    """A payload that is not a valid message. `field` is a path such as `seq`, `items[3]` or `have.BER.hash`."""

    def __init__(self, field: str, reason: str, value: Any = _MISSING) -> None:
        got = "" if value is _MISSING else f" (got {_show(value)})"
        super().__init__(f"{field}: {reason}{got}")
        self.field = field
        self.reason = reason
        self.value = None if value is _MISSING else value

    def under(self, prefix: str) -> "BadMessage":
        """The same error seen from the enclosing object (`seq` inside `have.BER` is `have.BER.seq`)."""
        return BadMessage(prefix + self.field, self.reason, self.value)


def _show(value: Any) -> str:
    # Values come from the network: keep a 2 MB string out of the log line.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- Checked types -----------------------------------------------------------------------------------------
# A check takes (value, field path) and returns the value, normalised (list -> tuple, dict -> Mark), or
# raises BadMessage. It runs on decoded JSON and on values given in code alike.

Check = Callable[[Any, str], Any]


def _integer(low: int, high: int) -> Check:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):   # JSON true is not 1
            raise BadMessage(path, "must be an integer", value)
        if value < low:
            raise BadMessage(path, f"must be >= {low}", value)
        if value > high:
            raise BadMessage(path, f"must be <= {high}", value)
        return value
    return check


def _pattern(regex: str | re.Pattern[str], rule: str) -> Check:
    compiled = re.compile(regex)

    def check(value: Any, path: str) -> str:
        # fullmatch: `$` would let a trailing newline through.
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise BadMessage(path, rule, value)
        return value
    return check


def _printable(max_len: int) -> Check:
    def check(value: Any, path: str) -> str:
        # isprintable() refuses control characters and lone surrogates (which could not be encoded back).
        if not isinstance(value, str) or not 1 <= len(value) <= max_len or not value.isprintable():
            raise BadMessage(path, f"must be 1-{max_len} printable characters", value)
        return value
    return check


def _timestamp(value: Any, path: str) -> str:
    rule = "must be a UTC timestamp like 2026-11-22T10:15:03.120000Z (the ledger's format)"
    if not isinstance(value, str) or not _TS_SHAPE.fullmatch(value):
        raise BadMessage(path, rule, value)
    try:
        datetime.strptime(value, TS_FORMAT)
    except ValueError:
        raise BadMessage(path, rule, value) from None
    return value


_TS_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _one_of(*choices: str) -> Check:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise BadMessage(path, f"must be one of {', '.join(choices)}", value)
        return value
    return check


def _boolean(value: Any, path: str) -> bool:
    if value is not True and value is not False:
        raise BadMessage(path, "must be true or false", value)
    return value


def _optional(check: Check) -> Check:
    def optional(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)
    return optional


_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def _tokens(min_items: int) -> Check:
    def check(value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)):
            raise BadMessage(path, "must be an array of tokens", value)
        if not min_items <= len(value) <= MAX_ITEMS:
            raise BadMessage(path, f"must hold {min_items}-{MAX_ITEMS} tokens, not {len(value)}", value)
        for i, token in enumerate(value):
            if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN or not _TOKEN.fullmatch(token):
                raise BadMessage(f"{path}[{i}]", f"must be a token: 1-{MAX_TOKEN} characters of A-Za-z0-9_.-",
                                 token)
        return tuple(value)
    return check


def _marks(value: Any, path: str) -> Mapping[str, Mark]:
    if not isinstance(value, Mapping):
        raise BadMessage(path, "must be an object of origin -> {epoch, seq, hash}", value)
    for origin in value:
        if not isinstance(origin, str) or not SITE_ID.fullmatch(origin):
            raise BadMessage(path, f"origin key is not a site id ({SITE_ID_RULE})", origin)
    marks = {}
    for origin in sorted(value):   # sorted: the same marks always encode to the same bytes
        mark = value[origin]
        marks[origin] = mark if isinstance(mark, Mark) else _build(Mark, mark, f"{path}.{origin}")
    return MappingProxyType(marks)   # frozen all the way down


SiteId = Annotated[str, _pattern(SITE_ID, f"must be a site id ({SITE_ID_RULE})")]
Epoch = Annotated[int, _integer(1, INT64_MAX)]          # epochs start at 1 (the ledger's meta default)
Seq = Annotated[int, _integer(0, INT64_MAX)]            # 0: nothing written yet
# Unpadded base64url of a SHA-256 (tokens.token_hash): 43 characters, the last carrying 2 padding bits that
# must be zero, so each hash has exactly one spelling. "" stands for "no movement yet" (seq 0).
Hash = Annotated[str, _pattern(r"(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])?",
                               "must be '' or an unpadded base64url SHA-256 (43 characters)")]
Timestamp = Annotated[str, _timestamp]
Tokens = Annotated[tuple[str, ...], _tokens(min_items=1)]
MaybeTokens = Annotated[tuple[str, ...], _tokens(min_items=0)]
Marks = Annotated[Mapping[str, "Mark"], _marks]
ReqId = Annotated[str, _pattern(r"[A-Za-z0-9_.:-]{1,64}", "must be 1-64 characters of A-Za-z0-9_.:-")]
IdemKey = Annotated[str, _printable(128)]               # the ledger's op_id rule: it becomes the hold's op_id
Sku = Annotated[str, _pattern(r"[A-Za-z0-9._/-]+", "must be a SKU (A-Za-z0-9._/-)")]   # catalog/csv_rows.SKU
Location = Annotated[str, _pattern(r"[A-Z0-9][A-Z0-9.-]{0,39}",                   # ledger/sites.LOCATION_CODE
                                   "must be a location code (1-40 of A-Z0-9.- starting with A-Z0-9)")]
Qty = Annotated[int, _integer(1, MAX_QTY)]
TtlS = Annotated[int, _integer(1, MAX_TTL_S)]
State = Annotated[str, _one_of(*STATES)]
ReserveStatus = Annotated[str, _one_of(*RESERVE_STATUSES)]
Flag = Annotated[bool, _boolean]
MaybeId = Annotated[int | None, _optional(_integer(1, INT64_MAX))]
# Stock a hold was refused against; signed, since a discrepancy may have driven it below zero.
MaybeCount = Annotated[int | None, _optional(_integer(-INT64_MAX, INT64_MAX))]
MaybeTimestamp = Annotated[str | None, _optional(_timestamp)]
MaybeReason = Annotated[str | None, _optional(_printable(500))]


# --- Records and messages ------------------------------------------------------------------------------


@functools.cache
def _checks(cls: type) -> tuple[tuple[str, Check], ...]:
    """(field, check) pairs of a record, read once from its Annotated field types."""
    hints = typing.get_type_hints(cls, include_extras=True)
    pairs = []
    for f in dataclasses.fields(cls):
        if f.name == "v":
            continue   # checked by Message against the class's versions
        checks = [m for m in getattr(hints[f.name], "__metadata__", ()) if callable(m)]
        if len(checks) != 1:
            raise TypeError(f"{cls.__name__}.{f.name} needs a checked type such as SiteId or Seq")
        pairs.append((f.name, checks[0]))
    return tuple(pairs)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _build(cls: type[R], obj: Any, path: str, **given: Any) -> R:
    """Construct `cls` from a decoded JSON object; errors name the field under `path`."""
    prefix = f"{path}." if path else ""
    if not isinstance(obj, dict):
        raise BadMessage(path or "payload", "must be a JSON object", obj)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in given]
    for key in obj:
        if key not in names:
            raise BadMessage(prefix + key, "unknown field", obj[key])
    for name in names:
        if name not in obj:
            raise BadMessage(prefix + name, "missing")
    try:
        return cls(**{name: obj[name] for name in names}, **given)
    except BadMessage as exc:
        raise exc.under(prefix) from None


@dataclasses.dataclass(frozen=True)
class Record:
    """A frozen dataclass whose fields are checked on construction, from JSON or from code."""

    def __post_init__(self) -> None:
        for name, check in _checks(type(self)):
            value = getattr(self, name)
            normal = check(value, name)
            if normal is not value:
                object.__setattr__(self, name, normal)
        self.check_together()

    def check_together(self) -> None:
        """Rules across fields; each field is already valid on its own."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


R = typing.TypeVar("R", bound=Record)


def _hash_matches_seq(seq: int, hash: str) -> None:
    if seq == 0 and hash:
        raise BadMessage("hash", "must be '' when seq is 0", hash)
    if seq > 0 and not hash:
        raise BadMessage("hash", "must be the hash of movement `seq` when seq > 0", hash)


@dataclasses.dataclass(frozen=True)
class Mark(Record):
    """How far a site has applied one origin's log, contiguously: its last (epoch, seq) and that token's hash."""

    epoch: Epoch
    seq: Seq
    hash: Hash

    def check_together(self) -> None:
        _hash_matches_seq(self.seq, self.hash)


MESSAGES: dict[str, type[Message]] = {}   # name -> class, filled as each Message subclass is defined


@dataclasses.dataclass(frozen=True)
class Message(Record):
    name: ClassVar[str]
    topic_kind: ClassVar[Kind]                  # the topic kind that carries it (topics.parse(...).kind)
    versions: ClassVar[tuple[int, ...]] = (1,)  # versions this build reads and writes
    v: int = dataclasses.field(default=1, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or cls.__dict__.get("topic_kind") not in KINDS:
            raise TypeError(f"{cls.__name__} needs a `name` and a `topic_kind` in {KINDS}")
        if name in MESSAGES:
            raise TypeError(f"message name {name!r} is taken by {MESSAGES[name].__name__}")
        MESSAGES[name] = cls

    def __post_init__(self) -> None:
        self._check_version(self.v)
        super().__post_init__()

    @classmethod
    def _check_version(cls, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v not in cls.versions:
            readable = ", ".join(f"v{n}" for n in cls.versions)
            raise BadMessage("v", f"unsupported version; this site reads {cls.name} {readable}", v)

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        return {"type": self.name, "v": body.pop("v"), **body}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode a payload that must be this message; `decode` accepts any."""
        if cls is Message:
            return decode(data)  # type: ignore[return-value]  # any message is a Message
        obj = _load(data)
        found = obj.get("type", _MISSING)
        if found is _MISSING:
            raise BadMessage("type", "missing")
        if found != cls.name:
            raise BadMessage("type", f"must be {cls.name!r}", found)
        return cls._from_json(obj)

    @classmethod
    def _from_json(cls, obj: dict[str, Any]) -> Self:
        if "v" not in obj:
            raise BadMessage("v", "missing")
        cls._check_version(obj["v"])   # first: a newer version's fields are not "unknown fields"
        body = {key: value for key, value in obj.items() if key not in ("type", "v")}
        return _build(cls, body, "", v=obj["v"])


def decode(data: bytes, *, kind: Kind | None = None) -> Message:
    """The message in a payload, whatever its type; with `kind`, it must be one carried on that topic kind."""
    obj = _load(data)
    name = obj.get("type", _MISSING)
    if name is _MISSING:
        raise BadMessage("type", "missing")
    if not isinstance(name, str) or name not in MESSAGES:
        raise BadMessage("type", f"unknown message type; one of {', '.join(MESSAGES)}", name)
    cls = MESSAGES[name]
    if kind is not None and cls.topic_kind != kind:
        raise BadMessage("type", f"is not carried on {kind} topics", name)
    return cls._from_json(obj)


def _load(data: bytes) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a payload is bytes, not {type(data).__name__}")   # a caller's bug, not bad input
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessage("payload", f"not UTF-8 ({exc.reason} at byte {exc.start})", raw) from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except BadMessage:
        raise
    except (ValueError, RecursionError) as exc:   # RecursionError: "[[[[..." nested thousands deep
        raise BadMessage("payload", f"not JSON ({exc})", raw) from None
    if not isinstance(obj, dict):
        raise BadMessage("payload", "must be a JSON object", obj)
    return obj


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would keep the last of two equal keys; another reader may keep the first.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BadMessage(key, "duplicate key", value)
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise BadMessage("payload", "NaN and Infinity are not JSON numbers", name)


# --- The messages ------------------------------------------------------------------------------------------


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
        _hash_matches_seq(self.seq, self.hash)


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
    first: Annotated[int, _integer(1, INT64_MAX)]
    last: Annotated[int, _integer(1, INT64_MAX)]

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
