"""Locations, stock (now and as of a moment), transfers, reservations and scans through /api/v1."""

from __future__ import annotations

import pytest
from webtools import token_for

from appliance.ledger.requests import Move

EAN = "4006381333931"


class Api:
    def __init__(self, web, role: str = "manager") -> None:
        self.client = web.app.test_client()
        self.headers = {"Authorization": f"Bearer {token_for(web, role)}"}

    def get(self, url):
        return self.client.get(url, headers=self.headers)

    def post(self, url, body=None):
        return self.client.post(url, json=body, headers=self.headers)


@pytest.fixture
def api(web):
    return Api(web)


@pytest.fixture
def stocked(web):
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=10, lot="L1", expiry="2027-01-01"),
                     Move("receive", sku="DOG-5", location="BER-A-01", qty=5, lot="L2", expiry="2027-06-01"),
                     Move("receive", sku="CAT-2", location="BER-A-02", qty=4)])
    return web


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def test_locations(stocked, api):
    body = api.get("/api/v1/locations").get_json()
    assert [(l["code"], l["site"], l["local"]) for l in body["items"]] == [
        ("BER-A-01", "BER", True), ("BER-A-02", "BER", True), ("WAW-A-01", "WAW", False)]
    assert body["total"] == 3
    assert [l["code"] for l in api.get("/api/v1/locations?site=WAW").get_json()["items"]] == ["WAW-A-01"]
    assert api.get("/api/v1/locations?kind=dock").get_json()["items"] == []
    assert error(api.get("/api/v1/locations?kind=shelf")) == (400, "invalid_input")


def test_one_location_with_its_stock(stocked, api):
    location = api.get("/api/v1/locations/BER-A-01").get_json()
    assert (location["code"], location["kind"], location["next"]) == ("BER-A-01", "bin", None)
    assert [(s["sku"], s["on_hand"], s["expiry"]) for s in location["stock"]] == [("DOG-5", 15, "2027-01-01")]
    by_lot = api.get("/api/v1/locations/BER-A-01?by_lot=true").get_json()["stock"]
    assert [(s["lot"], s["on_hand"]) for s in by_lot] == [("L1", 10), ("L2", 5)]
    paged = api.get("/api/v1/locations/BER-A-01?by_lot=true&limit=1").get_json()
    assert len(paged["stock"]) == 1 and "offset=1" in paged["next"]
    assert error(api.get("/api/v1/locations/BER-Z-99")) == (404, "unknown_location")


def test_stock_levels_and_filters(stocked, api):
    items = api.get("/api/v1/stock").get_json()["items"]
    assert [(s["sku"], s["location"], s["on_hand"], s["available"]) for s in items] == [
        ("CAT-2", "BER-A-02", 4, 4), ("DOG-5", "BER-A-01", 15, 15)]
    assert [s["sku"] for s in api.get("/api/v1/stock?sku=DOG-5").get_json()["items"]] == ["DOG-5"]
    assert [s["sku"] for s in api.get("/api/v1/stock?location=BER-A-02").get_json()["items"]] == ["CAT-2"]
    assert [s["sku"] for s in api.get("/api/v1/stock?q=litter").get_json()["items"]] == ["CAT-2"]
    assert api.get("/api/v1/stock?site=WAW").get_json()["items"] == []
    assert [s["lot"] for s in api.get("/api/v1/stock?by_lot=true&sku=DOG-5").get_json()["items"]] == ["L1", "L2"]
    assert [s["sku"] for s in api.get("/api/v1/stock?sort=on_hand").get_json()["items"]] == ["DOG-5", "CAT-2"]
    page = api.get("/api/v1/stock?limit=1").get_json()
    assert len(page["items"]) == 1 and page["next"] == "/api/v1/stock?limit=1&offset=1"
    assert api.get(page["next"]).get_json()["next"] is None


def test_stock_as_of_replays_the_ledger(web, api):
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    before = web.db.execute_sql("SELECT max(ts) FROM movement").fetchone()[0]
    web.ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=4))
    now = api.get("/api/v1/stock?sku=DOG-5").get_json()["items"]
    then = api.get(f"/api/v1/stock?sku=DOG-5&as_of={before}").get_json()
    assert now[0]["on_hand"] == 6
    assert (then["as_of"], [s["on_hand"] for s in then["items"]]) == (before, [10])
    assert api.get("/api/v1/stock?as_of=2000-01-01").get_json()["items"] == []
    assert [s["sku"] for s in api.get(f"/api/v1/stock?as_of={before}&q=dog").get_json()["items"]] == ["DOG-5"]
    response = api.get("/api/v1/stock?as_of=last+week")
    assert error(response) == (400, "invalid_input")
    assert "as_of" in response.get_json()["error"]["details"]["fields"]


def test_stock_bad_parameters(stocked, api):
    response = api.get("/api/v1/stock?limit=5000&sort=price&colour=red&by_lot=maybe")
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"limit", "sort", "colour", "by_lot"}


