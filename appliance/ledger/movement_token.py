"""The signed form of a movement: the body every site stores and re-serves byte for byte (DESIGN.md §3).

The body is compact JSON with the fields of `BODY_FIELDS` in that order. It names things by what is the same
on every box (SKU, location code, the global id `ORIGIN:EPOCH:SEQ` of a reversed movement) rather than by
row ids, and carries `prev`, the hash of the origin's previous token, so each origin's log is a hash chain.
The origin signs it once, in the posting transaction (`Signer`); receivers verify and parse it
(`parse_body`), which is strict because a body, though signed, comes off the network.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from appliance.ledger.requests import ALL_KINDS, MAX_QTY
from appliance.ledger.sites import LOCATION_CODE, LOGIN, SITE_ID
from appliance.sync.identity import SigningKey
from appliance.sync.tokens import header_for, sign, token_hash

BODY_VERSION = 1


class Body(NamedTuple):
    v: int
    origin: str
    epoch: int
    seq: int
    prev: str
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
    reverses: str | None     # global id ORIGIN:EPOCH:SEQ of the reversed movement
    reason: str | None
    note: str | None
    user: str | None
    device: str | None
    op_id: str | None
    ts: str

    @property
    def global_id(self) -> str:
        return f"{self.origin}:{self.epoch}:{self.seq}"


BODY_FIELDS = Body._fields


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_body(body: Body) -> bytes:
    return _ENCODER.encode(dict(zip(BODY_FIELDS, body))).encode()


class Signer:
    """Signs movement bodies with this site's key; the JWS header is the same for every token of a key."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.site = key.site
        self._header = header_for(key.kid)

    def sign(self, body: Body) -> tuple[str, str]:
        """(token, hash) of a body."""
        token = sign(encode_body(body), self.key, self._header)
        return token, token_hash(token)


class BadBody(ValueError):
    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        super().__init__(f"movement body field {field!r} {reason} (got {value!r:.80})")
        self.field = field


GLOBAL_ID = re.compile(r"([A-Z][A-Z0-9]{1,7}):([1-9][0-9]{0,17}):([1-9][0-9]{0,17})")
_HASH = re.compile(r"(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])?")
_SKU = re.compile(r"[A-Za-z0-9._/-]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_INT64 = 2**63 - 1


def _int(low: int, high: int):
    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return check, f"must be an integer in {low}..{high}"


def _text(pattern: re.Pattern | None = None, *, max_len: int = 500, nullable: bool = True):
    def check(value: Any) -> bool:
        if value is None:
            return nullable
        if not isinstance(value, str) or len(value) > max_len:
            return False
        return pattern.fullmatch(value) is not None if pattern else value.isprintable()
    return check, f"must be {'null or ' if nullable else ''}text" + (
        f" matching {pattern.pattern}" if pattern else f" of at most {max_len} printable characters")


_DELTA = _int(-MAX_QTY, MAX_QTY)
_RULES = {
    "v": (lambda value: value == BODY_VERSION, f"must be {BODY_VERSION}"),
    "origin": _text(SITE_ID, nullable=False),
    "epoch": _int(1, _INT64),
    "seq": _int(1, _INT64),
    "prev": _text(_HASH, nullable=False),
    "kind": (lambda value: value in ALL_KINDS, f"must be one of {', '.join(ALL_KINDS)}"),
    "sku": _text(_SKU, nullable=False),
    "location": _text(LOCATION_CODE, nullable=False),
    "to_location": _text(LOCATION_CODE),
    "lot": _text(max_len=64, nullable=False),
    "expiry": _text(_DATE),
    "d_on_hand": _DELTA,
    "d_reserved": _DELTA,
    "d_in_transit": _DELTA,
    "unit_cost": (lambda value: value is None or _int(0, _INT64)[0](value), "must be null or an integer >= 0"),
    "ref_type": _text(max_len=64),
    "ref_id": _text(max_len=128),
    "reverses": _text(GLOBAL_ID),
    "reason": _text(),
    "note": _text(max_len=2000),
    "user": _text(LOGIN),
    "device": _text(max_len=128),
    "op_id": _text(max_len=128),
    "ts": _text(_TS, nullable=False),
}
assert tuple(_RULES) == BODY_FIELDS


def parse_body(raw: bytes) -> Body:
    """The body of a verified token, every field checked; raises BadBody naming the first bad field."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody("body", f"is not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadBody("body", "must be a JSON object", obj)
    if list(obj) != list(BODY_FIELDS):
        unknown = [k for k in obj if k not in BODY_FIELDS]
        missing = [k for k in BODY_FIELDS if k not in obj]
        raise BadBody("body", f"must have exactly the fields {', '.join(BODY_FIELDS)} in order "
                              f"(unknown: {unknown}, missing: {missing})")
    for name, (check, rule) in _RULES.items():
        if not check(obj[name]):
            raise BadBody(name, rule, obj[name])
    if obj["seq"] == 1 and obj["epoch"] == 1 and obj["prev"]:
        raise BadBody("prev", "must be '' for the first movement of a site", obj["prev"])
    if obj["seq"] > 1 and not obj["prev"]:
        raise BadBody("prev", "must be the hash of the previous movement", obj["prev"])
    return Body(*obj.values())
