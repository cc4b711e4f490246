"""The dock screen: station list, the full-screen station page, and `POST /dock/<station>/scan`, which hands a
typed or camera-read code to the station desk as a gun would (scan log, session, movements, feedback)."""

from __future__ import annotations

import json
import re

import pytest
from webtools import csrf

from appliance.ledger.models import Barcode, Movement, ScanLog, Variant
from appliance.ledger.requests import Move

GTIN = "4006381333931"


@pytest.fixture
def barcode(web):
    with web.db.atomic("IMMEDIATE"):
        Barcode.create(code=GTIN, variant=Variant.get(Variant.sku == "DOG-5"))
    return GTIN


def scan(client, station: str, code, token: str | None = None, **extra):
    body = {"code": code, **extra}
    return client.post(f"/dock/{station}/scan", json=body,
                       headers={"X-CSRF-Token": token or csrf(client), "Accept": "application/json"})


def test_receiving_by_typed_scans_books_stock_and_logs_each_scan(web, barcode):
    client = web.client("staff")
    token = csrf(client)
    first = scan(client, "dock-1", "CMD-RECEIVE", token)
    assert first.status_code == 200
    assert (first.get_json()["level"], first.get_json()["mode"]) == ("ok", "receive")
    where = scan(client, "dock-1", "BER-A-01", token).get_json()
    assert where["level"] == "ok" and where["prompt"] == "Scan the items to receive into BER-A-01"
    # Typed with a trailing newline, as some keyboard-wedge guns send it.
    booked = scan(client, "dock-1", f"{barcode}\n", token)
    assert booked.status_code == 200
    feedback = booked.get_json()
    assert feedback["level"] == "ok" and feedback["station"] == "dock-1" and not feedback["unresolved"]
    assert len(feedback["movement_ids"]) == 1
    assert feedback["stock"] == [{"sku": "DOG-5", "location": "BER-A-01", "on_hand": 1, "available": 1}]

    movement = Movement.get_by_id(feedback["movement_ids"][0])
    assert (movement.kind, movement.variant.sku, movement.location.code, movement.d_on_hand, movement.device,
            movement.user_login) == ("receive", "DOG-5", "BER-A-01", 1, "web:sam", "sam")
    logged = list(ScanLog.select().where(ScanLog.station == "dock-1").order_by(ScanLog.id))
    assert [row.raw for row in logged] == ["CMD-RECEIVE", "BER-A-01", barcode]
    assert {row.device for row in logged} == {"web:sam"}
    assert logged[-1].id == feedback["scan_id"] and json.loads(logged[-1].feedback) == feedback
    assert json.loads(logged[-1].movement_ids) == feedback["movement_ids"]


def test_an_unknown_code_is_red_and_waits_in_the_scan_log(web):
    client = web.client("manager")
    feedback = scan(client, "dock-2", "NO-SUCH-THING-42", source="camera").get_json()
    assert feedback["level"] == "error" and feedback["unresolved"] is True
    row = ScanLog.get_by_id(feedback["scan_id"])
    assert (row.outcome, row.device, row.station) == ("unresolved", "web-camera:mia", "dock-2")


