"""POST /api/v1/movements (one, a batch, the local move), its errors, reversal, and the movement history."""

from __future__ import annotations

import pytest
from webtools import token_for

from appliance.ledger import queries
from appliance.ledger.requests import Move


class Api:
    def __init__(self, web, role: str = "manager") -> None:
        self.client = web.app.test_client()
        self.headers = {"Authorization": f"Bearer {token_for(web, role)}"}

    def get(self, url):
        return self.client.get(url, headers=self.headers)

    def post(self, url, body=None, **kw):
        return self.client.post(url, json=body, headers=self.headers, **kw)


@pytest.fixture
def api(web):
    return Api(web)


def on_hand(web, sku: str, location: str) -> int:
    return sum(line.on_hand for line in queries.stock_levels(web.db.connection(), sku=sku, location=location))


def count(web) -> int:
    return web.db.execute_sql("SELECT count(*) FROM movement").fetchone()[0]


def receive(sku="DOG-5", location="BER-A-01", qty=10, **extra):
    return {"kind": "receive", "sku": sku, "location": location, "qty": qty, **extra}


def test_post_one_movement(web, api):
    response = api.post("/api/v1/movements", {"op_id": "po-1", **receive(lot="L7", expiry="2027-05-01",
                                                                          ref_type="po", ref_id="PO-1")})
    assert response.status_code == 201
    body = response.get_json()
    assert body["replayed"] is False
    (movement,) = body["movements"]
    assert movement | {"id": 0, "ts": ""} == {
        "id": 0, "origin": "BER", "epoch": 1, "seq": 1, "op_id": "po-1", "kind": "receive", "sku": "DOG-5",
        "location": "BER-A-01", "to_location": None, "lot": "L7", "expiry": "2027-05-01", "d_on_hand": 10,
        "d_reserved": 0, "d_in_transit": 0, "unit_cost": 1299, "ref_type": "po", "ref_id": "PO-1",
        "reverses_id": None, "reason": None, "note": None, "user": "mia", "device": "api", "ts": ""}
    assert on_hand(web, "DOG-5", "BER-A-01") == 10


def test_post_a_batch_all_or_nothing(web, api):
    response = api.post("/api/v1/movements", {"op_id": "b-1", "movements": [
        receive(qty=5), receive(sku="CAT-2", location="BER-A-02", qty=3),
        {"kind": "ship", "sku": "DOG-5", "location": "BER-A-01", "qty": 2, "ref_id": "SO-1"}]})
    assert response.status_code == 201
    assert [m["kind"] for m in response.get_json()["movements"]] == ["receive", "receive", "ship"]
    assert on_hand(web, "DOG-5", "BER-A-01") == 3
    # The third item cannot be done: nothing of the batch is written, and the answer says which item and why.
    response = api.post("/api/v1/movements", {"op_id": "b-2", "movements": [
        receive(qty=1), receive(sku="CAT-2", location="BER-A-02", qty=1),
        {"kind": "ship", "sku": "DOG-5", "location": "BER-A-01", "qty": 50}]})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"]["available"] == 4 and error["details"]["requested"] == 50
    assert error["details"]["index"] == 2
    assert on_hand(web, "DOG-5", "BER-A-01") == 3 and count(web) == 3


def test_insufficient_stock_carries_what_is_available(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=4))
    web.ledger.reserve("DOG-5", "BER-A-01", 1)
    response = api.post("/api/v1/movements", {"kind": "ship", "sku": "DOG-5", "location": "BER-A-01", "qty": 5})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert (error["code"], error["details"]["available"], error["details"]["sku"]) == (
        "insufficient_stock", 3, "DOG-5")
    assert "index" not in error["details"]


def test_same_op_id_same_request_is_duplicate_op_with_the_earlier_movements(web, api):
    first = api.post("/api/v1/movements", {"op_id": "again", **receive(qty=3)})
    assert first.status_code == 201
    again = api.post("/api/v1/movements", {"op_id": "again", **receive(qty=3)})
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "duplicate_op"
    assert error["details"]["op_id"] == "again"
    assert error["details"]["movements"] == first.get_json()["movements"]
    assert on_hand(web, "DOG-5", "BER-A-01") == 3


def test_same_op_id_other_request_is_op_id_reused(web, api):
    assert api.post("/api/v1/movements", {"op_id": "k", **receive(qty=3)}).status_code == 201
    response = api.post("/api/v1/movements", {"op_id": "k", **receive(qty=4)})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "op_id_reused"
    assert on_hand(web, "DOG-5", "BER-A-01") == 3


