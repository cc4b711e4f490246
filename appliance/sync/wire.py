"""Records and messages on the wire: checked frozen dataclasses, JSON encoding, strict decoding (DESIGN.md §3).

A payload is a JSON object `{"type": <name>, "v": <version>, <the fields in declaration order>}`, UTF-8.
Decoding is strict and total, because payloads come off the network: anything malformed raises
`BadMessage` naming the field, the value and the reason, and no other exception escapes. Unknown fields
are refused rather than ignored, since a field this build does not understand may change what the others
mean: a new field is a new `v`. Every field is always written (None as null), so a payload has one shape.

`decode` knows the message classes registered in MESSAGES, which each fills as it is defined: the messages
themselves are in messages.py, so it is importing that module which makes them decodable.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Self

from appliance.sync.checked import BadMessage, Check, Epoch, Hash, Seq, hash_matches_seq
from appliance.sync.topics import KINDS, SITE_ID, SITE_ID_RULE, Kind

_MISSING: Any = object()


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


@dataclasses.dataclass(frozen=True)
class Mark(Record):
    """How far a site has applied one origin's log, contiguously: its last (epoch, seq) and that token's hash."""

    epoch: Epoch
    seq: Seq
    hash: Hash

    def check_together(self) -> None:
        hash_matches_seq(self.seq, self.hash)


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


# A checked type like those in checked.py, but it lives here because its check builds Mark records.
Marks = Annotated[Mapping[str, Mark], _marks]

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


# --- JSON loading ------------------------------------------------------------------------------------------


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