def test_the_station_page_shows_the_step_the_station_is_at_and_its_last_scans(web, barcode):
    client = web.client("staff")
    token = csrf(client)
    for code in ("CMD-RECEIVE", "BER-A-01", barcode):
        scan(client, "dock-1", code, token)
    page = client.get("/dock/dock-1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-mode="receive"' in html
    assert re.search(r'<p class="prompt" id="prompt">\s*Scan the items to receive into BER-A-01\s*</p>', html)
    assert re.search(r'id="feedback"[^>]*data-level="ok"', html, re.S)
    assert "Received 1 × DOG-5 into BER-A-01" in html
    assert "DOG-5 at BER-A-01: 1 on hand, 1 available" in html
    ids = [int(x) for x in re.findall(r'<li class="scan" data-id="(\d+)"', html)]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    assert re.search(r'data-since="m\d+\.s3\.a"', html)
    assert "<script>" not in html and "style=" not in html and "onclick" not in html
    # A station nobody has used yet starts in lookup.
    fresh = client.get("/dock/dock-9").get_data(as_text=True)
    assert 'data-mode="lookup"' in fresh and "Scan anything to see where it is, or a command" in fresh
    assert "No scans at this station yet." in fresh


def test_the_station_list_names_stations_seen_and_opens_any_valid_name(web):
    client = web.client("staff")
    scan(client, "packing", "CMD-SHIP")
    listing = client.get("/dock")
    assert listing.status_code == 200 and 'href="/dock/packing"' in listing.get_data(as_text=True)
    opened = client.get("/dock?station=%20Dock-3%20")
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/dock/dock-3")
    refused = client.get("/dock?station=dock%201!")
    assert refused.status_code == 400
    assert "dock 1! is not a station name" in refused.get_data(as_text=True)
    assert client.get("/dock/bad%20name").status_code == 404


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_scanning_roles_may_use_the_dock(web, role):
    client = web.client(role)
    assert client.get("/dock").status_code == 200
    assert client.get("/dock/dock-1").status_code == 200
    assert scan(client, "dock-1", "CMD-RECEIVE").status_code == 200


@pytest.mark.parametrize("role", ["viewer", "purchasing"])
def test_other_roles_get_403_and_nothing_is_logged(web, role):
    client = web.client(role)
    assert client.get("/dock").status_code == 403
    assert client.get("/dock/dock-1").status_code == 403
    refused = scan(client, "dock-1", "CMD-RECEIVE")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert ScanLog.select().count() == 0


def test_anonymous_goes_to_the_login_form(web):
    assert web.client().get("/dock/dock-1").status_code == 302


@pytest.mark.parametrize("body, field, says", [
    ("not json", "code", "JSON object"),
    ('["CMD-RECEIVE"]', "code", "JSON object"),
    ('{"code": ""}', "code", "code must be the scanned text"),
    ('{"code": 4006381333931}', "code", "code must be the scanned text"),
    ('{}', "code", "code must be the scanned text"),
    ('{"code": "' + "9" * 1001 + '"}', "code", "1001 characters"),
    ('{"code": "CMD-RECEIVE", "source": "telepathy"}', "source", "telepathy"),
])
def test_bad_bodies_get_400_naming_the_field_and_log_nothing(web, body, field, says):
    client = web.client("staff")
    response = client.post("/dock/dock-1/scan", data=body, content_type="application/json",
                           headers={"X-CSRF-Token": csrf(client)})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field and says in error["message"]
    assert ScanLog.select().count() == 0


def test_a_scan_without_the_csrf_header_is_refused(web):
    client = web.client("staff")
    response = client.post("/dock/dock-1/scan", json={"code": "CMD-RECEIVE"}, headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "csrf_failed"
    assert ScanLog.select().count() == 0


def test_the_station_stream_delivers_its_scans_only(web):
    client = web.client("staff")
    token = csrf(client)
    since = re.search(r'data-since="([^"]+)"', client.get("/dock/dock-1").get_data(as_text=True)).group(1)
    scan(client, "dock-2", "CMD-SHIP", token)       # another station's scan is not for this screen
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=1))
    mine = scan(client, "dock-1", "CMD-COUNT", token).get_json()
    response = client.get(f"/events?topics=scan&station=dock-1&since={since}", buffered=False)
    try:
        received = ""
        for chunk in response.response:
            received += chunk.decode() if isinstance(chunk, bytes) else chunk
            if "event: scan" in received and received.endswith("\n\n"):
                break
    finally:
        response.close()
    events = [block for block in received.split("\n\n") if block.startswith("event: scan")]
    assert len(events) == 1
    fields = dict(line.split(": ", 1) for line in events[0].splitlines())
    data = json.loads(fields["data"])
    assert data["id"] == mine["scan_id"] and data["station"] == "dock-1" and data["raw"] == "CMD-COUNT"
    assert data["feedback"] == mine
    assert re.fullmatch(rf"m\d+\.s{mine['scan_id']}\.a", fields["id"])
