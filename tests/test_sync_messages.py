"""Typed sync messages (DESIGN.md §3, sync-research §6): every message round-trips through bytes, the wire
form is pinned, and a malformed payload raises BadMessage naming the field, never anything else."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from appliance.ledger import sites
from appliance.sync import identity, messages, tokens
from appliance.sync.messages import (MESSAGES, BadMessage, FillRequest, FillResponse, Head, HighWaterMarks, Mark,
                                     Message, MovementBatch, ReleaseRequest, ReleaseResponse, ReserveRequest, ReserveResponse,
                                     SiteId, Status, decode)

TS = "2026-11-22T10:15:03.120000Z"
HASH = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"   # b64u(sha256(b""))
HASH2 = "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ"  # b64u(sha256(b"hello"))
TOKEN = "eyJhbGciOiJFZERTQSIsImtpZCI6IkJFUiMxIn0.eyJ2IjoxfQ.c2ln"
TOKEN2 = "eyJhbGciOiJFZERTQSIsImtpZCI6IkJFUiMxIn0.eyJ2IjoyfQ.c2ln"

EXAMPLES = [
    MovementBatch("BER", 3, (TOKEN, TOKEN2)),
    MovementBatch("BER", 1, (TOKEN,) * messages.MAX_ITEMS),
    Head("BER", 3, 1042, HASH, TS),
    Head("WAW", 1, 0, "", TS),
    HighWaterMarks("WAW", {"BER": Mark(3, 1042, HASH), "PAR": Mark(1, 0, "")}),
    HighWaterMarks("PAR", {}),
    Status("BER", "online"),
    Status("BER", "offline"),
    Status("BER", "recovering"),
    FillRequest("r-0001", "BER", 3, 1, 500),
    FillRequest("BER:17", "BER", 3, 1042, 1042),
    FillResponse("r-0001", "BER", 3, (TOKEN, TOKEN2), True),
    FillResponse("r-0002", "BER", 3, (), False),
    ReserveRequest("r-0003", "shopify:5551234:1", "DOG-5", "WAW-A-01", 2, 900),
    ReserveResponse("r-0003", "shopify:5551234:1", "HELD", 88, 10, "2026-11-22T10:30:03.120000Z"),
    ReserveResponse("r-0004", "shopify:5551234:1", "REJECTED", None, 1, None, "nur 1 verfügbar – Żółw"),
    ReserveResponse("r-0005", "shopify:5551234:1", "UNKNOWN", None, None, None, None),
    ReleaseRequest("r-0006", "shopify:5551234:1"),
    ReleaseResponse("r-0006", "shopify:5551234:1", "RELEASED"),
]


def _id(message: Message) -> str:
    return type(message).__name__


@pytest.mark.parametrize("message", EXAMPLES, ids=_id)
def test_every_message_round_trips_through_bytes(message):
    data = message.to_bytes()
    assert decode(data) == message
    assert type(message).from_bytes(data) == message
    assert Message.from_bytes(data) == message
    assert decode(data, kind=message.topic_kind) == message
    assert decode(data).to_bytes() == data   # one message, one spelling
    body = json.loads(data)
    assert list(body)[:2] == ["type", "v"] and body["type"] == message.name and body["v"] == 1
    assert list(body)[2:] == [f.name for f in dataclasses.fields(message) if f.name != "v"]
    assert data == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()   # compact, UTF-8


def test_every_message_class_has_an_example():
    assert {type(m) for m in EXAMPLES} == set(MESSAGES.values())
    assert set(MESSAGES) == {"mv", "head", "hwm", "status", "fill", "fill_response", "reserve",
                             "reserve_response", "release", "release_response"}


@pytest.mark.parametrize("message, wire", [
    (Status("BER", "online"), b'{"type":"status","v":1,"site":"BER","state":"online"}'),
    (Head("BER", 3, 1042, HASH, TS),
     b'{"type":"head","v":1,"origin":"BER","epoch":3,"seq":1042,"hash":"' + HASH.encode() + b'","ts":"' + TS.encode()
     + b'"}'),
    (HighWaterMarks("WAW", {"PAR": Mark(1, 0, ""), "BER": Mark(3, 7, HASH)}),
     b'{"type":"hwm","v":1,"site":"WAW","have":{"BER":{"epoch":3,"seq":7,"hash":"' + HASH.encode()
     + b'"},"PAR":{"epoch":1,"seq":0,"hash":""}}}'),
    (FillResponse("r1", "BER", 3, (TOKEN,), False),
     b'{"type":"fill_response","v":1,"req_id":"r1","origin":"BER","epoch":3,"items":["' + TOKEN.encode()
     + b'"],"more":false}'),
    (ReserveResponse("r2", "k", "REJECTED", available=0, reason="leer – Żółw"),
     b'{"type":"reserve_response","v":1,"req_id":"r2","idem_key":"k","status":"REJECTED","reservation_id":null,'
     b'"available":0,"expires_at":null,"reason":"' + "leer – Żółw".encode() + b'"}'),
])
def test_the_wire_form_is_pinned(message, wire):
    # Names, field order and spelling are a contract with every other site's build: change them with a new v.
    assert message.to_bytes() == wire


def test_values_given_in_code_are_normalised_and_frozen():
    batch = MovementBatch("BER", 1, [TOKEN])   # a list becomes a tuple
    assert batch.items == (TOKEN,) and batch == MovementBatch("BER", 1, (TOKEN,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.epoch = 2   # type: ignore[misc]
    marks = HighWaterMarks("WAW", {"PAR": {"epoch": 1, "seq": 0, "hash": ""}, "BER": Mark(1, 1, HASH)})
    assert list(marks.have) == ["BER", "PAR"] and marks.have["PAR"] == Mark(1, 0, "")
    with pytest.raises(TypeError):
        marks.have["AMS"] = Mark(1, 0, "")   # type: ignore[index]
    assert dataclasses.replace(marks, site="PAR") == HighWaterMarks("PAR", marks.have)


@pytest.mark.parametrize("build, field, reason", [
    (lambda: Head("BER", 1, -1, "", TS), "seq", "must be >= 0"),
    (lambda: Head("BER", 1, 1, "", TS), "hash", "when seq > 0"),
    (lambda: Head("BER", 1, 1, HASH, TS, v=2), "v", "unsupported version"),
    (lambda: MovementBatch("BER", 1, ()), "items", "must hold 1-500 tokens, not 0"),
    (lambda: MovementBatch("BER", True, (TOKEN,)), "epoch", "must be an integer"),
    (lambda: HighWaterMarks("WAW", {"BER": Mark(1, 0, "")} | {"ber": Mark(1, 0, "")}), "have", "not a site id"),
    (lambda: HighWaterMarks("WAW", {"BER": {"epoch": 1, "seq": 2, "hash": ""}}), "have.BER.hash", "when seq > 0"),
    (lambda: Mark(0, 0, ""), "epoch", "must be >= 1"),
    (lambda: FillRequest("r", "BER", 1, 10, 9), "last", "must be >= first"),
    (lambda: ReserveResponse("r", "k", "HELD"), "reservation_id", "required when status is HELD"),
])
def test_messages_built_in_code_are_checked_too(build, field, reason):
    with pytest.raises(BadMessage) as caught:
        build()
    assert caught.value.field == field and reason in caught.value.reason


def _wire(message: Message, **changes: Any) -> bytes:
    """`message` as JSON with fields replaced (a value of DROP removes the field)."""
    body = message.to_json()
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body, ensure_ascii=False).encode()


DROP = object()
BATCH, HEAD, HWM, STATUS, FILL, FILLED, RESERVE, HELD, RELEASE = (
    EXAMPLES[0], EXAMPLES[2], EXAMPLES[4], EXAMPLES[6], EXAMPLES[9], EXAMPLES[11], EXAMPLES[13], EXAMPLES[14],
    EXAMPLES[17])
MARK = {"epoch": 3, "seq": 1042, "hash": HASH}

MALFORMED = [
    # (why, payload, field named, words of the reason)
    ("empty", b"", "payload", "not JSON"),
    ("not UTF-8", b'{"type":"head"\xff}', "payload", "not UTF-8"),
    ("UTF-16", '{"type":"head"}'.encode("utf-16"), "payload", "not UTF-8"),
    ("truncated", HEAD.to_bytes()[:-1], "payload", "not JSON"),
    ("an array", b"[1, 2]", "payload", "must be a JSON object"),
    ("a string", b'"head"', "payload", "must be a JSON object"),
    ("null", b"null", "payload", "must be a JSON object"),
    ("NaN", b'{"type":"head","v":NaN}', "payload", "NaN and Infinity"),
    ("nested 100k deep", b"[" * 100_000, "payload", "not JSON"),
    ("huge integer", b'{"type":"head","v":' + b"9" * 5000 + b"}", "payload", "not JSON"),
    ("duplicate key", b'{"type":"status","v":1,"site":"BER","site":"WAW","state":"online"}', "site",
     "duplicate key"),
    ("no type", _wire(STATUS, type=DROP), "type", "missing"),
    ("unknown type", _wire(STATUS, type="movement"), "type", "unknown message type"),
    ("type not a string", _wire(STATUS, type=["status"]), "type", "unknown message type"),
    ("no v", _wire(STATUS, v=DROP), "v", "missing"),
    ("v 2", _wire(STATUS, v=2), "v", "unsupported version"),
    ("v 0", _wire(STATUS, v=0), "v", "unsupported version"),
    ("v true", _wire(STATUS, v=True), "v", "unsupported version"),
    ("v as text", _wire(STATUS, v="1"), "v", "unsupported version"),
    ("v as float", _wire(STATUS, v=1.0), "v", "unsupported version"),
    ("extra field", _wire(STATUS, colour="red"), "colour", "unknown field"),
    ("missing field", _wire(BATCH, origin=DROP), "origin", "missing"),
    ("origin lower case", _wire(BATCH, origin="ber"), "origin", "site id"),
    ("origin with newline", _wire(BATCH, origin="BER\n"), "origin", "site id"),
    ("origin null", _wire(BATCH, origin=None), "origin", "site id"),
    ("epoch 0", _wire(BATCH, epoch=0), "epoch", "must be >= 1"),
    ("epoch true", _wire(BATCH, epoch=True), "epoch", "must be an integer"),
    ("epoch float", _wire(BATCH, epoch=1.0), "epoch", "must be an integer"),
    ("epoch text", _wire(BATCH, epoch="1"), "epoch", "must be an integer"),
    ("epoch beyond int64", _wire(BATCH, epoch=2**63), "epoch", "must be <= 9223372036854775807"),
    ("items empty", _wire(BATCH, items=[]), "items", "must hold 1-500 tokens, not 0"),
    ("items 501", _wire(BATCH, items=[TOKEN] * 501), "items", "not 501"),
    ("items a string", _wire(BATCH, items=TOKEN), "items", "must be an array"),
    ("items an object", _wire(BATCH, items={"0": TOKEN}), "items", "must be an array"),
    ("empty token", _wire(BATCH, items=[TOKEN, ""]), "items[1]", "must be a token"),
    ("token with a space", _wire(BATCH, items=[TOKEN, "a b"]), "items[1]", "must be a token"),
    ("token with '='", _wire(BATCH, items=[TOKEN + "="]), "items[0]", "must be a token"),
    ("token not a string", _wire(BATCH, items=[5]), "items[0]", "must be a token"),
    ("token too long", _wire(BATCH, items=["a" * (messages.MAX_TOKEN + 1)]), "items[0]", "must be a token"),
    ("negative seq", _wire(HEAD, seq=-1), "seq", "must be >= 0"),
    ("hash at seq 0", _wire(HEAD, seq=0), "hash", "must be '' when seq is 0"),
    ("no hash at seq 5", _wire(HEAD, hash=""), "hash", "when seq > 0"),
    ("hash 42 chars", _wire(HEAD, hash=HASH[:-1]), "hash", "base64url SHA-256"),
    ("hash padded", _wire(HEAD, hash=HASH + "="), "hash", "base64url SHA-256"),
    ("hash standard base64", _wire(HEAD, hash=HASH.replace("-", "+")), "hash", "base64url SHA-256"),
    ("hash not canonical", _wire(HEAD, hash=HASH[:-1] + "V"), "hash", "base64url SHA-256"),
    ("hash hex", _wire(HEAD, hash="e3b0c442" * 8), "hash", "base64url SHA-256"),
    ("ts without micros", _wire(HEAD, ts="2026-11-22T10:15:03Z"), "ts", "UTC timestamp"),
    ("ts with offset", _wire(HEAD, ts="2026-11-22T10:15:03.120000+01:00"), "ts", "UTC timestamp"),
    ("ts month 13", _wire(HEAD, ts="2026-13-22T10:15:03.120000Z"), "ts", "UTC timestamp"),
    ("ts 30 February", _wire(HEAD, ts="2026-02-30T10:15:03.120000Z"), "ts", "UTC timestamp"),
    ("ts Arabic digits", _wire(HEAD, ts="٢٠٢٦-11-22T10:15:03.120000Z"), "ts", "UTC timestamp"),
    ("ts a number", _wire(HEAD, ts=1763806503), "ts", "UTC timestamp"),
    ("have an array", _wire(HWM, have=[]), "have", "must be an object"),
    ("have a bad origin", _wire(HWM, have={"ber": MARK}), "have", "origin key is not a site id"),
    ("mark not an object", _wire(HWM, have={"BER": 1042}), "have.BER", "must be a JSON object"),
    ("mark negative seq", _wire(HWM, have={"BER": MARK | {"seq": -1}}), "have.BER.seq", "must be >= 0"),
    ("mark seq true", _wire(HWM, have={"BER": MARK | {"seq": True}}), "have.BER.seq", "must be an integer"),
    ("mark epoch 0", _wire(HWM, have={"BER": MARK | {"epoch": 0}}), "have.BER.epoch", "must be >= 1"),
    ("mark without hash", _wire(HWM, have={"BER": {"epoch": 3, "seq": 1}}), "have.BER.hash", "missing"),
    ("mark with hash at 0", _wire(HWM, have={"BER": MARK | {"seq": 0}}), "have.BER.hash", "when seq is 0"),
    ("mark extra field", _wire(HWM, have={"BER": MARK | {"ts": TS}}), "have.BER.ts", "unknown field"),
    ("mark with a type", _wire(HWM, have={"BER": MARK | {"type": "mark"}}), "have.BER.type", "unknown field"),
    ("state upper case", _wire(STATUS, state="ONLINE"), "state", "must be one of online, offline, recovering"),
    ("state null", _wire(STATUS, state=None), "state", "must be one of"),
    ("site missing", _wire(STATUS, site=DROP), "site", "missing"),
    ("first 0", _wire(FILL, first=0), "first", "must be >= 1"),
    ("last before first", _wire(FILL, first=10, last=9), "last", "must be >= first (10)"),
    ("500 + 1 asked", _wire(FILL, first=1, last=501), "last", "must be < first + 500"),
    ("req_id empty", _wire(FILL, req_id=""), "req_id", "1-64 characters"),
    ("req_id with space", _wire(FILL, req_id="r 1"), "req_id", "1-64 characters"),
    ("req_id a number", _wire(FILL, req_id=17), "req_id", "1-64 characters"),
    ("more as text", _wire(FILLED, more="yes"), "more", "must be true or false"),
    ("more as 1", _wire(FILLED, more=1), "more", "must be true or false"),
    ("more null", _wire(FILLED, more=None), "more", "must be true or false"),
    ("more with no items", _wire(FILLED, items=[], more=True), "more", "must be false when items is empty"),
    ("fill token bad", _wire(FILLED, items=[TOKEN, "x\u00e9"]), "items[1]", "must be a token"),
    ("qty 0", _wire(RESERVE, qty=0), "qty", "must be >= 1"),
    ("qty negative", _wire(RESERVE, qty=-2), "qty", "must be >= 1"),
    ("qty huge", _wire(RESERVE, qty=10**9 + 1), "qty", "must be <= 1000000000"),
    ("qty true", _wire(RESERVE, qty=True), "qty", "must be an integer"),
    ("qty 2.0", _wire(RESERVE, qty=2.0), "qty", "must be an integer"),
    ("ttl_s 0", _wire(RESERVE, ttl_s=0), "ttl_s", "must be >= 1"),
    ("ttl_s beyond 7 days", _wire(RESERVE, ttl_s=7 * 86400 + 1), "ttl_s", "must be <= 604800"),
    ("sku empty", _wire(RESERVE, sku=""), "sku", "must be a SKU"),
    ("sku with space", _wire(RESERVE, sku="DOG 5"), "sku", "must be a SKU"),
    ("location lower case", _wire(RESERVE, location="waw-a-01"), "location", "location code"),
    ("location too long", _wire(RESERVE, location="W" * 41), "location", "location code"),
    ("idem_key empty", _wire(RESERVE, idem_key=""), "idem_key", "1-128 printable"),
    ("idem_key newline", _wire(RESERVE, idem_key="shopify:1\n"), "idem_key", "1-128 printable"),
    ("idem_key 129", _wire(RESERVE, idem_key="k" * 129), "idem_key", "1-128 printable"),
    ("status lower case", _wire(HELD, status="held"), "status", "must be one of HELD, REJECTED, UNKNOWN"),
    ("HELD without id", _wire(HELD, reservation_id=None), "reservation_id", "required when status is HELD"),
    ("HELD without expiry", _wire(HELD, expires_at=None), "expires_at", "required when status is HELD"),
    ("REJECTED with id", _wire(HELD, status="REJECTED"), "reservation_id", "must be null when status is REJECTED"),
    ("reservation_id 0", _wire(HELD, reservation_id=0), "reservation_id", "must be >= 1"),
    ("reservation_id text", _wire(HELD, reservation_id="88"), "reservation_id", "must be an integer"),
    ("available text", _wire(HELD, available="3"), "available", "must be an integer"),
    ("expires_at bad", _wire(HELD, expires_at="tomorrow"), "expires_at", "UTC timestamp"),
    ("reason empty", _wire(HELD, status="UNKNOWN", reservation_id=None, expires_at=None, reason=""), "reason",
     "1-500 printable"),
    ("reason lone surrogate", _wire(HELD, status="UNKNOWN", reservation_id=None, expires_at=None).replace(
        b'"reason": null', b'"reason": "\\ud800"'), "reason", "1-500 printable"),
    ("reason too long", _wire(HELD, status="UNKNOWN", reservation_id=None, expires_at=None, reason="x" * 501),
     "reason", "1-500 printable"),
    ("release without key", _wire(RELEASE, idem_key=DROP), "idem_key", "missing"),
]


@pytest.mark.parametrize("why, payload, field, reason", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_payloads_raise_bad_message_naming_the_field(why, payload, field, reason):
    with pytest.raises(BadMessage) as caught:
        decode(payload)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.field == field and reason in error.reason, str(error)
    assert str(error).startswith(f"{field}: ")
    assert error.reason == "missing" or "(got " in str(error)   # the value, unless there is none
    assert len(str(error)) < 300   # a hostile payload does not flood the log


def test_from_bytes_wants_its_own_type_and_decode_checks_the_topic_kind():
    with pytest.raises(BadMessage, match=r"^type: must be 'head' \(got 'status'\)"):
        Head.from_bytes(STATUS.to_bytes())
    with pytest.raises(BadMessage, match=r"^type: missing"):
        Head.from_bytes(b'{"v":1}')
    with pytest.raises(BadMessage, match=r"^type: is not carried on mv topics \(got 'head'\)"):
        decode(HEAD.to_bytes(), kind="mv")
    with pytest.raises(BadMessage, match=r"^type: is not carried on resp topics \(got 'fill'\)"):
        decode(FILL.to_bytes(), kind="resp")


def test_payloads_are_bytes_like():
    assert decode(bytearray(STATUS.to_bytes())) == STATUS
    assert decode(memoryview(STATUS.to_bytes())) == STATUS
    with pytest.raises(TypeError, match="a payload is bytes, not str"):
        decode(STATUS.to_bytes().decode())   # type: ignore[arg-type]


def test_real_signed_tokens_and_hashes_fit_the_message_checks():
    key = identity.generate("BER")
    token = tokens.sign(b'{"v":1,"origin":"BER","epoch":1,"seq":1}', key)
    assert messages.MAX_TOKEN == tokens.MAX_TOKEN
    assert MovementBatch("BER", 1, (token,)).items == (token,)
    assert Head("BER", 1, 1, tokens.token_hash(token), TS).hash == tokens.token_hash(token)
    assert HASH2 != HASH and Mark(1, 1, HASH2).hash == HASH2


@pytest.mark.parametrize("code", ["BER-A-01", "WAW-A-01-03", "A", "1.2", "BER_A", "ber-a", "-A", "A" * 41, "A" * 40])
def test_location_codes_follow_the_ledger_rule(code):
    accepted = sites.LOCATION_CODE.match(code) is not None
    try:
        ReserveRequest("r", "k", "DOG-5", code, 1, 60)
    except BadMessage as exc:
        assert exc.field == "location" and not accepted
    else:
        assert accepted


def test_adding_a_message_is_one_class():
    try:
        @dataclasses.dataclass(frozen=True)
        class Ping(Message):
            name = "test_ping"
            topic_kind = "status"
            site: SiteId

        assert decode(b'{"type":"test_ping","v":1,"site":"BER"}') == Ping("BER")
        with pytest.raises(BadMessage, match="^site: must be a site id"):
            decode(b'{"type":"test_ping","v":1,"site":"x"}')

        with pytest.raises(TypeError, match="is taken by Ping"):
            class Again(Message):
                name = "test_ping"
                topic_kind = "status"

        with pytest.raises(TypeError, match="needs a `name` and a `topic_kind`"):
            class Nameless(Message):
                topic_kind = "status"

        @dataclasses.dataclass(frozen=True)
        class Unchecked(Message):
            name = "test_unchecked"
            topic_kind = "status"
            site: str

        with pytest.raises(TypeError, match="Unchecked.site needs a checked type"):
            Unchecked("BER")
    finally:
        MESSAGES.pop("test_ping", None)
        MESSAGES.pop("test_unchecked", None)


# --- Fuzzing: whatever arrives, decode returns a message or raises BadMessage --------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _decodes_or_refuses(data: bytes) -> None:
    try:
        message = decode(data)
    except BadMessage:
        return
    assert decode(message.to_bytes()) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_bad_message(data):
    _decodes_or_refuses(data)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_bad_message(value):
    _decodes_or_refuses(json.dumps(value).encode())


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(EXAMPLES), st.data())
def test_damaged_messages_never_raise_anything_but_bad_message(message, data):
    # Start from a valid message and break one thing: the likeliest shape of a bug in another site's build.
    body = message.to_json()
    key = data.draw(st.sampled_from(sorted(body) + ["extra"]))
    action = data.draw(st.sampled_from(["drop", "replace", "nest"]))
    if action == "drop":
        body.pop(key, None)
    elif action == "replace":
        body[key] = data.draw(json_values)
    elif isinstance(body.get(key), dict) and body[key]:   # reach into have.{origin}
        inner = body[key][sorted(body[key])[0]]
        inner[data.draw(st.sampled_from(sorted(inner) + ["extra"]))] = data.draw(json_values)
    else:
        body[key] = [data.draw(json_values)]
    _decodes_or_refuses(json.dumps(body).encode())
    for cls in MESSAGES.values():
        try:
            cls.from_bytes(json.dumps(body).encode())
        except BadMessage:
            pass
