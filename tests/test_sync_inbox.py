"""The inbox applies other sites' signed movements in order, exactly once, and refuses what it must (no MQTT
here: tokens are handed over directly, in every order and multiplicity the network could produce)."""

from __future__ import annotations

import random
import shutil

import pytest
from sync_sites import all_tokens, build_box, open_box, site_key

from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.movement_token import encode_body, parse_body
from appliance.ledger.requests import Move
from appliance.sync.alarms import alarms
from appliance.sync.inbox import Inbox
from appliance.sync.identity import PublicKey, SigningKey
from appliance.sync.tokens import open_token, sign


@pytest.fixture
def boxes(tmp_path):
    paths = {}
    for site, peers in (("BER", ["WAW", "PAR"]), ("WAW", ["BER", "PAR"]), ("PAR", ["BER", "WAW"])):
        paths[site] = tmp_path / f"{site}.db"
        build_box(paths[site], site, peers)
    ledgers = {site: open_box(path, site) for site, path in paths.items()}
    yield ledgers
    for ledger in ledgers.values():
        ledger.db.close()


def stock_by_site(ledger):
    return queries.totals_by_site(ledger.db.connection(), "DOG-5")


def consistent(*ledgers):
    for ledger in ledgers:
        assert check(ledger.db.connection(), signatures=True) == [], ledger.site_id


def waw_day(waw):
    waw.post(Move("receive", sku="DOG-5", location="WAW-A-01", qty=20, lot="W1", expiry="2027-03-01"))
    waw.post(Move("ship", sku="DOG-5", location="WAW-A-01", qty=3))
    r = waw.reserve("DOG-5", "WAW-A-01", 2).movements[0]
    waw.release(int(r.ref_id))
    m = waw.post(Move("receive", sku="CAT-2", location="WAW-A-02", qty=5)).movements[0]
    waw.reverse(m.id, "wrong bin")


