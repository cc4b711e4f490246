"""The fast lane for POST /api/v1/movements (webapp/api/fast_post.py): it answers exactly what the Flask view
would for the requests it takes, and hands every other request to the view with its body intact."""

from __future__ import annotations

import io
import json

import pytest
from webtools import token_for

from appliance.ledger import queries
from appliance.webapp.api.fast_post import FastPostLane

PATH = "/api/v1/movements"


class Spy:
    """Stands in for the Flask app behind the lane: records what reached it, then lets Flask answer."""

    def __init__(self, lane: FastPostLane) -> None:
        self.flask = lane.inner
        self.bodies: list[bytes] = []

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if not length:   # a chunked body: left for Flask to read
                self.bodies.append(None)
                return self.flask(environ, start_response)
            body = environ["wsgi.input"].read(length)
            self.bodies.append(body)
            environ["wsgi.input"] = io.BytesIO(body)
        return self.flask(environ, start_response)


@pytest.fixture
def lane(web):
    lane = web.app.wsgi_app
    assert isinstance(lane, FastPostLane)
    spy = Spy(lane)
    lane.inner = spy
    yield spy
    lane.inner = spy.flask


@pytest.fixture
def restore_lane(web):
    lane = web.app.wsgi_app
    yield
    web.app.wsgi_app = lane


def bearer(web, role="manager"):
    return {"Authorization": f"Bearer {token_for(web, role)}"}


def on_hand(web, sku, location):
    return sum(line.on_hand for line in queries.stock_levels(web.db.connection(), sku=sku, location=location))


def count(web) -> int:
    return web.db.execute_sql("SELECT count(*) FROM movement").fetchone()[0]


def receive(qty=10, **extra):
    return {"kind": "receive", "sku": "DOG-5", "location": "BER-A-01", "qty": qty, **extra}


def test_a_good_post_is_answered_by_the_lane_as_the_view_would(web, lane, restore_lane):
    client = web.app.test_client()
    fast = client.post(PATH, json={"op_id": "f-1", **receive(lot="L1", expiry="2027-01-01")}, headers=bearer(web))
    assert lane.bodies == []   # the view never saw it
    # The same request through the view alone (the lane set aside), for comparison.
    web.app.wsgi_app = lane.flask
    slow = client.post(PATH, json={"op_id": "f-2", **receive(lot="L1", expiry="2027-01-01")}, headers=bearer(web))
    assert fast.status_code == slow.status_code == 201
    ignore = {"id", "seq", "op_id", "ts"}
    strip = lambda body: {**body, "movements": [{k: v for k, v in m.items() if k not in ignore}  # noqa: E731
                                                 for m in body["movements"]]}
    assert strip(fast.get_json()) == strip(slow.get_json())
    assert fast.get_json()["movements"][0]["op_id"] == "f-1"
    assert list(fast.get_json()) == list(slow.get_json())   # same key order in the text too
    for header in ("Content-Type", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                   "Content-Security-Policy", "Cache-Control"):
        assert fast.headers[header] == slow.headers[header], header
    assert on_hand(web, "DOG-5", "BER-A-01") == 20


def test_costs_only_for_roles_that_see_them(web, lane):
    client = web.app.test_client()
    manager = client.post(PATH, json=receive(), headers=bearer(web, "manager")).get_json()
    staff = client.post(PATH, json=receive(), headers=bearer(web, "staff")).get_json()
    assert lane.bodies == []
    assert manager["movements"][0]["unit_cost"] == 1299
    assert "unit_cost" not in staff["movements"][0]


def test_a_batch_with_a_local_move_takes_the_lane(web, lane):
    client = web.app.test_client()
    response = client.post(PATH, headers=bearer(web), json={"op_id": "b-1", "movements": [
        receive(qty=6), {"kind": "move", "sku": "DOG-5", "location": "BER-A-01", "to_location": "BER-A-02",
                         "qty": 2}]})
    assert response.status_code == 201 and lane.bodies == []
    assert on_hand(web, "DOG-5", "BER-A-01") == 4 and on_hand(web, "DOG-5", "BER-A-02") == 2