def test_every_bad_field_is_named_with_its_item(web, api):
    response = api.post("/api/v1/movements", {"op_id": "", "movements": [
        receive(),
        {"kind": "ship", "sku": 5, "location": "BER-A-01", "qty": "2", "colour": "red"},
        {"kind": "teleport", "sku": "DOG-5", "location": "BER-A-01", "qty": 1},
        {"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": 0, "expiry": "31.12.2027"},
        {"kind": "transfer_out", "sku": "DOG-5", "location": "BER-A-01", "qty": 1},
        "not an object"]})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input"
    fields = error["details"]["fields"]
    assert set(fields) == {"op_id", "movements[1].sku", "movements[1].qty", "movements[1].colour",
                           "movements[2].kind", "movements[3].qty", "movements[4].to_location", "movements[5]"}
    assert "whole number" in fields["movements[1].qty"] and "'2'" in fields["movements[1].qty"]
    assert "teleport" in fields["movements[2].kind"]
    assert "unknown field" in fields["movements[1].colour"]
    assert error["details"]["field"] in fields
    assert count(web) == 0


@pytest.mark.parametrize("body, field", [
    ({"sku": "DOG-5", "location": "BER-A-01", "qty": 1}, "kind"),
    ({"kind": "receive", "location": "BER-A-01", "qty": 1}, "sku"),
    ({"kind": "receive", "sku": "DOG-5", "location": "BER-A-01"}, "qty"),
    ({"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": True}, "qty"),
    ({"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": 1, "unit_cost": -1}, "unit_cost"),
    ({"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": 1, "lot": " bad"}, "lot"),
    ({"kind": "count", "sku": "DOG-5", "location": "BER-A-01", "qty": -1}, "qty"),
    ({"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": 1, "op_id": 7}, "op_id"),
    ({"movements": []}, "movements"),
    ({"movements": [], "kind": "receive"}, "kind"),
])
def test_single_bad_field(web, api, body, field):
    response = api.post("/api/v1/movements", body)
    assert response.status_code == 400, response.get_json()
    details = response.get_json()["error"]["details"]
    assert field in details["fields"], details


@pytest.mark.parametrize("data, headers, message", [
    ("{not json", {"Content-Type": "application/json"}, "not valid JSON"),
    ("kind=receive", {"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type"),
    ("[1, 2]", {"Content-Type": "application/json"}, "JSON object"),
])
def test_malformed_bodies(web, api, data, headers, message):
    response = api.client.post("/api/v1/movements", data=data, headers={**api.headers, **headers})
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_unknown_sku_and_location_are_404(web, api):
    response = api.post("/api/v1/movements", receive(sku="NOPE"))
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_sku")
    response = api.post("/api/v1/movements", receive(location="BER-Z-99"))
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_location")


def test_foreign_location_is_refused(web, api):
    response = api.post("/api/v1/movements", receive(location="WAW-A-01"))
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "foreign_location")


def test_local_move_arrives_at_once(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10, lot="A", expiry="2027-01-01"))
    response = api.post("/api/v1/movements", {"op_id": "mv", "kind": "move", "sku": "DOG-5",
                                              "location": "BER-A-01", "to_location": "BER-A-02", "qty": 4})
    assert response.status_code == 201
    movements = response.get_json()["movements"]
    assert [m["kind"] for m in movements] == ["transfer_out", "transfer_in"]
    assert movements[1]["lot"] == "A" and movements[1]["location"] == "BER-A-02"
    assert on_hand(web, "DOG-5", "BER-A-01") == 6 and on_hand(web, "DOG-5", "BER-A-02") == 4
    transfer = api.get(f"/api/v1/transfers/{movements[0]['ref_id']}").get_json()
    assert (transfer["status"], transfer["qty_received"], transfer["qty_open"]) == ("received", 4, 0)
    in_transit = sum(line.in_transit for line in queries.stock_levels(web.db.connection(), sku="DOG-5"))
    assert in_transit == 0


def test_local_move_to_another_site_is_refused_and_rolled_back(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    response = api.post("/api/v1/movements", {"movements": [
        receive(qty=1),
        {"kind": "move", "sku": "DOG-5", "location": "BER-A-01", "to_location": "WAW-A-01", "qty": 4}]})
    assert response.status_code == 400
    assert "movements[1].to_location" in response.get_json()["error"]["details"]["fields"]
    assert on_hand(web, "DOG-5", "BER-A-01") == 10 and count(web) == 1


def test_local_move_takes_only_its_own_fields(web, api):
    response = api.post("/api/v1/movements", {"kind": "move", "sku": "DOG-5", "location": "BER-A-01",
                                              "to_location": "BER-A-02", "qty": 1, "unit_cost": 5})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"unit_cost"}


