"""Live updates: a movement committed by another process reaches an open event stream, with resume by cursor."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from webtools import make_web

from appliance.ledger.db import open_db
from appliance.ledger.requests import Move
from appliance.webapp import events

POST_FROM_ANOTHER_PROCESS = """
import sys
sys.path.insert(0, "tests")
from workers import open_ledger
from appliance.ledger.requests import Move
ledger = open_ledger(sys.argv[1])
ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=int(sys.argv[2])), user="admin")
ledger.db.close()
"""


def _events(body, want: int, timeout_s: float = 20.0) -> list[tuple[str, str, dict]]:
    """Read SSE frames from `body` (a generator) in a thread until `want` data events came or time ran out."""
    got: list[tuple[str, str, dict]] = []
    done = threading.Event()

    def read():
        for chunk in body:
            fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if ": " in line
                          and not line.startswith(":"))
            if "data" in fields:
                got.append((fields["event"], fields.get("id", ""), json.loads(fields["data"])))
                if len(got) >= want:
                    break
        done.set()
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    done.wait(timeout_s)
    return got


def test_a_movement_from_another_process_reaches_the_stream(tmp_path):
    web = make_web(tmp_path)
    feed = events.ChangeFeed(tmp_path / "ledger.db", poll_s=0.05)
    reader = open_db(tmp_path / "ledger.db")
    try:
        cursor = events.current_cursor(reader.connection())
        body = events.stream(feed, reader.connection, cursor, frozenset({"movement"}), lifetime_s=30)
        next(body)  # the retry line; the stream is open
        subprocess.run([sys.executable, "-c", POST_FROM_ANOTHER_PROCESS, str(tmp_path / "ledger.db"), "7"],
                       check=True, timeout=60)
        got = _events(body, 1)
        assert [(kind, row["sku"], row["d_on_hand"], row["stock"]["on_hand"]) for kind, _, row in got] == \
            [("movement", "DOG-5", 7, 7)]
        assert got[0][1] == f"m{got[0][2]['id']}.s0.a"
        body.close()
    finally:
        feed.stop()
        reader.close()
        web.parts.close()


def test_a_reconnect_with_the_last_id_gets_what_it_missed_and_nothing_twice(tmp_path):
    web = make_web(tmp_path)
    feed = events.ChangeFeed(tmp_path / "ledger.db", poll_s=0.05)
    try:
        first = web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1)).movements[0].id
        seen = events.Cursor(movement=first)
        for qty in (2, 3):  # committed while the browser was away
            web.ledger.post(Move("receive", sku="CAT-2", location="BER-A-02", qty=qty))
        body = events.stream(feed, web.db.connection, events.Cursor.parse(seen.text()), frozenset({"movement"}),
                             lifetime_s=30)
        got = _events(body, 2)
        body.close()
        assert [row["d_on_hand"] for _, _, row in got] == [2, 3]
        # Each event carries the stock as it is now (what a page must show), not as it was then.
        assert [row["stock"]["on_hand"] for _, _, row in got] == [5, 5]
    finally:
        feed.stop()
        web.parts.close()


def test_cursor_text_round_trips_and_rejects_garbage():
    cursor = events.Cursor(12, 5, "0a1b")
    assert events.Cursor.parse(cursor.text()) == cursor
    for bad in ("", "m1", "12", "m1.sX", "m-1.s2"):
        assert events.Cursor.parse(bad) is None, bad


def test_the_stream_endpoint_refuses_unknown_topics_and_bad_cursors(web):
    client = web.client("viewer")
    assert client.get("/events?topics=movement,weather").status_code == 400
    assert client.get("/events?since=yesterday").status_code == 400
    assert web.client().get("/events").status_code == 302  # anonymous: to the login form