@pytest.mark.parametrize("case", ["cookie", "bad token", "not json", "not an object", "bad field", "forbidden kind",
                                  "wrong content type", "no length", "too big"])
def test_everything_else_reaches_the_view_with_its_body(web, lane, case):
    """Each of these is answered by the view, which got the body the client sent."""
    headers = bearer(web, "viewer" if case == "forbidden kind" else "manager")
    body = json.dumps(receive()).encode()
    content_type = "application/json"
    client = web.app.test_client()
    if case == "cookie":
        client, headers = web.client("manager"), {}
    elif case == "bad token":
        headers = {"Authorization": "Bearer wh_not-a-token"}
    elif case == "not json":
        body = b'{"kind": "receive",'
    elif case == "not an object":
        body = b"[1, 2]"
    elif case == "bad field":
        body = json.dumps(receive(qty="ten")).encode()
    elif case == "wrong content type":
        content_type = "text/plain"
    elif case == "too big":
        body = json.dumps(receive(note="x" * 70_000)).encode()
    if case == "no length":
        # A chunked upload has no Content-Length: the lane does not guess, the view reads it.
        # (gunicorn passes it as a terminated stream with no CONTENT_LENGTH).
        response = client.post(PATH, headers={**headers, "Transfer-Encoding": "chunked"},
                               content_type=content_type, input_stream=io.BytesIO(body),
                               environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    else:
        response = client.post(PATH, data=body, headers=headers, content_type=content_type)
    expected = {"cookie": 400, "bad token": 401, "not json": 400, "not an object": 400, "bad field": 400,
                "forbidden kind": 403, "wrong content type": 400, "no length": 201, "too big": 400}[case]
    assert response.status_code == expected, response.get_data(as_text=True)
    if case != "cookie":   # the cookie client's CSRF refusal comes before the body is read
        assert lane.bodies == [None if case == "no length" else body]
    if expected >= 400:
        assert "error" in response.get_json()


def test_a_refused_post_is_rolled_back_and_answered_once_by_the_view(web, lane):
    client = web.app.test_client()
    client.post(PATH, json=receive(qty=3), headers=bearer(web))
    before = count(web)
    response = client.post(PATH, json={"kind": "ship", "sku": "DOG-5", "location": "BER-A-01", "qty": 5},
                           headers=bearer(web))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_stock" and error["details"]["available"] == 3
    assert len(lane.bodies) == 1 and count(web) == before and on_hand(web, "DOG-5", "BER-A-01") == 3


def test_a_replayed_op_id_is_a_duplicate_from_the_view(web, lane):
    client = web.app.test_client()
    first = client.post(PATH, json={"op_id": "same", **receive(qty=2)}, headers=bearer(web))
    again = client.post(PATH, json={"op_id": "same", **receive(qty=2)}, headers=bearer(web))
    assert first.status_code == 201 and again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "duplicate_op"
    assert error["details"]["movements"][0]["id"] == first.get_json()["movements"][0]["id"]
    assert on_hand(web, "DOG-5", "BER-A-01") == 2 and len(lane.bodies) == 1


def test_a_disabled_users_token_is_refused(web, lane):
    client = web.app.test_client()
    headers = bearer(web, "staff")
    web.db.execute_sql("UPDATE app_user SET active = 0 WHERE login = 'sam'")
    response = client.post(PATH, json=receive(), headers=headers)
    assert response.status_code == 401 and len(lane.bodies) == 1
    assert on_hand(web, "DOG-5", "BER-A-01") == 0


def test_other_paths_pass_through(web, lane):
    client = web.app.test_client()
    assert client.get(PATH, headers=bearer(web)).status_code == 200
    assert client.get("/healthz").status_code == 200