def test_movements_apply_in_order_and_every_box_computes_the_same_stock(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw_day(waw)
    inbox = Inbox(ber.db, "BER")
    outcome = inbox.receive(all_tokens(waw.db, "WAW"), claimed_origin="WAW")
    assert outcome.applied == {"WAW": 6} and outcome.rejected == 0
    assert stock_by_site(ber)["WAW"] == stock_by_site(waw)["WAW"]
    reversal = ber.db.execute_sql("SELECT reverses_id FROM movement WHERE kind = 'reversal'").fetchone()[0]
    assert ber.db.execute_sql("SELECT kind, origin FROM movement WHERE id = ?", (reversal,)).fetchone() == (
        "receive", "WAW")
    consistent(ber, waw)


def test_duplicates_and_any_order_apply_exactly_once(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw_day(waw)
    tokens = all_tokens(waw.db, "WAW")
    inbox = Inbox(ber.db, "BER")
    rng = random.Random(7)
    delivered = tokens * 3
    rng.shuffle(delivered)
    for i in range(0, len(delivered), 4):
        inbox.receive(delivered[i:i + 4], claimed_origin="WAW")
    assert ber.db.execute_sql("SELECT count(*) FROM movement WHERE origin = 'WAW'").fetchone()[0] == len(tokens)
    assert stock_by_site(ber)["WAW"] == stock_by_site(waw)["WAW"]
    assert inbox.early.get("WAW") == {}
    consistent(ber)


def test_a_gap_waits_until_it_is_filled(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw_day(waw)
    tokens = all_tokens(waw.db, "WAW")
    inbox = Inbox(ber.db, "BER")
    outcome = inbox.receive(tokens[2:], claimed_origin="WAW")
    assert outcome.total_applied == 0 and outcome.early == 4 and inbox.head_known("WAW") == 6
    outcome = inbox.receive(tokens[:2])   # a fill response: any site may serve it
    assert outcome.applied == {"WAW": 6}
    consistent(ber)


def test_a_third_site_can_serve_another_sites_movements(boxes):
    ber, waw, par = boxes["BER"], boxes["WAW"], boxes["PAR"]
    waw_day(waw)
    Inbox(par.db, "PAR").receive(all_tokens(waw.db, "WAW"))
    outcome = Inbox(ber.db, "BER").receive(all_tokens(par.db, "WAW"))
    assert outcome.applied == {"WAW": 6}
    consistent(ber, par)


def forged_token(waw, key: SigningKey, **changes) -> str:
    genuine = all_tokens(waw.db, "WAW")[0]
    body = parse_body(open_token(genuine, {site_key("WAW").kid: site_key("WAW").public})[1])
    return sign(encode_body(body._replace(**changes)), key)


def test_forged_and_misrouted_tokens_are_refused_counted_and_change_nothing(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw.post(Move("receive", sku="DOG-5", location="WAW-A-01", qty=1))
    inbox = Inbox(ber.db, "BER")
    impostor = SigningKey.from_seed("WAW#1", bytes(32))          # right kid, wrong key
    par_key = site_key("PAR")
    cases = [
        forged_token(waw, impostor, d_on_hand=1000),
        forged_token(waw, par_key),                               # PAR signing a WAW movement
        forged_token(waw, site_key("WAW"), location="BER-A-01"),  # WAW moving Berlin's stock
    ]
    outcome = inbox.receive(cases, claimed_origin="WAW")
    assert outcome.rejected == 3 and outcome.total_applied == 0
    # A genuine WAW token published on PAR's topic (ACL off) is refused too.
    assert inbox.receive(all_tokens(waw.db, "WAW"), claimed_origin="PAR").rejected == 1
    kinds = {(a["site"], a["kind"]): a["count"] for a in alarms(ber.db.connection())}
    assert kinds == {("WAW", "bad_signature"): 2, ("WAW", "not_owner"): 1, ("PAR", "bad_message"): 1}
    assert ber.db.execute_sql("SELECT count(*) FROM movement").fetchone()[0] == 0


def test_a_different_movement_under_a_known_seq_quarantines_the_origin(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw.post(Move("receive", sku="DOG-5", location="WAW-A-01", qty=1))
    inbox = Inbox(ber.db, "BER")
    inbox.receive(all_tokens(waw.db, "WAW"))
    other = forged_token(waw, site_key("WAW"), d_on_hand=7)      # WAW's key signing a second seq 1
    outcome = inbox.receive([other])
    assert outcome.total_applied == 0
    quarantined = ber.db.execute_sql("SELECT quarantine_reason FROM sync_peer WHERE site_id = 'WAW'").fetchone()
    assert quarantined and "differs" in quarantined[0]
    waw.post(Move("receive", sku="DOG-5", location="WAW-A-01", qty=1))
    assert inbox.receive(all_tokens(waw.db, "WAW")).ignored == 2   # nothing more from WAW until cleared
    assert stock_by_site(ber)["WAW"]["on_hand"] == 1


def test_unknown_sku_gets_a_placeholder_and_unknown_locations_of_the_origin_are_created(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw.db.execute_sql("INSERT INTO variant (product_id, sku, created_at, updated_at) VALUES (1, 'NEW-1', '', '')")
    waw.db.execute_sql("INSERT INTO location (code, site_id, created_at) VALUES ('WAW-Z-99', 'WAW', '')")
    waw.post(Move("receive", sku="NEW-1", location="WAW-Z-99", qty=4))
    Inbox(ber.db, "BER").receive(all_tokens(waw.db, "WAW"))
    assert ber.db.execute_sql("SELECT l.site_id, s.on_hand FROM stock s JOIN location l ON l.id = s.location_id"
                              " JOIN variant v ON v.id = s.variant_id WHERE v.sku = 'NEW-1'").fetchone() == ("WAW", 4)
    consistent(ber)


def test_inter_site_transfer_in_transit_on_both_boxes_then_received(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    ber.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    ber.transfer("DOG-5", "BER-A-01", "WAW-A-01", 4)
    waw_inbox, ber_inbox = Inbox(waw.db, "WAW"), Inbox(ber.db, "BER")
    waw_inbox.receive(all_tokens(ber.db, "BER"))
    for box in (ber, waw):
        assert stock_by_site(box)["WAW"]["in_transit"] == 4
    waw.transfer_in("BER-TR-000001", 3, close=True)     # one short
    ber_inbox.receive(all_tokens(waw.db, "WAW"))
    for box in (ber, waw):
        assert stock_by_site(box)["WAW"] == {**stock_by_site(box)["WAW"], "on_hand": 3, "in_transit": 0}
        status = box.db.execute_sql("SELECT status, qty_received, qty_short FROM transfer").fetchone()
        assert status == ("closed", 3, 1)
    consistent(ber, waw)


def test_a_third_site_may_see_the_receipt_before_the_shipment(boxes):
    ber, waw, par = boxes["BER"], boxes["WAW"], boxes["PAR"]
    ber.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    ber.transfer("DOG-5", "BER-A-01", "WAW-A-01", 4)
    Inbox(waw.db, "WAW").receive(all_tokens(ber.db, "BER"))
    waw.transfer_in("BER-TR-000001", 4)
    par_inbox = Inbox(par.db, "PAR")
    par_inbox.receive(all_tokens(waw.db, "WAW"))     # in transit goes negative for a moment here
    par_inbox.receive(all_tokens(ber.db, "BER"))
    Inbox(ber.db, "BER").receive(all_tokens(waw.db, "WAW"))
    assert stock_by_site(par) == stock_by_site(waw) == stock_by_site(ber)
    assert stock_by_site(par)["WAW"]["in_transit"] == 0
    consistent(par, ber, waw)


def test_a_restored_box_takes_its_own_movements_back_from_a_peer(boxes, tmp_path):
    ber, waw = boxes["BER"], boxes["WAW"]
    ber.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    backup = tmp_path / "BER-backup.db"
    ber.db.execute_sql(f"VACUUM INTO '{backup}'")
    r = ber.reserve("DOG-5", "BER-A-01", 3, ref="order-9").movements[0]
    ber.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=2), op_id="scan-77")
    ber.transfer("DOG-5", "BER-A-01", "WAW-A-01", 1)
    ber.consume(int(r.ref_id), 1)
    Inbox(waw.db, "WAW").receive(all_tokens(ber.db, "BER"))
    expected = stock_by_site(ber)
    ber.db.close()
    shutil.copyfile(backup, tmp_path / "BER.db")
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"BER.db{suffix}").unlink(missing_ok=True)
    restored = boxes["BER"] = open_box(tmp_path / "BER.db", "BER")
    assert Inbox(restored.db, "BER").receive(all_tokens(waw.db, "BER")).applied == {"BER": 4}
    assert stock_by_site(restored) == expected
    consistent(restored)
    # The scanner's retry of the lost request gets its movements back instead of shipping twice.
    again = restored.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=2), op_id="scan-77")
    assert again.replayed
    # And the next own movement continues the chain.
    assert restored.post(Move("receive", sku="DOG-5", location="BER-A-02", qty=1)).movements[0].seq == 6
    assert restored.transfer("DOG-5", "BER-A-01", "WAW-A-01", 1).movements[0].ref_id == "BER-TR-000002"
    consistent(restored)


def test_a_contiguous_run_costs_one_signature_check(boxes, monkeypatch):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw_day(waw)
    calls = []
    real = PublicKey.verify
    monkeypatch.setattr(PublicKey, "verify", lambda self, sig, data: calls.append(1) or real(self, sig, data))
    outcome = Inbox(ber.db, "BER").receive(all_tokens(waw.db, "WAW"))
    assert outcome.applied == {"WAW": 6} and len(calls) == 1
    calls.clear()
    assert Inbox(ber.db, "BER").receive(all_tokens(waw.db, "WAW")).duplicates == 6 and calls == []


def test_a_forged_anchor_does_not_vouch_for_the_run_but_genuine_tokens_still_apply(boxes):
    ber, waw = boxes["BER"], boxes["WAW"]
    waw_day(waw)
    tokens = all_tokens(waw.db, "WAW")
    genuine = parse_body(open_token(tokens[-1], {site_key("WAW").kid: site_key("WAW").public})[1])
    forged_last = sign(encode_body(genuine._replace(d_on_hand=99)), SigningKey.from_seed("WAW#1", bytes(32)))
    outcome = Inbox(ber.db, "BER").receive(tokens[:-1] + [forged_last])
    assert outcome.applied == {"WAW": 5} and outcome.rejected == 1
    # A tampered token in the middle breaks the chain there: what follows it waits, nothing wrong applies.
    box = boxes["PAR"]
    middle = tokens[2][:-4] + ("AAAA" if not tokens[2].endswith("AAAA") else "BBBB")
    outcome = Inbox(box.db, "PAR").receive(tokens[:2] + [middle] + tokens[3:])
    assert outcome.applied == {"WAW": 2} and outcome.rejected == 1 and outcome.early == 3
    consistent(ber, box)
