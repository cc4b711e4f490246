"""The stock pages over a real ledger file: the coloured site-wide list, one variant, one location, the chart."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from webtools import ROLES
from workers import SITE, SITE_KEY

from appliance import clock
from appliance.ledger.requests import Move
from appliance.ledger.service import Ledger
from appliance.webapp import events, stock_chart
from appliance.webapp.pages_stock import PAGE, level_of

ROW = re.compile(r'<tr class="level-(\w+)" data-sku="([^"]+)" data-location="([^"]+)"')


def rows(page: str) -> dict[tuple[str, str], str]:
    """(sku, location) -> level of every line of a stock table."""
    return {(sku, location): level for level, sku, location in ROW.findall(page)}


def set_reorder(web, sku: str, point: int | None, qty: int | None = None, location: str | None = None) -> None:
    with web.db.atomic("IMMEDIATE"):
        variant = web.db.execute_sql("SELECT id FROM variant WHERE sku = ?", (sku,)).fetchone()[0]
        if location is None:
            web.db.execute_sql("UPDATE variant SET reorder_point = ?, reorder_qty = ? WHERE id = ?",
                               (point, qty, variant))
        else:
            web.db.execute_sql(
                "INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty)"
                " SELECT ?, id, ?, ? FROM location WHERE code = ?", (variant, point, qty, location))


@pytest.mark.parametrize("role", ROLES)
def test_every_stock_page_renders_for_each_role(web, role):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=4, lot="L1", expiry="2027-01-31"))
    client = web.client(role)
    for url in ("/stock", "/stock?site=BER", "/stock?site=WAW&level=ok", "/stock?q=dog", "/stock?location=BER-A-01",
                "/stock/DOG-5", "/stock/CAT-2", "/locations/BER-A-01", "/locations/WAW-A-01"):
        response = client.get(url)
        assert response.status_code == 200, (role, url, response.get_data(as_text=True)[:300])
    assert web.client().get("/stock").status_code == 302


def test_unknown_variants_and_locations_are_404_and_bad_filters_name_the_field(web):
    client = web.client("viewer")
    for url, name in (("/stock/NOPE-1", "NOPE-1"), ("/locations/NOWHERE", "NOWHERE")):
        response = client.get(url)
        assert response.status_code == 404 and name in response.get_data(as_text=True), url
    for query, name in (("level=purple", "level"), ("site=XXX", "site"), ("location=NOWHERE", "location")):
        response = client.get("/stock?" + query)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, query
        assert f'aria-invalid="true" aria-describedby="{name}-error"' in page, query
        assert f'<span class="field-error" id="{name}-error">' in page, query


def test_lines_are_coloured_out_low_over_and_ok(web):
    set_reorder(web, "DOG-15", 5, 10)                       # low at or below 5; over above 25
    set_reorder(web, "DOG-5", 5, 10, location="BER-A-02")   # only at BER-A-02
    set_reorder(web, "CAT-2", 3, location="BER-A-02")       # expected there, never stocked: an empty out line
    web.ledger.post([
        Move("receive", sku="DOG-5", location="BER-A-01", qty=100),   # no reorder point here: ok however many
        Move("receive", sku="DOG-5", location="BER-A-02", qty=26),    # 26 > 5 + 2 × 10: over
        Move("receive", sku="DOG-15", location="BER-A-01", qty=5),    # at the point: low
        Move("receive", sku="DOG-15", location="BER-A-02", qty=25),   # at the top of normal: ok
        Move("receive", sku="CAT-2", location="BER-A-01", qty=2),
    ])
    web.ledger.reserve("CAT-2", "BER-A-01", 2)                         # all promised: available 0, out
    client = web.client("viewer")
    page = client.get("/stock").get_data(as_text=True)
    assert rows(page) == {
        ("CAT-2", "BER-A-01"): "out", ("CAT-2", "BER-A-02"): "out",
        ("DOG-15", "BER-A-01"): "low", ("DOG-15", "BER-A-02"): "ok",
        ("DOG-5", "BER-A-01"): "ok", ("DOG-5", "BER-A-02"): "over",
    }
    assert list(rows(page)) == sorted(rows(page))      # SKU, then location order
    for level in ("out", "low", "over", "ok"):
        filtered = rows(client.get(f"/stock?level={level}").get_data(as_text=True))
        assert filtered and set(filtered.values()) == {level}, level
    assert set(rows(client.get("/stock?location=BER-A-02").get_data(as_text=True))) == {
        ("CAT-2", "BER-A-02"), ("DOG-15", "BER-A-02"), ("DOG-5", "BER-A-02")}
    assert set(rows(client.get("/stock?q=dog&level=low").get_data(as_text=True))) == {("DOG-15", "BER-A-01")}
    assert set(rows(client.get("/stock?q=litter").get_data(as_text=True))) == {("CAT-2", "BER-A-01"),
                                                                                ("CAT-2", "BER-A-02")}
    assert rows(client.get("/stock?site=WAW").get_data(as_text=True)) == {}
    # The same rule on the variant page, per location.
    variant = client.get("/stock/DOG-5").get_data(as_text=True)
    assert rows(variant) == {("DOG-5", "BER-A-01"): "ok", ("DOG-5", "BER-A-02"): "over"}
    assert rows(client.get("/products/DOG-15").get_data(as_text=True)) == {("DOG-15", "BER-A-01"): "low",
                                                                          ("DOG-15", "BER-A-02"): "ok"}


@pytest.mark.parametrize("on_hand, reserved, point, qty, level", [
    (0, 0, None, None, "out"), (3, 3, None, None, "out"), (1, 0, None, None, "ok"), (5, 0, 5, None, "low"),
    (6, 0, 5, None, "ok"), (25, 0, 5, 10, "ok"), (26, 0, 5, 10, "over"), (26, 0, None, 10, "ok"),
    (30, 25, 5, 10, "low"),
])
def test_level_rule(on_hand, reserved, point, qty, level):
    assert level_of(on_hand, reserved, point, qty) == level


def test_an_emptied_location_leaves_the_list_unless_stock_belongs_there(web):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=3))
    web.ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=3))
    client = web.client("viewer")
    assert rows(client.get("/stock").get_data(as_text=True)) == {}
    set_reorder(web, "DOG-5", 1, location="BER-A-01")
    assert rows(client.get("/stock").get_data(as_text=True)) == {("DOG-5", "BER-A-01"): "out"}


def test_the_list_pages_by_key_with_a_more_link_and_no_query_per_row(web):
    def statements(url: str) -> int:
        seen = []
        conn = web.db.connection()
        conn.set_trace_callback(seen.append)
        try:
            assert client.get(url).status_code == 200
        finally:
            conn.set_trace_callback(None)
        return len(seen)

    client = web.client("viewer")
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    few = statements("/stock")
    with web.db.atomic("IMMEDIATE"):
        product = web.db.execute_sql("SELECT id FROM product WHERE sku = 'DOG'").fetchone()[0]
        for i in range(80):
            web.db.execute_sql("INSERT INTO variant (product_id, sku, created_at, updated_at) VALUES (?, ?, '', '')",
                               (product, f"BULK-{i:03d}"))
    web.ledger.post([Move("receive", sku=f"BULK-{i:03d}", location="BER-A-01" if i % 2 else "BER-A-02", qty=i + 1)
                     for i in range(80)])
    assert few > 3 and statements("/stock") == few   # the same queries for 1 line as for a full page
    first = client.get("/stock").get_data(as_text=True)
    more = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(more).get_data(as_text=True)
    assert len(rows(first)) == PAGE and len(rows(second)) == 81 - PAGE
    assert not set(rows(first)) & set(rows(second))
    assert 'rel="next"' not in second and ">First page<" in second
    assert {sku for sku, _ in rows(first) | rows(second)} == {f"BULK-{i:03d}" for i in range(80)} | {"DOG-5"}
    filtered = client.get("/stock?q=BULK&location=BER-A-02").get_data(as_text=True)
    assert len(rows(filtered)) == 40 and {loc for _, loc in rows(filtered)} == {"BER-A-02"}


def test_the_page_carries_the_events_cursor_and_the_row_keys_for_live_updates(web):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=2))
    page = web.client("viewer").get("/stock").get_data(as_text=True)
    since = re.search(r'data-live-stock data-since="([^"]+)"', page).group(1)
    assert events.Cursor.parse(since) is not None
    assert since == events.current_cursor(web.db.connection()).text()
    assert '<script src="/static/stock.js"></script>' in page
    assert re.search(r'data-sku="DOG-5" data-location="BER-A-01"[^>]*>.*?data-field="on_hand">2<', page, re.S)
    assert 'id="stock-level-labels"' in page and "<script>" not in page


def test_a_location_lists_each_variant_and_lot_with_expiry(web):
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=4, lot="L1", expiry="2027-01-31"),
                     Move("receive", sku="DOG-5", location="BER-A-01", qty=6, lot="L2", expiry="2027-03-31"),
                     Move("receive", sku="CAT-2", location="BER-A-01", qty=1),
                     Move("receive", sku="DOG-15", location="BER-A-02", qty=1)])
    web.ledger.reserve("DOG-5", "BER-A-01", 1, lot="L1")
    page = web.client("viewer").get("/locations/BER-A-01").get_data(as_text=True)
    lines = re.findall(r'<tr><td><a href="/stock/([^"]+)">[^<]+</a></td>\s*<td>[^<]*</td><td>([^<]*)</td>'
                       r'<td>([^<]*)</td>\s*<td class="num">(\d+)</td><td class="num">(\d+)</td>\s*'
                       r'<td class="num">(\d+)</td>', page)
    assert lines == [("CAT-2", "(no lot)", "", "1", "0", "1"),
                     ("DOG-5", "L1", "2027-01-31", "4", "1", "3"),
                     ("DOG-5", "L2", "2027-03-31", "6", "0", "6")]
    variant = web.client("viewer").get("/stock/DOG-5").get_data(as_text=True)
    assert "L1" in variant and "2027-03-31" in variant and "BER-A-01" in variant


def past_ledger(web, moment: datetime) -> Ledger:
    return Ledger(web.db, SITE, SITE_KEY, now=lambda: moment)


def test_the_chart_has_one_point_per_day_with_the_on_hand_at_its_end(web):
    today = clock.utcnow().astimezone(ZoneInfo("Europe/Berlin")).date()
    noon = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    past_ledger(web, noon - timedelta(days=5)).post(Move("receive", sku="DOG-5", location="BER-A-01", qty=7))
    past_ledger(web, noon - timedelta(days=2)).post(Move("ship", sku="DOG-5", location="BER-A-01", qty=2))
    past_ledger(web, noon - timedelta(days=200)).post(Move("receive", sku="DOG-5", location="BER-A-02", qty=1))
    for url in ("/stock/DOG-5", "/products/DOG-5"):
        page = web.client("viewer").get(url).get_data(as_text=True)
        svg = re.search(r"<svg class=\"stock-chart\".*?</svg>", page, re.S).group(0)
        points = re.findall(r'<circle class="point" data-day="([\d-]+)" data-value="(\d+)"', svg)
        assert len(points) == stock_chart.DAYS
        values = {date.fromisoformat(day): int(value) for day, value in points}
        assert values[today] == 6 and values[today - timedelta(days=2)] == 6
        assert values[today - timedelta(days=3)] == 8 and values[today - timedelta(days=5)] == 8
        assert values[today - timedelta(days=6)] == 1 and values[today - timedelta(days=89)] == 1
        assert "<title" in svg and 'role="img"' in svg and "style=" not in svg


def test_daily_totals_fold_utc_hours_into_local_days(web):
    late = datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc)   # already 11 March in Berlin
    past_ledger(web, late).post(Move("receive", sku="CAT-2", location="BER-A-01", qty=3))
    past_ledger(web, late + timedelta(days=30)).post(Move("receive", sku="CAT-2", location="BER-A-01", qty=1))
    conn = web.db.connection()
    variant = conn.execute("SELECT id FROM variant WHERE sku = 'CAT-2'").fetchone()[0]
    utc = dict(stock_chart.daily_on_hand(conn, variant, today=date(2026, 3, 12), tz="UTC", days=4))
    berlin = dict(stock_chart.daily_on_hand(conn, variant, today=date(2026, 3, 12), tz="Europe/Berlin", days=4))
    assert utc == {date(2026, 3, 9): 0, date(2026, 3, 10): 3, date(2026, 3, 11): 3, date(2026, 3, 12): 3}
    assert berlin == {date(2026, 3, 9): 0, date(2026, 3, 10): 0, date(2026, 3, 11): 3, date(2026, 3, 12): 3}
    assert dict(stock_chart.daily_on_hand(conn, variant, today=date(2026, 3, 12), tz="UTC", days=4,
                                          site="WAW")) == dict.fromkeys(utc, 0)
    svg = stock_chart.render_svg(list(utc.items()), "CAT-2 <on hand>")
    assert svg.count("<circle") == 4 and "CAT-2 &lt;on hand&gt;" in svg


def test_a_rare_level_is_looked_for_a_slice_of_the_catalog_at_a_time(web, monkeypatch):
    from appliance.webapp import pages_stock
    monkeypatch.setattr(pages_stock, "SCAN_VARIANTS", 40)
    with web.db.atomic("IMMEDIATE"):
        product = web.db.execute_sql("SELECT id FROM product WHERE sku = 'DOG'").fetchone()[0]
        for i in range(130):
            web.db.execute_sql("INSERT INTO variant (product_id, sku, reorder_point, created_at, updated_at)"
                               " VALUES (?, ?, 5, '', '')", (product, f"BULK-{i:03d}"))
    web.ledger.post([Move("receive", sku=f"BULK-{i:03d}", location="BER-A-01", qty=3 if i == 97 else 50)
                     for i in range(130)])
    client = web.client("viewer")
    url, found, pages = "/stock?level=low", {}, 0
    while url:
        page = client.get(url).get_data(as_text=True)
        pages += 1
        found |= rows(page)
        link = re.search(r'rel="next" href="([^"]+)">([^<]+)<', page)
        url = link.group(1).replace("&amp;", "&") if link else None
        if url:
            assert link.group(2) == "Keep looking" and "Looked through the SKUs before" in page
    assert found == {("BULK-097", "BER-A-01"): "low"}
    assert pages == 4   # 133 variants, 40 at a time
