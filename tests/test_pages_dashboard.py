"""The dashboard `/`: stock counts and colours from the stock projection (current after movements and catalog
edits alike), recent movements, alerts, sync state, the summary fragment the page re-reads, and the SSE stream
the page listens to (read here as a browser would)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from workers import SITE

from appliance.ledger.models import Location, ReorderOverride, Variant
from appliance.ledger.requests import Move
from appliance.sync.alarms import raise_alarm


class Tables(HTMLParser):
    """Rows of every <table id=...>: {table id: {row key: [(cell class, cell text), ...]}}; the key is the row's
    data-key or data-line attribute. Enough HTML reading for these tests, without a parser dependency."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self.row_class: dict[tuple[str, str], str] = {}
        self._table = self._row = None
        self._cell: list | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self._table = attrs["id"]
            self.tables[self._table] = {}
        elif tag == "tr" and self._table and (attrs.get("data-key") or attrs.get("data-line")):
            self._row = attrs.get("data-key") or attrs.get("data-line")
            self.tables[self._table][self._row] = []
            self.row_class[(self._table, self._row)] = attrs.get("class") or ""
        elif tag in ("td", "th") and self._row:
            self._cell = [attrs.get("class") or "", ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row:
            self.tables[self._table][self._row].append((self._cell[0], " ".join(self._cell[1].split())))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None


def counts(tables: Tables, table: str, key: str) -> dict:
    """A counts row as {name: (text, level class or "")}: skus, out, low, over, on_hand."""
    cells = tables.tables[table][key]
    names = ("key", "skus", "out", "low", "over", "on_hand")
    return {name: (text, next((c for c in cls.split() if c.startswith("level-")), ""))
            for name, (cls, text) in zip(names, cells)}


def set_points(db, sku: str, point: int | None, qty: int | None) -> None:
    with db.atomic("IMMEDIATE"):
        Variant.update(reorder_point=point, reorder_qty=qty).where(Variant.sku == sku).execute()


def override(db, sku: str, location: str, point: int) -> None:
    with db.atomic("IMMEDIATE"):
        ReorderOverride.create(variant=Variant.get(Variant.sku == sku),
                               location=Location.get(Location.code == location), reorder_point=point)


def stock_up(web) -> None:
    """BER-A-01: DOG-5 low (5 ≤ 10), DOG-15 over (20 > 2 + 2×3), CAT-2 out (received 3, shipped 3).
    BER-A-02: DOG-5 4 with an override point of 2 (fine there, low by the variant's 10), CAT-2 out by override
    alone (no stock row). Site BER: DOG-5 9 ≤ 10 low, DOG-15 over, CAT-2 out."""
    set_points(web.db, "DOG-5", 10, 5)
    set_points(web.db, "DOG-15", 2, 3)
    override(web.db, "DOG-5", "BER-A-02", 2)
    override(web.db, "CAT-2", "BER-A-02", 1)
    post = web.ledger.post
    post(Move("receive", sku="DOG-5", location="BER-A-01", qty=5), user="mia", device="test")
    post(Move("receive", sku="DOG-15", location="BER-A-01", qty=20), user="mia", device="test")
    post(Move("receive", sku="CAT-2", location="BER-A-01", qty=3), user="mia", device="test")
    post(Move("ship", sku="CAT-2", location="BER-A-01", qty=3), user="mia", device="test")
    post(Move("receive", sku="DOG-5", location="BER-A-02", qty=4, lot="L1"), user="sam", device="test")


def test_counts_and_colours_follow_reorder_points_and_overrides(web):
    stock_up(web)
    page = web.client("manager").get("/")
    assert page.status_code == 200
    tables = Tables(page.get_data(as_text=True))

    assert counts(tables, "by-location", "BER-A-01") == {
        "key": ("BER-A-01", ""), "skus": ("3", ""), "out": ("1", "level-out"), "low": ("1", "level-low"),
        "over": ("1", "level-over"), "on_hand": ("25", "")}
    # The override (2) rules at BER-A-02, not the variant's 10; CAT-2 counts there through its override alone.
    assert counts(tables, "by-location", "BER-A-02") == {
        "key": ("BER-A-02", ""), "skus": ("2", ""), "out": ("1", "level-out"), "low": ("0", ""),
        "over": ("0", ""), "on_hand": ("4", "")}
    assert counts(tables, "by-site", SITE) == {
        "key": (SITE, ""), "skus": ("3", ""), "out": ("1", "level-out"), "low": ("1", "level-low"),
        "over": ("1", "level-over"), "on_hand": ("29", "")}
    # Every site is listed, the foreign one with nothing booked too.
    assert counts(tables, "by-site", "WAW")["skus"] == ("0", "")

    # This site's lines that need stock: out first (the one furthest below its reorder point first), then low;
    # the over-stocked and fine ones are not there.
    lines = tables.tables["needs-stock"]
    assert list(lines) == ["CAT-2@BER-A-02", "CAT-2@BER-A-01", "DOG-5@BER-A-01"]
    assert [tables.row_class[("needs-stock", key)] for key in lines] == ["level-out", "level-out", "level-low"]
    assert lines["DOG-5@BER-A-01"][2] == ("num", "5")   # available
    assert lines["DOG-5@BER-A-01"][3] == ("num", "10")  # the reorder point it is measured against


def test_a_line_turns_from_low_to_fine_and_over_as_stock_arrives(web):
    set_points(web.db, "DOG-5", 10, 5)
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    client = web.client("viewer")
    assert counts(Tables(client.get("/").get_data(as_text=True)), "by-location", "BER-A-01")["low"] == \
        ("1", "level-low")   # at the reorder point is low
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    fine = counts(Tables(client.get("/dashboard/summary").get_data(as_text=True)), "by-location", "BER-A-01")
    assert (fine["low"], fine["over"]) == (("0", ""), ("0", ""))
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))  # 21 > 10 + 2×5
    over = counts(Tables(client.get("/dashboard/summary").get_data(as_text=True)), "by-location", "BER-A-01")
    assert over["over"] == ("1", "level-over")
    # Reserving stock lowers what is available: 21 − 15 = 6 ≤ 10 is low again.
    web.ledger.reserve("DOG-5", "BER-A-01", 15)
    low = counts(Tables(client.get("/dashboard/summary").get_data(as_text=True)), "by-location", "BER-A-01")
    assert (low["low"], low["over"], low["on_hand"]) == (("1", "level-low"), ("0", ""), ("21", ""))


