"""The booking forms (/book/...): who may book what, what lands in the ledger, double submits, refusals."""

from __future__ import annotations

import html
import re

import pytest
from webtools import ROLES, USERS, csrf
from workers import FOREIGN_LOCATION

from appliance.access.roles import ADJUST_REASONS, allowed
from appliance.ledger import queries
from appliance.ledger.requests import Move
from appliance.webapp.action_forms import ACTIONS, PERMISSION, REASON_LABELS

_OP_ID = re.compile(r'name="op_id" value="([^"]+)"')
_FIELD_ERROR = re.compile(r'<span class="field-error" id="(\w+)-error"[^>]*>([^<]*)</span>')
_FLASH = re.compile(r'<p class="flash flash-(\w+)"[^>]*>([^<]*)</p>')


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def form(client, action: str, query: str = "") -> dict[str, str]:
    """The hidden fields of a freshly drawn form: the op_id it was made with and the CSRF token."""
    response = client.get(f"/book/{action}{query}")
    assert response.status_code == 200, response.status_code
    return {"op_id": _OP_ID.search(response.get_data(as_text=True)).group(1), "csrf_token": csrf(client)}


def book(client, action: str, hidden: dict[str, str] | None = None, **fields):
    data = dict(hidden or form(client, action))
    data.update({name: str(value) for name, value in fields.items()})
    return client.post(f"/book/{action}", data=data)


def field_errors(response) -> dict[str, str]:
    return dict(_FIELD_ERROR.findall(page_text(response)))


def flashes(client, response) -> list[tuple[str, str]]:
    assert response.status_code == 302, (response.status_code, page_text(response)[:1500])
    return _FLASH.findall(page_text(client.get(response.headers["Location"])))


def level(web, sku: str, location: str) -> tuple[int, int, int]:
    lines = queries.stock_levels(web.db.connection(), sku=sku, location=location)
    return (sum(x.on_hand for x in lines), sum(x.reserved for x in lines), sum(x.in_transit for x in lines))


def movements(web, **filters):
    return queries.history(web.db.connection(), limit=None, newest_first=False, **filters)


def stock_up(web, qty: int = 10, sku: str = "DOG-5", location: str = "BER-A-01") -> None:
    web.ledger.post(Move("receive", sku=sku, location=location, qty=qty))


# What each action is given, and what the ledger must show afterwards: (fields, check(web, login)).
def _check_receive(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.sku, m.location, m.d_on_hand, m.device, m.ref_type, m.ref_id) == \
        ("receive", "DOG-15", "BER-A-01", 4, "web", "purchase_order", "BER-PO-0007")
    assert level(web, "DOG-15", "BER-A-01") == (4, 0, 0)


def _check_ship(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.d_on_hand, m.ref_type, m.ref_id, m.note) == ("ship", -3, "order", "A-100", "by hand")
    assert level(web, "DOG-5", "BER-A-01") == (7, 0, 0)


def _check_move(web, login):
    kinds = [m.kind for m in movements(web, user=login)]
    assert kinds == ["transfer_out", "transfer_in"]
    assert level(web, "DOG-5", "BER-A-01") == (6, 0, 0)
    assert level(web, "DOG-5", "BER-A-02") == (4, 0, 0)


def _check_transfer(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.location, m.to_location, m.d_on_hand, m.d_in_transit) == \
        ("transfer_out", "BER-A-01", FOREIGN_LOCATION, -2, 2)
    assert level(web, "DOG-5", FOREIGN_LOCATION) == (0, 0, 2)


def _check_adjust(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.d_on_hand, m.reason) == ("adjust", -2, "damaged")
    assert level(web, "DOG-5", "BER-A-01") == (8, 0, 0)


def _check_reserve(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.d_reserved) == ("reserve", 5)
    assert level(web, "DOG-5", "BER-A-01") == (10, 5, 0)
    assert web.db.execute_sql("SELECT ref FROM reservation").fetchone()[0] == "A-200"


def _check_release(web, login):
    [m] = movements(web, user=login)
    assert (m.kind, m.d_reserved) == ("release", -2)
    assert level(web, "DOG-5", "BER-A-01") == (10, 4, 0)


CASES = {
    "receive": (dict(sku="DOG-15", location="BER-A-01", qty=4, ref="BER-PO-0007"), _check_receive),
    "ship": (dict(sku="DOG-5", location="BER-A-01", qty=3, ref="A-100", note="by hand"), _check_ship),
    "move": (dict(sku="DOG-5", location="BER-A-01", to_location="BER-A-02", qty=4), _check_move),
    "transfer": (dict(sku="DOG-5", location="BER-A-01", to_location=FOREIGN_LOCATION, qty=2), _check_transfer),
    "adjust": (dict(sku="DOG-5", location="BER-A-01", qty=-2, reason="damaged"), _check_adjust),
    "reserve": (dict(sku="DOG-5", location="BER-A-01", qty=5, ref="A-200"), _check_reserve),
    "release": (dict(qty=2), _check_release),
}


