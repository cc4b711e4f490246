"""The movement history (/movements): filters, cursor paging, CSV export, and reversal by a manager."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timezone

import pytest
from webtools import csrf
from workers import SITE, SITE_KEY

from appliance.ledger import csv_export, queries
from appliance.ledger.requests import RECORD_FIELDS, Move
from appliance.ledger.service import Ledger
from appliance.webapp import movement_filters
from appliance.webapp.action_forms import new_op_id
from appliance.webapp.movement_filters import MovementFilter

_ROW = re.compile(r'<tr id="m(\d+)"')
_NEXT = re.compile(r'<a class="button primary" rel="next" href="([^"]+)"')
_FLASH = re.compile(r'<p class="flash flash-(\w+)"[^>]*>([^<]*)</p>')
_FIELD_ERROR = re.compile(r'<span class="field-error">([^<]*)</span>')


class At:
    """A `now=` for the ledger that returns whatever moment the test set last."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.moment


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def row_ids(response) -> list[int]:
    assert response.status_code == 200, response.status_code
    return [int(i) for i in _ROW.findall(response.get_data(as_text=True))]


@pytest.fixture
def booked(web):
    """Five movements at known moments; returns {name: movement id}.

    ship_late is booked at 23:30 UTC on 2 March, which is already 3 March in Berlin (the site's time zone).
    """
    at = At()
    ledger = Ledger(web.db, SITE, SITE_KEY, now=at)
    ids = {}

    def post(name, when, move, user):
        at.moment = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
        ids[name] = ledger.post(move, user=user, device="test").ids[0]

    post("receive_dog", "2026-03-02T08:00:00", Move("receive", sku="DOG-5", location="BER-A-01", qty=10,
                                                     ref_type="purchase_order", ref_id="BER-PO-0001"), "mia")
    post("receive_cat", "2026-03-02T08:00:01", Move("receive", sku="CAT-2", location="BER-A-02", qty=4), "sam")
    post("ship_late", "2026-03-02T23:30:00", Move("ship", sku="DOG-5", location="BER-A-01", qty=2,
                                                  ref_type="order", ref_id="A-1"), "sam")
    post("adjust", "2026-03-05T10:00:00", Move("adjust", sku="DOG-5", location="BER-A-01", qty=-1,
                                               reason="damaged"), "mia")
    post("reserve", "2026-03-05T11:00:00", Move("reserve", sku="CAT-2", location="BER-A-02", qty=1), "sam")
    return ids


@pytest.mark.parametrize("query, expected", [
    ("", ["reserve", "adjust", "ship_late", "receive_cat", "receive_dog"]),
    ("sku=DOG-5", ["adjust", "ship_late", "receive_dog"]),
    ("kind=receive", ["receive_cat", "receive_dog"]),
    ("user=sam", ["reserve", "ship_late", "receive_cat"]),
    ("ref=A-1", ["ship_late"]),
    ("ref=purchase_order:BER-PO-0001", ["receive_dog"]),
    ("ref=BER-PO-0001", ["receive_dog"]),
    ("location=BER-A-02", ["reserve", "receive_cat"]),
    ("date_from=2026-03-03", ["reserve", "adjust", "ship_late"]),
    ("date_to=2026-03-02", ["receive_cat", "receive_dog"]),
    ("date_from=2026-03-03&date_to=2026-03-03", ["ship_late"]),
    ("sku=DOG-5&kind=ship&user=sam", ["ship_late"]),
    ("sku=DOG-5&user=vic", []),
])
def test_filters_return_the_matching_movements_newest_first(web, booked, query, expected):
    response = web.client("viewer").get(f"/movements?{query}")
    assert row_ids(response) == [booked[name] for name in expected]


def test_a_row_shows_what_the_movement_did(web, booked):
    page = text(web.client("viewer").get("/movements?sku=DOG-5&kind=ship"))
    row = page[page.index(f'<tr id="m{booked["ship_late"]}"'):page.index("</tr>", page.index("<tbody>"))]
    for shown in ("2026-03-03 00:30:00", "Ship", "DOG-5", "BER-A-01", "-2 on hand", "order", "A-1", "sam"):
        assert shown in row, shown
    adjust = text(web.client("viewer").get("/movements?kind=adjust"))
    assert "Damaged" in adjust


