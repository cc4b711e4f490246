"""Checked field types for sync messages, and `BadMessage`, the one error a malformed payload raises.

A check takes (value, field path) and returns the value, normalised (list -> tuple), or raises BadMessage.
It runs on decoded JSON and on values given in code alike. A field type is `Annotated[<type>, <check>]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from appliance.clock import TS_FORMAT
from appliance.ledger.requests import MAX_QTY
from appliance.sync.topics import SITE_ID, SITE_ID_RULE

INT64_MAX = 2**63 - 1      # SQLite INTEGER: a larger number would only fail later, at the insert
MAX_ITEMS = 500            # one fill chunk (sync-research §2.1); no batch carries more than a fill may ask for
MAX_TOKEN = 16_384         # the same bound as tokens.MAX_TOKEN; a movement token is well under 1 KiB
MAX_TTL_S = 7 * 24 * 3600  # the owner keeps reservation rows 7 days: a hold must not outlive its idempotency record
STATES = ("online", "offline", "recovering")
RESERVE_STATUSES = ("HELD", "REJECTED", "UNKNOWN")
RELEASE_STATUSES = ("RELEASED", "NOT_HELD")

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


Check = Callable[[Any, str], Any]


def integer(low: int, high: int) -> Check:
    """An int in low..high; public so a message can declare a one-off range (`Annotated[int, integer(1, 9)]`)."""
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


# Marks (origin -> Mark) is in wire.py: its check builds Mark records, which need the Record machinery.
SiteId = Annotated[str, _pattern(SITE_ID, f"must be a site id ({SITE_ID_RULE})")]
Epoch = Annotated[int, integer(1, INT64_MAX)]           # epochs start at 1 (the ledger's meta default)
Seq = Annotated[int, integer(0, INT64_MAX)]             # 0: nothing written yet
# Unpadded base64url of a SHA-256 (tokens.token_hash): 43 characters, the last carrying 2 padding bits that
# must be zero, so each hash has exactly one spelling. "" stands for "no movement yet" (seq 0).
Hash = Annotated[str, _pattern(r"(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])?",
                               "must be '' or an unpadded base64url SHA-256 (43 characters)")]
Timestamp = Annotated[str, _timestamp]
Tokens = Annotated[tuple[str, ...], _tokens(min_items=1)]
MaybeTokens = Annotated[tuple[str, ...], _tokens(min_items=0)]
ReqId = Annotated[str, _pattern(r"[A-Za-z0-9_.:-]{1,64}", "must be 1-64 characters of A-Za-z0-9_.:-")]
IdemKey = Annotated[str, _printable(128)]               # the ledger's op_id rule: it becomes the hold's op_id
Sku = Annotated[str, _pattern(r"[A-Za-z0-9._/-]+", "must be a SKU (A-Za-z0-9._/-)")]   # catalog/csv_rows.SKU
Location = Annotated[str, _pattern(r"[A-Z0-9][A-Z0-9.-]{0,39}",                   # ledger/sites.LOCATION_CODE
                                   "must be a location code (1-40 of A-Z0-9.- starting with A-Z0-9)")]
Qty = Annotated[int, integer(1, MAX_QTY)]
TtlS = Annotated[int, integer(1, MAX_TTL_S)]
State = Annotated[str, _one_of(*STATES)]
ReserveStatus = Annotated[str, _one_of(*RESERVE_STATUSES)]
ReleaseStatus = Annotated[str, _one_of(*RELEASE_STATUSES)]
Flag = Annotated[bool, _boolean]
MaybeId = Annotated[int | None, _optional(integer(1, INT64_MAX))]
# Stock a hold was refused against; signed, since a discrepancy may have driven it below zero.
MaybeCount = Annotated[int | None, _optional(integer(-INT64_MAX, INT64_MAX))]
MaybeTimestamp = Annotated[str | None, _optional(_timestamp)]
MaybeReason = Annotated[str | None, _optional(_printable(500))]


def hash_matches_seq(seq: int, hash: str) -> None:
    """The rule across (seq, hash) shared by Mark and Head: a hash exactly when there is a movement `seq`."""
    if seq == 0 and hash:
        raise BadMessage("hash", "must be '' when seq is 0", hash)
    if seq > 0 and not hash:
        raise BadMessage("hash", "must be the hash of movement `seq` when seq > 0", hash)
