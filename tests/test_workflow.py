"""The station state machine alone (workflow.step): no database, a table of transitions."""

from __future__ import annotations

import pytest

from appliance.scanning import workflow as wf
from appliance.scanning.workflow import Line, Seen, Session

SITE = "BER"


def item(sku="DOG-5", units=1, lot="", expiry=None):
    return Seen("item", sku, sku=sku, units=units, lot=lot, expiry=expiry)


def loc(code, site=SITE):
    return Seen("location", code, location=code, site=site)


def cmd(name):
    return Seen("command", f"CMD-{name.upper()}", command=name)


def qty(n):
    return Seen("quantity", f"QTY-{n}", quantity=n)


def run(session, *seen, now=100.0):
    result = None
    for s in seen:
        result = wf.step(session, s, now, site=SITE, idle_timeout_s=300)
        session = result.session
        now += 1
    return result


RECEIVING = Session(mode="receive", location="BER-A-01", touched=100)
MOVING = Session(mode="move", location="BER-A-01", lines=(Line("DOG-5", 2),), touched=100)
COUNTING = Session(mode="count", location="BER-A-01", lines=(Line("DOG-5", 12), Line("DOG-5", 1)), touched=100)


@pytest.mark.parametrize("start, seen, action, after", [
    # mode switches, and what they refuse while items are held
    (Session(), [cmd("receive")], wf.Say("ok", "Receive"), Session(mode="receive")),
    (Session(), [cmd("pick")], wf.Say("ok", "Ship"), Session(mode="ship")),
    (MOVING, [cmd("count")], wf.Say, MOVING),
    (MOVING, [cmd("cancel")], wf.Say("warning", "Cancelled: dropped 1 unposted item(s)"), Session()),
    # receive: quantity codes multiply the next item only, lot and expiry travel with it
    (RECEIVING, [qty(3), item(units=12, lot="L1", expiry="2027-01-31")],
     wf.Receive(Line("DOG-5", 36, "L1", "2027-01-31"), "BER-A-01", None, None), RECEIVING),
    (Session(mode="receive"), [item()], wf.Say("error", "Scan the receiving location first"), Session(mode="receive")),
    (Session(mode="receive"), [loc("WAW-A-01", "WAW")], wf.Say, Session(mode="receive")),
    # ship for an order typed as free text
    (Session(mode="ship", location="BER-A-01"), [Seen("unknown", "ORDER-9")], wf.Say("ok", "Order ORDER-9: scan the items"),
     Session(mode="ship", location="BER-A-01", ref_type="order", ref_id="ORDER-9")),
    (Session(mode="ship"), [Seen("unknown", "4006381333931", code_like=True)], wf.Say, Session(mode="ship")),
    # move: the first location is the source, a location after items is the destination
    (MOVING, [loc("BER-A-02")], wf.Relocate((Line("DOG-5", 2),), "BER-A-01", "BER-A-02", foreign=False),
     Session(mode="move", location="BER-A-01")),
    (MOVING, [loc("WAW-A-01", "WAW")], wf.Relocate((Line("DOG-5", 2),), "BER-A-01", "WAW-A-01", foreign=True),
     Session(mode="move", location="BER-A-01")),
    (Session(mode="transfer", location="BER-A-01", lines=(Line("DOG-5", 1),)), [loc("BER-A-02")], wf.Say,
     Session(mode="transfer", location="BER-A-01", lines=(Line("DOG-5", 1),))),
    # count: DONE posts the totals per SKU and lot, UNDO takes back the last scan only
    (COUNTING, [cmd("done")], wf.PostCount("BER-A-01", (Line("DOG-5", 13),)), Session(mode="count")),
    (COUNTING, [cmd("undo")], wf.Say("ok", "Took back 1 × DOG-5"),
     Session(mode="count", location="BER-A-01", lines=(Line("DOG-5", 12),))),
    (COUNTING, [loc("BER-A-02")], wf.Say, COUNTING),
    # undo prefers the pending quantity, then held items, then the last post
    (Session(mode="ship", qty=5, last={"type": "post"}), [cmd("undo")], wf.Say("ok", "Quantity × 5 taken back"),
     Session(mode="ship", last={"type": "post"})),
    (Session(mode="ship", last={"type": "post"}), [cmd("undo")], wf.Undo({"type": "post"}), Session(mode="ship")),
    (Session(), [cmd("undo")], wf.Say("warning", "Nothing to undo"), Session()),
    # documents: a transfer starts receiving it wherever the station was
    (Session(mode="ship", location="BER-A-01"), [Seen("document", "BER-TR-000001", document="BER-TR-000001",
                                                     document_type="transfer")],
     wf.OpenTransfer("BER-TR-000001"), Session(mode="receive", ref_type="transfer", ref_id="BER-TR-000001")),
    (Session(), [Seen("badge", "USR-JAN", login="jan")], wf.Login("jan"), Session(user="jan")),
    (Session(), [item()], wf.Lookup("sku", "DOG-5"), Session()),
    (Session(), [loc("BER-A-01")], wf.Lookup("location", "BER-A-01"), Session()),
    (Session(), [Seen("invalid", "x", error="AI 17: no such date")], wf.Say("error", "AI 17: no such date"), Session()),
])
def test_transitions(start, seen, action, after):
    result = run(start, *seen)
    if isinstance(action, type):
        assert isinstance(result.action, action) and result.action.level == "error"
    else:
        assert result.action == action
    touched = result.session.touched
    assert result.session == Session(**{**after.__dict__, "touched": touched})


def test_idle_timeout_drops_held_items_and_the_badge_but_not_a_resting_station():
    busy = Session(mode="move", location="BER-A-01", lines=(Line("DOG-5", 1),), user="jan", touched=100)
    result = wf.step(busy, loc("BER-A-02"), 100 + 301, site=SITE, idle_timeout_s=300)
    assert result.notes == ("Session timed out after 5 min idle; dropped 1 unposted item(s)",)
    assert result.action == wf.Lookup("location", "BER-A-02") and result.session.user is None
    just_in_time = wf.step(busy, loc("BER-A-02"), 100 + 300, site=SITE, idle_timeout_s=300)
    assert just_in_time.notes == () and isinstance(just_in_time.action, wf.Relocate)
    resting = wf.step(Session(touched=100), item(), 100 + 10_000, site=SITE, idle_timeout_s=300)
    assert resting.notes == ()


def test_sessions_round_trip_through_json():
    session = Session(mode="count", location="BER-A-01", lines=(Line("DOG-5", 3, "L1", "2027-01-01"),), qty=2,
                      user="jan", last={"type": "post", "movement_ids": [4]}, touched=5.5)
    assert Session.from_json(session.to_json()) == session


@pytest.mark.parametrize("session, expected", [
    (Session(), "Scan anything to see where it is, or a command"),
    (Session(mode="receive"), "Scan the receiving location"),
    (Session(mode="receive", ref_type="transfer", ref_id="WAW-TR-000003"),
     "Scan the items of transfer WAW-TR-000003, then CMD-DONE"),
    (Session(mode="move", location="BER-A-01"), "Scan the items to take from BER-A-01"),
    (MOVING, "Scan more items, or the destination (1 item(s) held)"),
    (Session(mode="count", location="BER-A-01"), "Scan everything at BER-A-01, then CMD-DONE"),
])
def test_prompts(session, expected):
    assert wf.prompt(session) == expected