@pytest.mark.parametrize("query, message", [
    ("sku=NOPE-1", "No product has the SKU NOPE-1."),
    ("location=XX-1", "There is no location XX-1."),
    ("kind=stolen", "stolen is not a kind of movement."),
    ("date_from=yesterday", "yesterday is not a date (YYYY-MM-DD)."),
    ("date_from=2026-03-05&date_to=2026-03-01", "The end date is before the start date."),
])
def test_a_filter_that_cannot_match_is_named_and_keeps_what_was_typed(web, booked, query, message):
    response = web.client("viewer").get(f"/movements?{query}")
    assert row_ids(response) == []
    assert _FIELD_ERROR.findall(text(response)) == [message]
    value = query.split("&")[0].split("=")[1]
    assert f'value="{value}"' in text(response)


def _walk(client, url: str) -> list[int]:
    seen = []
    while url:
        response = client.get(url)
        seen += row_ids(response)
        found = _NEXT.search(response.get_data(as_text=True))
        url = html.unescape(found.group(1)) if found else None
    return seen


@pytest.mark.parametrize("query", ["", "location=BER-A-01", "sku=DOG-5", "kind=receive"])
def test_pages_follow_each_other_by_cursor_without_gaps_or_repeats(web, query):
    # One batch: 130 movements with the same timestamp, so the cursor must break ties by id.
    ledger = web.ledger
    ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=1)] * 130)
    ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=1)] * 7)
    ledger.post([Move("receive", sku="CAT-2", location="BER-A-02", qty=1)] * 3)
    expected = [m.id for m in queries.history(web.db.connection(), limit=None)
                if (not query or (query == "location=BER-A-01" and m.location == "BER-A-01")
                    or (query == "sku=DOG-5" and m.sku == "DOG-5") or query == "kind=receive")]
    seen = _walk(web.client("viewer"), f"/movements?{query}")
    assert len(seen) == len(set(seen)) == len(expected)
    assert seen == expected
    assert len(row_ids(web.client("viewer").get(f"/movements?{query}"))) == movement_filters.PAGE_SIZE


def test_the_page_queries_use_the_movement_indexes(web):
    """On a million movements a page must come from an index, in order, not from a scan or a sort."""
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=1)] * 3)
    conn = web.db.connection()
    cases = {
        "movement_ts": MovementFilter(),
        "movement_variant_ts": MovementFilter(sku="DOG-5"),
        "movement_location": MovementFilter(location="BER-A-01"),
        "movement_ref": MovementFilter(ref="order:A-1"),
    }
    cases["movement_ts "] = MovementFilter(since="2026-01-01T00:00:00.000000Z", until="2026-12-31T00:00:00.000000Z")
    for index, found in cases.items():
        for before in (None, 2):
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            try:
                movement_filters.page(conn, found, before)
            finally:
                conn.set_trace_callback(None)
            sql = [s for s in statements if "FROM movement m" in s and "ORDER BY" in s][-1]
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            assert any(f"INDEX {index.strip()}" in line for line in plan), (index, plan)
            assert not any(line.startswith("SCAN m") and "INDEX" not in line for line in plan), (index, plan)
            if index != "movement_ref":   # a reference has a handful of movements: sorting them is free
                assert not any("TEMP B-TREE" in line for line in plan), (index, plan)


def test_csv_export_has_the_header_and_rows_of_appliance_export_for_the_filter(web, booked):
    response = web.client("viewer").get("/movements.csv?kind=receive")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == ",".join(RECORD_FIELDS)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == [booked["receive_cat"], booked["receive_dog"]]
    assert {r["kind"] for r in rows} == {"receive"}
    assert rows[1]["ref_id"] == "BER-PO-0001" and rows[1]["user"] == "mia"
    # Unfiltered, the lines are exactly those `appliance export movements` writes (newest first here).
    everything = web.client("manager").get("/movements.csv").get_data(as_text=True).splitlines()
    out = io.StringIO()
    csv_export.write_movements(web.db.connection(), out)
    reference = out.getvalue().splitlines()
    assert everything[0] == reference[0]
    assert sorted(everything[1:]) == sorted(reference[1:]) and len(everything) == len(reference)


def test_csv_export_shows_costs_only_to_those_who_see_costs(web, booked):
    def costs(role):
        response = web.client(role).get("/movements.csv?kind=receive")
        return [row["unit_cost"] for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))]
    assert costs("purchasing") == ["", "1299"]   # CAT-2 has no cost price; DOG-5 costs 12.99
    assert costs("staff") == costs("viewer") == ["", ""]


def test_csv_export_refuses_a_filter_that_cannot_match(web, booked):
    assert web.client("viewer").get("/movements.csv?date_to=soon").status_code == 400
    assert web.client().get("/movements.csv").status_code == 302   # to the login form