def test_transfer_to_another_site_stays_in_transit(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    response = api.post("/api/v1/movements", {"kind": "transfer_out", "sku": "DOG-5", "location": "BER-A-01",
                                              "to_location": "WAW-A-01", "qty": 3})
    assert response.status_code == 201
    code = response.get_json()["movements"][0]["ref_id"]
    transfer = api.get(f"/api/v1/transfers/{code}").get_json()
    assert (transfer["status"], transfer["qty_open"], transfer["to_site"]) == ("in_transit", 3, "WAW")


def test_reverse(web, api):
    posted = web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10)).movements[0]
    response = api.post(f"/api/v1/movements/{posted.id}/reverse", {"reason": "wrong item", "op_id": "rev-1"})
    assert response.status_code == 201
    (reversal,) = response.get_json()["movements"]
    assert (reversal["kind"], reversal["reverses_id"], reversal["d_on_hand"], reversal["user"]) == (
        "reversal", posted.id, -10, "mia")
    assert api.get(f"/api/v1/movements/{posted.id}").get_json()["reversed_by"] == reversal["id"]
    again = api.post(f"/api/v1/movements/{posted.id}/reverse", {"reason": "wrong item", "op_id": "rev-1"})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "duplicate_op")
    assert again.get_json()["error"]["details"]["movements"][0]["id"] == reversal["id"]
    twice = api.post(f"/api/v1/movements/{posted.id}/reverse", {"reason": "again"})
    assert (twice.status_code, twice.get_json()["error"]["code"]) == (409, "not_reversible")


def test_reverse_errors(web, api):
    assert api.post("/api/v1/movements/999/reverse", {"reason": "x"}).status_code == 404
    assert api.post("/api/v1/movements/99999999999999999999/reverse", {"reason": "x"}).status_code == 404
    response = api.post("/api/v1/movements/1/reverse", {"reason": "", "extra": 1})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"reason", "extra"}


def test_history_filters_and_cursor(web, api):
    ledger = web.ledger
    for index in range(7):
        ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1, ref_type="po", ref_id=f"PO-{index}"),
                    user="sam")
    ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=2, ref_id="SO-1", ref_type="order"))
    ledger.post(Move("receive", sku="CAT-2", location="BER-A-02", qty=1))
    page = api.get("/api/v1/movements?sku=DOG-5&limit=3").get_json()
    assert [m["id"] for m in page["items"]] == [8, 7, 6]
    seen = [m["id"] for m in page["items"]]
    while page["next"]:
        assert "sku=DOG-5" in page["next"] and "after_id=" in page["next"]
        page = api.get(page["next"]).get_json()
        seen += [m["id"] for m in page["items"]]
    assert seen == [8, 7, 6, 5, 4, 3, 2, 1]
    assert [m["id"] for m in api.get("/api/v1/movements?kind=ship").get_json()["items"]] == [8]
    assert [m["id"] for m in api.get("/api/v1/movements?user=sam&limit=2").get_json()["items"]] == [7, 6]
    assert [m["id"] for m in api.get("/api/v1/movements?ref=po:PO-3").get_json()["items"]] == [4]
    assert [m["id"] for m in api.get("/api/v1/movements?ref=SO-1").get_json()["items"]] == [8]
    assert [m["id"] for m in api.get("/api/v1/movements?location=BER-A-02").get_json()["items"]] == [9]
    assert api.get("/api/v1/movements?since=2999-01-01").get_json()["items"] == []
    assert len(api.get("/api/v1/movements?until=2999-01-01").get_json()["items"]) == 9


@pytest.mark.parametrize("query, field", [("kind=teleport", "kind"), ("since=yesterday", "since"),
                                           ("limit=0", "limit"), ("after_id=x", "after_id"), ("skus=DOG-5", "skus"),
                                           ("limit=1&limit=2", "limit")])
def test_history_bad_parameters(web, api, query, field):
    response = api.get(f"/api/v1/movements?{query}")
    assert response.status_code == 400
    assert field in response.get_json()["error"]["details"]["fields"]


def test_one_movement_and_404(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    assert api.get("/api/v1/movements/1").get_json()["sku"] == "DOG-5"
    response = api.get("/api/v1/movements/2")
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_movement")


def test_cursor_pages_through_movements_of_one_instant(web, api):
    """A batch is one transaction: its movements share a timestamp, and the cursor still splits them right."""
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=i + 1) for i in range(5)])
    web.ledger.post(Move("receive", sku="CAT-2", location="BER-A-02", qty=1))
    seen, url = [], "/api/v1/movements?limit=2"
    while url:
        page = api.get(url).get_json()
        seen += [m["id"] for m in page["items"]]
        url = page["next"]
    assert seen == [6, 5, 4, 3, 2, 1]
    response = api.get("/api/v1/movements?after_id=77")
    assert response.status_code == 400 and "after_id" in response.get_json()["error"]["details"]["fields"]


@pytest.mark.parametrize("busy", [True, False])
def test_location_filter_includes_transfer_destinations(web, api, monkeypatch, busy):
    from appliance.ledger import queries
    monkeypatch.setattr(queries, "BUSY_LOCATION", 1 if busy else 1000)
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=5))
    web.ledger.transfer("DOG-5", "BER-A-01", "WAW-A-01", 2)
    web.ledger.post(Move("receive", sku="CAT-2", location="BER-A-02", qty=1))
    assert [m["id"] for m in api.get("/api/v1/movements?location=WAW-A-01").get_json()["items"]] == [2]
    assert [m["id"] for m in api.get("/api/v1/movements?location=BER-A-01").get_json()["items"]] == [2, 1]
    assert api.get("/api/v1/movements?location=NOWHERE").get_json()["items"] == []