def test_a_reorder_point_edited_without_any_movement_shows_at_once(web):
    stock_up(web)
    client = web.client("viewer")
    low = counts(Tables(client.get("/dashboard/summary").get_data(as_text=True)), "by-location", "BER-A-01")
    assert low["low"] == ("1", "level-low")   # DOG-5: 5 ≤ 10
    set_points(web.db, "DOG-5", 3, 5)          # 5 > 3: fine now, though no stock moved
    page = Tables(client.get("/").get_data(as_text=True))
    assert counts(page, "by-location", "BER-A-01")["low"] == ("0", "")
    assert "DOG-5@BER-A-01" not in page.tables["needs-stock"]


def test_viewer_sees_recent_movements_alerts_sync_state_and_the_live_cursor(web):
    stock_up(web)
    with web.db.atomic("IMMEDIATE"):
        raise_alarm(web.db.connection(), "WAW", "bad_signature", "movement WAW#7 signed with an unknown key")
    page = web.client("viewer").get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    recent = re.search(r'<table id="recent">.*?</table>', html, re.S).group(0)
    ids = [int(x) for x in re.findall(r'<tr data-id="(\d+)"', recent)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5   # newest first
    first = re.search(r'<tr data-id="\d+">.*?</tr>', recent, re.S).group(0)
    assert "DOG-5" in first and "BER-A-02" in first and "+4" in first and "lot L1" in first and "sam" in first
    assert "bad_signature" in html and "movement WAW#7 signed with an unknown key" in html
    assert "sync off" in html   # the test config has no [mqtt] section
    since = re.search(r'data-since="([^"]+)"', html).group(1)
    assert since.startswith(f"m{max(ids)}.s0.a") and len(since) > len(f"m{max(ids)}.s0.a")  # alarms version
    assert 'class="live-state"' in html and "dashboard.js" in html
    assert "<script>" not in html and "style=" not in html   # the CSP allows neither


def test_empty_dashboard_and_login_required(web):
    assert web.client().get("/").status_code == 302
    assert web.client().get("/dashboard/summary").status_code == 302
    html = web.client("staff").get("/").get_data(as_text=True)
    assert "No movements yet." in html and "No open alerts." in html
    assert "Nothing is out of stock or below its reorder point." in html


def test_the_stream_delivers_a_movement_committed_after_the_page_was_rendered(web):
    client = web.client("viewer")
    since = re.search(r'data-since="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    posted = web.ledger.post(Move("receive", sku="DOG-15", location="BER-A-02", qty=7), user="mia", device="test")
    movement_id = posted.ids[0]
    response = client.get(f"/events?topics=movement&since={since}", buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        received = ""
        for chunk in response.response:
            received += chunk.decode() if isinstance(chunk, bytes) else chunk
            if "event: movement" in received and received.endswith("\n\n"):
                break
    finally:
        response.close()
    event = next(block for block in received.split("\n\n") if block.startswith("event: movement"))
    fields = dict(line.split(": ", 1) for line in event.splitlines())
    assert fields["id"] == f"m{movement_id}.s0.a"
    data = json.loads(fields["data"])
    assert (data["id"], data["kind"], data["sku"], data["location"], data["d_on_hand"], data["user"]) == \
        (movement_id, "receive", "DOG-15", "BER-A-02", 7, "mia")
    assert data["stock"] == {"on_hand": 7, "reserved": 0, "available": 7, "in_transit": 0}