def reverse(client, movement_id: int, reason: str = "booked twice", op_id: str | None = None,
            next_url: str = "/movements"):
    return client.post(f"/movements/{movement_id}/reverse",
                       data={"csrf_token": csrf(client), "op_id": op_id or new_op_id(), "reason": reason,
                             "next": next_url})


def flash_after(client, response) -> list[tuple[str, str]]:
    assert response.status_code == 302, (response.status_code, text(response)[:1000])
    return _FLASH.findall(text(client.get(response.headers["Location"])))


def reversals_of(web, movement_id: int):
    return [m for m in queries.history(web.db.connection(), kind="reversal", limit=None)
            if m.reverses_id == movement_id]


def test_a_manager_reverses_a_movement_once_even_when_the_form_is_sent_twice(web, booked):
    client = web.client("manager")
    op_id = new_op_id()
    first = reverse(client, booked["adjust"], op_id=op_id)
    [(category, message)] = flash_after(client, first)
    [done] = reversals_of(web, booked["adjust"])
    assert category == "success"
    assert message == f"Movement {booked['adjust']} reversed by movement {done.id}."
    assert (done.user, done.device, done.reason, done.d_on_hand) == ("mia", "web", "booked twice", 1)
    [(category, message)] = flash_after(client, reverse(client, booked["adjust"], op_id=op_id))
    assert category == "warning" and message.startswith("Already booked")
    [(category, message)] = flash_after(client, reverse(client, booked["adjust"]))
    assert (category, message) == ("error", f"Movement {booked['adjust']} was already reversed by movement "
                                            f"{done.id}.")
    assert len(reversals_of(web, booked["adjust"])) == 1
    # The list and the movement's page show the reversal; the reverse form is gone.
    listing = text(client.get("/movements?kind=adjust"))
    assert f"reversed by {done.id}" in listing
    assert f'action="/movements/{booked["adjust"]}/reverse"' not in listing
    detail = text(client.get(f"/movements/{booked['adjust']}"))
    assert f"This movement was reversed by movement {done.id}." in detail
    assert f"This movement reverses movement {booked['adjust']}." in text(client.get(f"/movements/{done.id}"))


def test_staff_may_not_reverse(web, booked):
    client = web.client("staff")
    assert reverse(client, booked["adjust"]).status_code == 403
    assert reversals_of(web, booked["adjust"]) == []
    assert "/reverse" not in text(client.get("/movements"))
    assert 'action="/movements/%d/reverse"' % booked["adjust"] in text(web.client("manager").get("/movements"))


@pytest.mark.parametrize("name, reason, expected", [
    ("adjust", "  ", "Give a reason for reversing movement {id}."),
    ("reserve", "wrong", "Movement {id} cannot be reversed: reservations are released and transfers are booked in "
                         "instead."),
    ("receive_cat", "wrong", "Movement {id} cannot be reversed: only 3 of CAT-2 are free at BER-A-02, 4 would "
                             "have to go."),
])
def test_a_refused_reversal_says_why(web, booked, name, reason, expected):
    client = web.client("manager")
    response = reverse(client, booked[name], reason=reason, next_url=f"/movements/{booked[name]}")
    assert flash_after(client, response) == [("error", expected.format(id=booked[name]))]
    assert reversals_of(web, booked[name]) == []


def test_reversing_an_unknown_movement_is_404(web, booked):
    assert reverse(web.client("manager"), 999).status_code == 404
    assert web.client("viewer").get("/movements/999").status_code == 404


def test_the_reverse_form_goes_back_only_to_pages_of_this_box(web, booked):
    response = reverse(web.client("manager"), booked["adjust"], next_url="https://evil.example/")
    assert response.headers["Location"] == f"/movements/{booked['adjust']}"


def test_the_movement_page_shows_the_movements_booked_with_it(web):
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=3)], op_id="batch-1")
    web.ledger.post([Move("transfer_out", sku="DOG-5", location="BER-A-01", to_location="WAW-A-01", qty=1),
                     Move("receive", sku="CAT-2", location="BER-A-02", qty=2)], op_id="batch-2")
    ids = [m.id for m in queries.history(web.db.connection(), limit=None, newest_first=False)]
    page = text(web.client("viewer").get(f"/movements/{ids[1]}"))
    assert "Booked together with" in page and f'href="/movements/{ids[2]}"' in page
    assert "Transfer out" in page and "BER-A-01 → WAW-A-01" in page
