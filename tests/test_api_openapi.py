"""The OpenAPI document against the implementation: the same routes, and responses that match the schemas.

schemathesis generates requests from the document and checks each response (status documented, JSON as
the schema says, no server error, auth not ignored) for every GET operation, a bounded number of examples each.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from webtools import token_for

from appliance.access.roles import PERMISSIONS
from appliance.ledger.requests import Move
from appliance.webapp.api.openapi import document

EXAMPLES = 12
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.ignored_auth]
_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>")


def api_views(app) -> dict[tuple[str, str], object]:
    """(method, path as the document writes it) -> view function, for every route under /api/v1."""
    views = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = _CONVERTER.sub(r"{\1}", rule.rule[len("/api/v1"):])
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                views[method, path] = app.view_functions[rule.endpoint]
    return views


def documented(doc: dict) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): operation for path, operations in doc["paths"].items()
            for method, operation in operations.items()}


def test_every_route_is_documented_and_every_documented_path_exists(web):
    assert set(api_views(web.app)) == set(documented(document()))


def test_documented_permissions_are_the_ones_the_views_check(web):
    views = api_views(web.app)
    for key, operation in documented(document()).items():
        permission, view = operation.get("x-permission"), views[key]
        if permission is None:
            assert operation["security"] == [] and not hasattr(view, "permission"), key
        elif permission == "per kind":   # POST /movements: view to enter, then each kind's own permission
            assert view.permission == "view", key
        else:
            assert permission in PERMISSIONS and view.permission == permission, key


def test_the_document_and_the_index_are_public(web):
    anonymous = web.client()
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == document()
    loaded = schemathesis.openapi.from_dict(response.get_json())
    assert {op.ok().method.upper() for op in loaded.get_all_operations()} == {"GET", "POST", "PATCH"}
    index = anonymous.get("/api/v1/").get_json()
    assert {(e["method"], e["path"]) for e in index["endpoints"]} == {
        (method, "/api/v1" + path) for method, path in documented(document())}
    assert index["openapi"] == "/api/v1/openapi.json"
    assert anonymous.get("/api/v1/variants").status_code == 401


@pytest.fixture
def stocked(web):
    """Some of everything, so that the reads return real rows: stock in lots, a transfer, a reservation."""
    ledger = web.ledger
    ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=30, lot="L1", expiry="2027-01-01"),
                 Move("receive", sku="CAT-2", location="BER-A-02", qty=10)], op_id="seed-1", user="mia")
    ledger.transfer("DOG-5", "BER-A-01", "WAW-A-01", 4, op_id="seed-2")
    ledger.reserve("CAT-2", "BER-A-02", 3, ref="SO-1", op_id="seed-3")
    return web


# Path parameters that name something that exists, so the detail schemas are checked against real objects.
EXISTING = {"/variants/{sku}": {"sku": "DOG-5"}, "/products/{sku}": {"sku": "DOG"},
            "/locations/{code}": {"code": "BER-A-01"}, "/transfers/{code}": {"code": "BER-TR-000001"},
            "/movements/{movement_id}": {"movement_id": 1}, "/movements/{movement_id}/reverse": {"movement_id": 2},
            "/reservations/{reservation_id}": {"reservation_id": 1},
            "/reservations/{reservation_id}/release": {"reservation_id": 1}}


def conform(operation, headers, **fixed):

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(**fixed))
    def conforms(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    conforms()


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_operations_conform_to_the_document(stocked, method):
    """Generated requests, random path parameters and existing ones; writes too (they end in 201, 400, 404
    or 409, all documented)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", stocked.app)
    headers = {"Authorization": f"Bearer {token_for(stocked, 'manager')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    chosen = [op for op in operations if op.method.upper() == method]
    assert chosen
    for operation in chosen:
        conform(operation, headers)
        if operation.path in EXISTING:
            conform(operation, headers, path_parameters=EXISTING[operation.path])