def test_transfers(stocked, api):
    out = stocked.ledger.transfer("DOG-5", "BER-A-01", "WAW-A-01", 12).movements
    code = out[0].ref_id
    here = stocked.ledger.transfer("CAT-2", "BER-A-02", "BER-A-01", 1).movements[0].ref_id
    stocked.ledger.transfer_in(here, 1, close=True)
    listed = api.get("/api/v1/transfers").get_json()["items"]
    assert [(t["code"], t["status"]) for t in listed] == [(here, "received"), (code, "in_transit")]
    assert [t["code"] for t in api.get("/api/v1/transfers?status=open").get_json()["items"]] == [code]
    assert [t["code"] for t in api.get("/api/v1/transfers?status=received").get_json()["items"]] == [here]
    assert [t["code"] for t in api.get("/api/v1/transfers?sku=CAT-2").get_json()["items"]] == [here]
    assert [t["code"] for t in api.get("/api/v1/transfers?location=WAW-A-01").get_json()["items"]] == [code]
    transfer = api.get(f"/api/v1/transfers/{code}").get_json()
    assert (transfer["qty_sent"], transfer["qty_open"], transfer["from_site"], transfer["to_site"]) == (
        12, 12, "BER", "WAW")
    assert [(m["lot"], m["d_in_transit"]) for m in transfer["movements"]] == [("L1", 10), ("L2", 2)]
    assert error(api.get("/api/v1/transfers/BER-TR-999999")) == (404, "unknown_transfer")
    assert error(api.get("/api/v1/transfers?status=lost")) == (400, "invalid_input")


def test_reserve_and_release(stocked, api):
    response = api.post("/api/v1/reservations", {"sku": "CAT-2", "location": "BER-A-02", "qty": 3, "ref": "SO-7",
                                                 "expires_at": "2030-01-01T00:00:00Z", "op_id": "r-1"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    reservation = body["reservation"]
    assert (reservation["sku"], reservation["qty"], reservation["qty_open"], reservation["status"]) == (
        "CAT-2", 3, 3, "held")
    assert reservation["expires_at"].startswith("2030-01-01T00:00:00")
    assert response.headers["Location"] == f"/api/v1/reservations/{reservation['id']}"
    assert [m["kind"] for m in body["movements"]] == ["reserve"]
    again = api.post("/api/v1/reservations", {"sku": "CAT-2", "location": "BER-A-02", "qty": 3, "ref": "SO-7",
                                              "expires_at": "2030-01-01T00:00:00Z", "op_id": "r-1"})
    assert error(again) == (409, "duplicate_op")
    short = api.post("/api/v1/reservations", {"sku": "CAT-2", "location": "BER-A-02", "qty": 2})
    assert error(short) == (409, "insufficient_stock") and short.get_json()["error"]["details"]["available"] == 1
    assert [r["id"] for r in api.get("/api/v1/reservations?ref=SO-7").get_json()["items"]] == [reservation["id"]]
    assert api.get("/api/v1/reservations?status=released").get_json()["items"] == []
    url = f"/api/v1/reservations/{reservation['id']}/release"
    partly = api.post(url, {"qty": 1})
    assert partly.status_code == 201
    assert partly.get_json()["reservation"]["qty_open"] == 2
    assert error(api.post(url, {"qty": 5})) == (409, "insufficient_stock")
    rest = api.client.post(url, headers=api.headers)     # no body: release all that is left
    assert rest.status_code == 201 and rest.get_json()["reservation"]["status"] == "released"
    assert error(api.post(url, {})) == (409, "reservation_closed")
    assert api.get(f"/api/v1/reservations/{reservation['id']}").get_json()["qty_released"] == 3


def test_reservation_errors(stocked, api):
    response = api.post("/api/v1/reservations", {"sku": "CAT-2", "qty": 0, "ref": 5, "color": 1})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"location", "qty", "ref", "color"}
    assert error(api.post("/api/v1/reservations", {"sku": "NOPE", "location": "BER-A-02", "qty": 1})) == (
        404, "unknown_sku")
    assert error(api.post("/api/v1/reservations/999/release", {})) == (404, "unknown_reservation")
    assert error(api.get("/api/v1/reservations/999")) == (404, "unknown_reservation")
    assert error(api.get("/api/v1/reservations?status=maybe")) == (400, "invalid_input")


def test_a_scan_goes_through_the_station_desk(stocked, api):
    stocked.db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-5'",
                           (EAN,))
    steps = [("CMD-RECEIVE", "ok"), ("BER-A-01", "ok"), (EAN, "ok")]
    for code, level in steps:
        response = api.post("/api/v1/scans", {"station": "dock-1", "code": code})
        assert response.status_code == 200
        feedback = response.get_json()
        assert feedback["level"] == level, feedback
    assert feedback["movement_ids"] and "Received 1" in feedback["message"]
    assert feedback["stock"][0] == {"sku": "DOG-5", "location": "BER-A-01", "on_hand": 16, "available": 16}
    log = api.get("/api/v1/scans?station=dock-1").get_json()["items"]
    assert [entry["raw"] for entry in log] == [EAN, "BER-A-01", "CMD-RECEIVE"]
    assert log[0]["device"] == "api:mia" and log[0]["movement_ids"] == feedback["movement_ids"]
    booked = api.get(f"/api/v1/movements/{feedback['movement_ids'][0]}").get_json()
    assert booked["user"] == "mia"   # the token's user, as on the dock screen
    assert api.get("/api/v1/scans?station=dock-2").get_json()["items"] == []


def test_a_refused_scan_is_feedback_not_an_http_error(stocked, api):
    api.post("/api/v1/scans", {"station": "dock-1", "code": "CMD-SHIP"})
    api.post("/api/v1/scans", {"station": "dock-1", "code": "BER-A-02"})
    response = api.post("/api/v1/scans", {"station": "dock-1", "code": "9501101530003"})
    assert response.status_code == 200
    assert response.get_json()["level"] in ("warning", "error")
    unresolved = api.get("/api/v1/scans?unresolved=true").get_json()["items"]
    assert [entry["raw"] for entry in unresolved] == ["9501101530003"]


def test_scan_errors(stocked, api):
    response = api.post("/api/v1/scans", {"station": "Dock 1", "code": "", "device": "x"})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"station", "code", "device"}
    assert error(Api(stocked, "viewer").post("/api/v1/scans", {"station": "dock-1", "code": "CMD-RECEIVE"})) == (
        403, "forbidden")