def test_every_action_has_a_case_and_every_adjust_reason_a_label():
    assert set(CASES) == set(ACTIONS)
    assert set(REASON_LABELS) == set(ADJUST_REASONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_each_role_books_what_it_may_and_gets_403_for_the_rest(web, action, role):
    stock_up(web)
    fields, check = CASES[action]
    fields = dict(fields)
    if action == "release":
        held = web.ledger.reserve("DOG-5", "BER-A-01", 6, ref="A-300")
        fields["reservation"] = held.movements[0].ref_id
    client = web.client(role)
    if not allowed(role, PERMISSION[action]):
        assert client.get(f"/book/{action}").status_code == 403
        response = client.post(f"/book/{action}", data={"csrf_token": csrf(client), **fields})
        assert response.status_code == 403
        assert movements(web, user=USERS[role]) == []
        return
    response = book(client, action, **fields)
    [(category, message)] = flashes(client, response)
    assert category == "success", message
    check(web, USERS[role])
    assert "BER-A-01 now has" in message


def test_the_book_page_offers_only_the_actions_of_the_role(web):
    page = page_text(web.client("staff").get("/book"))
    for action in ("receive", "ship", "move", "transfer", "reserve", "release"):
        assert f'href="/book/{action}"' in page
    assert 'href="/book/adjust"' not in page
    page = page_text(web.client("purchasing").get("/book"))
    assert 'href="/book/receive"' in page and 'href="/book/ship"' not in page
    assert web.client("viewer").get("/book").status_code == 403
    assert web.client().get("/book").status_code == 302   # to the login form


def test_a_double_submit_books_once_and_says_already_booked(web):
    client = web.client("staff")
    hidden = form(client, "receive")
    first = book(client, "receive", hidden, sku="DOG-5", location="BER-A-01", qty=5)
    [(category, _)] = flashes(client, first)
    assert category == "success"
    again = book(client, "receive", hidden, sku="DOG-5", location="BER-A-01", qty=5)
    [(category, message)] = flashes(client, again)
    assert category == "warning" and "Already booked" in message
    assert len(movements(web, kind="receive")) == 1
    assert level(web, "DOG-5", "BER-A-01") == (5, 0, 0)
    # The next form is a new one: it books again.
    third = book(client, "receive", sku="DOG-5", location="BER-A-01", qty=5)
    assert flashes(client, third)[0][0] == "success"
    assert level(web, "DOG-5", "BER-A-01") == (10, 0, 0)


def test_a_double_submitted_move_books_one_pair(web):
    stock_up(web)
    client = web.client("staff")
    hidden = form(client, "move")
    for _ in range(2):
        book(client, "move", hidden, sku="DOG-5", location="BER-A-01", to_location="BER-A-02", qty=3)
    assert [m.kind for m in movements(web)] == ["receive", "transfer_out", "transfer_in"]
    assert level(web, "DOG-5", "BER-A-02") == (3, 0, 0)


def test_reusing_a_used_form_for_other_values_is_refused_with_a_fresh_form(web):
    client = web.client("staff")
    hidden = form(client, "receive")
    book(client, "receive", hidden, sku="DOG-5", location="BER-A-01", qty=5)
    response = book(client, "receive", hidden, sku="DOG-5", location="BER-A-01", qty=6)
    assert response.status_code == 409
    text = page_text(response)
    assert "already used for a different booking" in text
    assert _OP_ID.search(text).group(1) != hidden["op_id"]
    assert 'value="6"' in text
    assert level(web, "DOG-5", "BER-A-01") == (5, 0, 0)


def test_insufficient_stock_redraws_the_form_with_the_available_quantity_and_the_typed_values(web):
    stock_up(web, 5)
    client = web.client("staff")
    hidden = form(client, "ship")
    response = book(client, "ship", hidden, sku="DOG-5", location="BER-A-01", qty=9, ref="A-77", note="urgent")
    assert response.status_code == 409
    assert field_errors(response) == {"qty": "Only 5 available at BER-A-01; 9 requested."}
    text = page_text(response)
    for kept in ('value="DOG-5"', 'value="9"', 'value="A-77"', 'value="urgent"',
                 '<option value="BER-A-01" selected>'):
        assert kept in text, kept
    # Nothing was written, so the same form may be corrected and sent again.
    assert _OP_ID.search(text).group(1) == hidden["op_id"]
    assert len(movements(web, kind="ship")) == 0
    fixed = book(client, "ship", hidden, sku="DOG-5", location="BER-A-01", qty=5, ref="A-77")
    assert flashes(client, fixed)[0][0] == "success"
    assert level(web, "DOG-5", "BER-A-01") == (0, 0, 0)


def test_reserved_units_are_not_available_to_ship(web):
    stock_up(web, 5)
    web.ledger.reserve("DOG-5", "BER-A-01", 4, ref="A-1")
    response = book(web.client("staff"), "ship", sku="DOG-5", location="BER-A-01", qty=2)
    assert field_errors(response) == {"qty": "Only 1 available at BER-A-01; 2 requested."}


@pytest.mark.parametrize("fields, status, errors", [
    (dict(sku="DOG-5", location="BER-A-01", qty=3), 400, {"reason": "Pick the reason for the adjustment."}),
    (dict(sku="DOG-5", location="BER-A-01", qty=3, reason="because"), 400,
     {"reason": "Pick the reason for the adjustment."}),
    (dict(sku="DOG-5", location="BER-A-01", qty=0, reason="found"), 400,
     {"qty": "Enter a quantity other than 0: positive adds stock, negative removes it."}),
    (dict(sku="DOG-5", location="BER-A-01", qty=-11, reason="lost"), 409,
     {"qty": "Only 10 on hand at BER-A-01; 11 requested."}),
])
def test_adjust_needs_a_reason_and_a_signed_quantity(web, fields, status, errors):
    stock_up(web)
    response = book(web.client("manager"), "adjust", **fields)
    assert response.status_code == status
    assert field_errors(response) == errors
    assert movements(web, kind="adjust") == []


def test_adjust_offers_every_reason_with_a_label(web):
    text = page_text(web.client("manager").get("/book/adjust"))
    for code, label in (("damaged", "Damaged"), ("lost", "Lost"), ("found", "Found"),
                        ("count_correction", "Count correction"), ("expired", "Expired"), ("theft", "Theft")):
        assert f'<option value="{code}" >{label}</option>' in text, code


@pytest.mark.parametrize("action, fields, status, errors", [
    ("receive", dict(sku="NOPE-1", location="BER-A-01", qty=1), 404, {"sku": "No product has the SKU NOPE-1."}),
    ("receive", dict(sku="DOG-5", location="BER-A-01", qty="3.5"), 400, {"qty": "3.5 is not a whole number."}),
    ("receive", dict(sku="DOG-5", location="BER-A-01", qty="0"), 400, {"qty": "Enter a quantity of at least 1."}),
    ("receive", dict(sku="DOG-5", location="BER-A-01", qty=""), 400, {"qty": "Enter the quantity."}),
    ("receive", dict(sku="", location="", qty=1), 400, {"sku": "Enter the SKU.", "location": "Pick the location."}),
    ("receive", dict(sku="DOG-5", location=FOREIGN_LOCATION, qty=1), 409,
     {"location": "WAW-A-01 belongs to site WAW; this box books only its own locations."}),
    ("receive", dict(sku="DOG-5", location="BER-Z-99", qty=1), 404, {"location": "There is no location BER-Z-99."}),
    ("receive", dict(sku="DOG-5", location="BER-A-01", qty=1, expiry="31.12.2026"), 400,
     {"expiry": "31.12.2026 is not a date (YYYY-MM-DD)."}),
    ("receive", dict(sku="DOG-5", location="BER-A-01", qty=1, unit_cost="12,345"), 400,
     {"unit_cost": "12,345 is not an amount of money (write e.g. 12.50)."}),
    ("move", dict(sku="DOG-5", location="BER-A-01", to_location=FOREIGN_LOCATION, qty=1), 400,
     {"to_location": "Pick a location of this site."}),
    ("move", dict(sku="DOG-5", location="BER-A-01", to_location="BER-A-01", qty=1), 400,
     {"to_location": "Pick a destination other than the source."}),
    ("transfer", dict(sku="DOG-5", location="BER-A-01", to_location="BER-A-02", qty=1), 400,
     {"to_location": "Pick a location of another site."}),
    ("reserve", dict(sku="DOG-5", location="BER-A-01", qty=1, expires_at="2020-01-01T10:00"), 400,
     {"expires_at": "That time has passed; pick a time in the future or leave it empty."}),
    ("release", dict(reservation="", qty=1), 400, {"reservation": "Pick the reservation to release."}),
    ("release", dict(reservation="999", qty=1), 404,
     {"reservation": "This reservation is no longer held; pick another one."}),
])
def test_bad_input_is_named_next_to_its_field_and_books_nothing(web, action, fields, status, errors):
    stock_up(web)
    before = len(movements(web))
    response = book(web.client("manager"), action, **fields)
    assert response.status_code == status
    assert field_errors(response) == errors
    assert len(movements(web)) == before


def test_a_form_without_its_op_id_is_refused(web):
    client = web.client("staff")
    response = client.post("/book/receive", data={"csrf_token": csrf(client), "sku": "DOG-5",
                                                  "location": "BER-A-01", "qty": "1"})
    assert response.status_code == 400
    assert "reload the page" in page_text(response)
    assert movements(web) == []


def test_unit_cost_is_set_by_those_who_see_costs_and_ignored_from_others(web):
    manager, staff = web.client("manager"), web.client("staff")
    assert 'name="unit_cost"' in page_text(manager.get("/book/receive"))
    assert 'name="unit_cost"' not in page_text(staff.get("/book/receive"))
    book(manager, "receive", sku="DOG-5", location="BER-A-01", qty=1, unit_cost="12,50")
    book(staff, "receive", sku="DOG-5", location="BER-A-01", qty=1, unit_cost="0.01")
    costs = {m.user: m.unit_cost for m in movements(web, kind="receive")}
    assert costs == {"mia": 1250, "sam": 1299}   # the variant's cost price for staff


def test_receive_with_lot_and_expiry(web):
    client = web.client("staff")
    flashes(client, book(client, "receive", sku="DOG-5", location="BER-A-01", qty=3, lot="L-42",
                         expiry="2027-05-31"))
    [m] = movements(web)
    assert (m.lot, m.expiry) == ("L-42", "2027-05-31")


def test_reserve_with_an_expiry_time_in_the_site_time_zone(web):
    stock_up(web)
    client = web.client("staff")
    flashes(client, book(client, "reserve", sku="DOG-5", location="BER-A-01", qty=2, expires_at="2099-07-01T12:00"))
    # Berlin is UTC+2 in July.
    assert web.db.execute_sql("SELECT expires_at FROM reservation").fetchone()[0] == "2099-07-01T10:00:00.000000Z"


def test_release_lists_held_reservations_and_releases_all_when_no_quantity_is_given(web):
    stock_up(web)
    res_id = web.ledger.reserve("DOG-5", "BER-A-01", 6, ref="A-300").movements[0].ref_id
    client = web.client("staff")
    page = page_text(client.get("/book/release"))
    assert f'<option value="{res_id}"' in page and "A-300" in page
    [(category, message)] = flashes(client, book(client, "release", reservation=res_id, qty=""))
    assert category == "success"
    assert message.startswith(f"Released 6 × DOG-5 at BER-A-01 from reservation {res_id}.")
    assert level(web, "DOG-5", "BER-A-01") == (10, 0, 0)
    assert f'<option value="{res_id}"' not in page_text(client.get("/book/release"))


def test_success_names_the_booking_and_the_new_levels_and_keeps_the_location(web):
    stock_up(web)
    client = web.client("staff")
    response = book(client, "move", sku="DOG-5", location="BER-A-01", to_location="BER-A-02", qty=4)
    assert response.headers["Location"].startswith("/book/move?")
    [(_, message)] = flashes(client, response)
    assert message == ("Moved 4 × DOG-5 from BER-A-01 to BER-A-02. BER-A-01 now has 6 on hand and 6 available. "
                       "BER-A-02 now has 4 on hand and 4 available.")
    fresh = page_text(client.get(response.headers["Location"]))
    assert '<option value="BER-A-01" selected>' in fresh


def test_links_may_fill_in_the_form(web):
    text = page_text(web.client("staff").get("/book/ship?sku=DOG-15&location=BER-A-02"))
    assert 'value="DOG-15"' in text and '<option value="BER-A-02" selected>' in text


def test_the_forms_carry_csrf_and_a_fresh_op_id_each_time(web):
    client = web.client("manager")
    for action in ACTIONS:
        text = page_text(client.get(f"/book/{action}"))
        assert 'name="csrf_token"' in text, action
    first, second = form(client, "receive")["op_id"], form(client, "receive")["op_id"]
    assert first != second
    # Without the CSRF token the post is refused before anything else.
    response = client.post("/book/receive", data={"op_id": first, "sku": "DOG-5", "location": "BER-A-01",
                                                  "qty": "1"})
    assert response.status_code == 400
    assert movements(web) == []


def test_the_transfer_form_lists_other_sites_and_the_move_form_this_site(web):
    client = web.client("staff")
    transfer = page_text(client.get("/book/transfer"))
    move = page_text(client.get("/book/move"))
    to_transfer = transfer[transfer.index('name="to_location"'):]
    to_move = move[move.index('name="to_location"'):]
    assert f'value="{FOREIGN_LOCATION}"' in to_transfer and 'value="BER-A-02"' not in to_transfer
    assert 'value="BER-A-02"' in to_move and f'value="{FOREIGN_LOCATION}"' not in to_move
