"""Every movement is signed in its posting transaction and linked to the one before (movement_token.py), and
`check` verifies the chain and, on request, the signatures."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from workers import SITE, SITE_KEY, populate

from appliance.errors import InconsistentState, Recovering
from appliance.ledger.check import check
from appliance.ledger.movement_token import BODY_FIELDS, BadBody, parse_body
from appliance.ledger.requests import Move
from appliance.ledger.service import Ledger
from appliance.sync.identity import PublicKey, SigningKey, generate
from appliance.sync.tokens import open_token, sign, token_hash

KEYS = {SITE_KEY.kid: SITE_KEY.public}


def rows(ledger):
    return ledger.db.execute_sql("SELECT id, seq, token, hash FROM movement WHERE origin = ? ORDER BY seq",
                                 (SITE,)).fetchall()


def busy_day(ledger):
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10, lot="L1", expiry="2027-01-01"))
    ledger.post([Move("ship", sku="DOG-5", location="BER-A-01", qty=2),
                 Move("receive", sku="CAT-2", location="BER-A-02", qty=4)], op_id="order-1", user="admin")
    held = ledger.reserve("DOG-5", "BER-A-01", 3, ref="shop:1").movements[0]
    ledger.consume(int(held.ref_id), 1)
    ledger.transfer("CAT-2", "BER-A-02", "WAW-A-01", 2)
    received = ledger.post(Move("receive", sku="CAT-2", location="BER-A-02", qty=1))
    ledger.reverse(received.movements[0].id, "typo")


def test_each_movement_is_signed_over_a_body_naming_codes_and_the_previous_hash(ledger):
    busy_day(ledger)
    prev = ""
    for movement_id, seq, token, digest in rows(ledger):
        kid, raw = open_token(token, KEYS)
        body = parse_body(raw)
        assert kid == SITE_KEY.kid and (body.origin, body.epoch, body.seq) == (SITE, 1, seq)
        assert body.prev == prev and digest == token_hash(token)
        prev = digest
    head = ledger.db.execute_sql("SELECT head_hash FROM site WHERE id = ?", (SITE,)).fetchone()[0]
    assert head == prev
    bodies = [parse_body(open_token(r[2], KEYS)[1]) for r in rows(ledger)]
    ship = next(b for b in bodies if b.kind == "ship" and b.op_id == "order-1")
    assert (ship.sku, ship.location, ship.lot, ship.d_on_hand, ship.user) == ("DOG-5", "BER-A-01", "L1", -2, "admin")
    out = next(b for b in bodies if b.kind == "transfer_out")
    assert (out.to_location, out.ref_type, out.ref_id) == ("WAW-A-01", "transfer", "BER-TR-000001")
    reversal = bodies[-1]
    assert reversal.kind == "reversal" and reversal.reverses == f"{SITE}:1:{len(bodies) - 1}"


def test_check_verifies_chain_and_signatures(ledger):
    busy_day(ledger)
    assert check(ledger.db.connection(), signatures=True) == []


def test_check_reports_a_row_that_no_longer_matches_its_token(ledger):
    busy_day(ledger)
    conn = ledger.db.connection()
    conn.execute("DROP TRIGGER movement_immutable_update")   # what a hand-edited database looks like
    conn.execute("UPDATE movement SET d_on_hand = -1 WHERE seq = 2 AND origin = 'BER'")
    conn.execute("UPDATE stock SET on_hand = on_hand + 1 WHERE lot = 'L1'")
    assert not [d for d in check(conn) if d.what == "token"]   # the quick check reads only the chain
    found = [d for d in check(conn, signatures=True) if d.what == "token"]
    assert len(found) == 1 and "d_on_hand -1 (token says -2)" in found[0].message


def test_check_reports_a_broken_chain_and_a_foreign_signature(ledger):
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    conn = ledger.db.connection()
    conn.execute("DROP TRIGGER movement_immutable_update")
    first = conn.execute("SELECT token FROM movement WHERE seq = 1").fetchone()[0]
    # Swap movement 2's token for movement 1's: the chain no longer links.
    conn.execute("UPDATE movement SET token = ?, hash = ? WHERE seq = 2", (first, token_hash(first)))
    whats = {d.what for d in check(conn)}
    assert "chain" in whats or "token" in whats
    impostor = SigningKey.from_seed("WAW#1", bytes(range(1, 33)))
    conn.execute("INSERT INTO site_key (kid, site_id, public_key, created_at) VALUES (?, 'WAW', ?, '')",
                 (impostor.kid, impostor.public.text()))
    body = open_token(first, KEYS)[1]
    forged = sign(body, impostor)
    conn.execute("UPDATE movement SET token = ?, hash = ? WHERE seq = 1", (forged, token_hash(forged)))
    assert any(d.what == "signature" and "another site" in d.message for d in check(conn, signatures=True))


def test_unsigned_movements_are_reported_once_per_site(db, fake_clock):
    populate(db)
    unsigned = Ledger(db, SITE, None, now=fake_clock)
    for _ in range(3):
        unsigned.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    found = check(db.connection())
    assert [(d.what, d.details["count"]) for d in found] == [("unsigned", 3)]


def test_a_key_other_than_the_registered_one_is_refused(db, fake_clock):
    populate(db)
    with pytest.raises(InconsistentState, match="not the one registered"):
        Ledger(db, SITE, generate(SITE), now=fake_clock)


def test_writes_are_refused_while_the_site_recovers(ledger):
    ledger.db.execute_sql("UPDATE site SET recovering = 1 WHERE id = ?", (SITE,))
    with pytest.raises(Recovering) as caught:
        ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    assert caught.value.http_status == 503
    ledger.db.execute_sql("UPDATE site SET recovering = 0 WHERE id = ?", (SITE,))
    assert ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1)).movements[0].seq == 1


def genuine_body(ledger) -> dict:
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    token = rows(ledger)[0][2]
    return json.loads(open_token(token, KEYS)[1])


@pytest.mark.parametrize("field, value, reason", [
    ("seq", 0, "integer in 1.."), ("seq", True, "integer"), ("kind", "steal", "one of"),
    ("location", "ber-a-01", "text matching"), ("d_on_hand", 10**10, "integer in"), ("prev", "x", "matching"),
    ("ts", "yesterday", "matching"), ("v", 2, "must be 1"), ("note", "a\nb", "printable"),
])
def test_parse_body_names_the_bad_field(ledger, field, value, reason):
    body = genuine_body(ledger)
    body[field] = value
    with pytest.raises(BadBody, match=reason) as caught:
        parse_body(json.dumps(body).encode())
    assert caught.value.field == field


def test_parse_body_refuses_extra_missing_and_reordered_fields(ledger):
    body = genuine_body(ledger)
    for broken in ({**body, "extra": 1}, {k: v for k, v in body.items() if k != "lot"},
                   dict(reversed(list(body.items())))):
        with pytest.raises(BadBody, match="exactly the fields"):
            parse_body(json.dumps(broken).encode())


@given(st.binary(max_size=300) | st.dictionaries(st.sampled_from(BODY_FIELDS),
                                                  st.none() | st.integers() | st.text(max_size=20),
                                                  max_size=len(BODY_FIELDS)).map(lambda d: json.dumps(d).encode()))
def test_parse_body_raises_only_bad_body(raw):
    try:
        parse_body(raw)
    except BadBody:
        pass


def test_a_public_key_verifies_repeatedly_and_after_parsing():
    public = SITE_KEY.public
    signature = SITE_KEY.sign(b"x")
    assert public.verify(signature, b"x") and not public.verify(signature, b"y")
    assert PublicKey.parse(public.kid, public.text()).verify(signature, b"x")
