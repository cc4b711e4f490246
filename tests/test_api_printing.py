"""GET /printers, the print jobs (list, get, create, retry, cancel) and GET /labels/<label>.png over a real ledger
file and real `capture` printers: every role, errors, and the OpenAPI document checked against the answers."""

from __future__ import annotations

import io

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis import checks
from test_api_stock import Api
from test_pages_labels import PRINTERS, dots, pweb, queue_jobs, set_state  # noqa: F401 - pweb: fixture
from webtools import ROLES, USERS, token_for

from appliance.access.roles import allowed
from appliance.printing import queue

GTIN = "4006381333931"




def job_count(web) -> int:
    return web.db.execute_sql("SELECT count(*) FROM print_job").fetchone()[0]


def add_gtin(web, sku: str, code: str = GTIN) -> None:
    with web.ledger.write() as ops:
        ops.conn.execute("INSERT INTO barcode (code, variant_id, kind) SELECT ?, id, 'gtin' FROM variant"
                         " WHERE sku = ?", (code, sku))


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


# --- printers and jobs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_printers_with_their_open_jobs(pweb, role):
    ids = queue_jobs(pweb, 3)
    set_state(pweb, ids[0], "failed")
    response = Api(pweb, role).get("/api/v1/printers")
    assert response.status_code == 200
    items = {item["name"]: item for item in response.get_json()["items"]}
    assert list(items) == ["dock-zebra", "shelf-300", "receipt"]
    assert items["dock-zebra"] == {
        "name": "dock-zebra", "kind": "capture", "language": "zpl", "dpi": 203, "width_mm": 50.0, "height_mm": 30.0,
        "media": "gap", "default": True, "stations": [], "labels": [],
        "jobs": {"queued": 2, "sending": 0, "failed": 1, "uncertain": 0}, "problem": None}
    assert items["shelf-300"]["labels"] == ["location"] and items["receipt"]["language"] == "escpos"


def test_queue_a_variant_label_and_read_it_back(pweb):
    api = Api(pweb, "staff")
    response = api.post("/api/v1/print-jobs", {"label": "variant", "sku": "DOG-15", "copies": 2})
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["id"] == 1 and job["printer"] == "dock-zebra" and job["label"] == "variant"
    assert job["copies"] == 2 and job["state"] == "queued" and job["created_by"] == USERS["staff"]
    assert job["data"]["sku"] == "DOG-15" and job["data"]["name"] == "Dog food" and job["data"]["variant"] == "15 kg"
    assert job["data"]["currency"] == "EUR" and job["data"]["gtin"] is None
    assert api.get("/api/v1/print-jobs/1").get_json() == job
    assert api.get("/api/v1/print-jobs").get_json() == {"items": [job], "limit": 50, "offset": 0, "next": None}
    assert error_of(api.get("/api/v1/print-jobs/99"), 404)["code"] == "unknown_print_job"


def test_location_and_case_labels_and_the_printer_they_go_to(pweb):
    add_gtin(pweb, "DOG-5")
    api = Api(pweb, "staff")
    location = api.post("/api/v1/print-jobs", {"label": "location", "code": "ber-a-01"}).get_json()
    assert location["printer"] == "shelf-300" and location["data"] == {"code": "BER-A-01", "name": ""}
    case = api.post("/api/v1/print-jobs", {"label": "case", "sku": "DOG-5", "lot": "L-7", "expiry": "2027-05-31",
                                           "count": 12, "printer": "receipt", "station": "dock-1"})
    assert case.status_code == 201, case.get_json()
    body = case.get_json()
    assert body["printer"] == "receipt" and body["station"] == "dock-1"
    assert body["data"]["gtin"] == "0" + GTIN and body["data"]["lot"] == "L-7" and body["data"]["count"] == 12
    assert body["data"]["expiry"] == "2027-05-31"


def test_list_filters_and_pages(pweb):
    queue_jobs(pweb, 3)
    queue_jobs(pweb, 2, printer="shelf-300")
    set_state(pweb, 1, "done")
    api = Api(pweb, "viewer")
    ids = lambda url: [job["id"] for job in api.get(url).get_json()["items"]]  # noqa: E731
    assert ids("/api/v1/print-jobs") == [5, 4, 3, 2, 1]
    assert ids("/api/v1/print-jobs?state=queued&printer=dock-zebra") == [3, 2]
    assert ids("/api/v1/print-jobs?state=done") == [1]
    first = api.get("/api/v1/print-jobs?limit=2").get_json()
    assert [job["id"] for job in first["items"]] == [5, 4]
    assert first["next"] == "/api/v1/print-jobs?limit=2&offset=2"
    assert ids(first["next"]) == [3, 2]
    assert error_of(api.get("/api/v1/print-jobs?state=lost"), 400)["details"]["field"] == "state"
    assert error_of(api.get("/api/v1/print-jobs?colour=red"), 400)["details"]["field"] == "colour"


@pytest.mark.parametrize("body, status, code, field", [
    ({"label": "variant", "sku": "NOPE-1"}, 404, "unknown_sku", None),
    ({"label": "location", "code": "NOWHERE"}, 404, "unknown_location", None),
    ({"label": "variant", "sku": "DOG-5", "printer": "nope"}, 404, "no_printer", None),
    ({"label": "variant", "sku": "DOG-5", "copies": 0}, 400, "invalid_input", "copies"),
    ({"label": "variant", "sku": "DOG-5", "copies": 1001}, 400, "invalid_input", "copies"),
    ({"label": "variant", "sku": "DOG-5", "copies": "3"}, 400, "invalid_input", "copies"),
    ({"sku": "DOG-5"}, 400, "invalid_input", "label"),
    ({"label": "poster", "sku": "DOG-5"}, 400, "invalid_input", "label"),
    ({"label": "variant"}, 400, "invalid_input", "sku"),
    ({"label": "location"}, 400, "invalid_input", "code"),
    ({"label": "case", "sku": "DOG-5"}, 400, "invalid_input", "lot"),
    ({"label": "case", "sku": "CAT-2", "lot": "L1"}, 400, "invalid_input", "sku"),     # no GTIN to print
    ({"label": "sscc", "sku": "DOG-5"}, 400, "invalid_input", "label"),               # needs raw data
    ({"label": "variant", "sku": "DOG-5", "colour": "red"}, 400, "invalid_input", "colour"),
])
def test_refused_jobs_say_why_and_queue_nothing(pweb, body, status, code, field):
    error = error_of(Api(pweb, "staff").post("/api/v1/print-jobs", body), status)
    assert error["code"] == code
    if field:
        assert error["details"]["field"] == field and field in error["details"]["fields"]
    assert job_count(pweb) == 0


def test_a_body_that_is_not_json_is_refused(pweb):
    api = Api(pweb, "staff")
    response = api.client.post("/api/v1/print-jobs", data="label=variant", headers=api.headers)
    assert error_of(response, 400)["details"]["field"] == "body"


SSCC = {"sscc": "00340123450000000", "from_site": "BER", "from_name": "Berlin", "to_site": "WAW",
        "to_name": "Warszawa", "transfer": "BER-TR-000001", "lines": [{"sku": "DOG-5", "qty": 4}], "total_qty": 4}


def test_raw_label_data_is_for_the_manager(pweb):
    created = Api(pweb, "manager").post("/api/v1/print-jobs", {"label": "sscc", "data": SSCC, "copies": 2})
    assert created.status_code == 201, created.get_json()
    job = created.get_json()
    assert job["label"] == "sscc" and job["data"]["sscc"].startswith("00340123450000000") and job["copies"] == 2
    refused = error_of(Api(pweb, "staff").post("/api/v1/print-jobs", {"label": "sscc", "data": SSCC}), 403)
    assert refused["code"] == "forbidden" and refused["details"]["permission"] == "edit_products"
    assert job_count(pweb) == 1


def test_raw_data_the_renderer_refuses_is_a_400_naming_the_field(pweb):
    api = Api(pweb, "manager")
    error = error_of(api.post("/api/v1/print-jobs", {"label": "sscc", "data": {**SSCC, "sscc": "12345"}}), 400)
    assert error["details"]["field"] == "sscc", error
    error = error_of(api.post("/api/v1/print-jobs", {"label": "variant", "data": {"sku": "X"}, "sku": "DOG-5"}), 400)
    assert error["details"]["field"] == "sku"
    error = error_of(api.post("/api/v1/print-jobs", {"label": "variant", "data": [1]}), 400)
    assert error["details"]["field"] == "data"
    assert job_count(pweb) == 0


# --- retry and cancel --------------------------------------------------------------------------------------

def test_cancel_and_retry(pweb):
    ids = queue_jobs(pweb, 3)
    set_state(pweb, ids[1], "done")
    set_state(pweb, ids[2], "uncertain")
    api = Api(pweb, "staff")
    cancelled = api.post(f"/api/v1/print-jobs/{ids[0]}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert api.post(f"/api/v1/print-jobs/{ids[0]}/cancel", {}).get_json()["state"] == "cancelled"   # again: as is
    retried = api.post(f"/api/v1/print-jobs/{ids[0]}/retry", {"printer": "shelf-300"}).get_json()
    assert retried["id"] == ids[0] and retried["state"] == "queued" and retried["printer"] == "shelf-300"
    uncertain = api.post(f"/api/v1/print-jobs/{ids[2]}/retry").get_json()
    assert uncertain["state"] == "queued" and uncertain["partial"] is True
    reprint = api.post(f"/api/v1/print-jobs/{ids[1]}/retry").get_json()
    assert reprint["id"] == 4 and reprint["reprint_of"] == ids[1] and reprint["created_by"] == USERS["staff"]
    assert queue.require(pweb.db.connection(), ids[1]).state == "done"


def test_refused_retries_and_cancels(pweb):
    ids = queue_jobs(pweb, 2)
    set_state(pweb, ids[1], "done")
    api = Api(pweb, "staff")
    assert error_of(api.post(f"/api/v1/print-jobs/{ids[0]}/retry"), 409)["code"] == "job_state"
    assert error_of(api.post(f"/api/v1/print-jobs/{ids[1]}/cancel"), 409)["code"] == "job_state"
    assert error_of(api.post("/api/v1/print-jobs/99/retry"), 404)["code"] == "unknown_print_job"
    assert error_of(api.post("/api/v1/print-jobs/99/cancel"), 404)["code"] == "unknown_print_job"
    assert error_of(api.post(f"/api/v1/print-jobs/{ids[1]}/retry", {"printer": "nope"}), 404)["code"] == "no_printer"
    assert error_of(api.post(f"/api/v1/print-jobs/{ids[1]}/retry", {"copies": 2}), 400)["details"]["field"] == "copies"
    assert error_of(api.post(f"/api/v1/print-jobs/{ids[0]}/cancel", {"why": "x"}), 400)["details"]["field"] == "why"
    assert [job.state for job in queue.listing(pweb.db.connection())] == ["done", "queued"]


# --- who may do what --------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_every_print_write(pweb, role):
    ids = queue_jobs(pweb, 2)
    set_state(pweb, ids[1], "failed")
    api = Api(pweb, role)
    may = allowed(role, "print")
    writes = (("/api/v1/print-jobs", {"label": "variant", "sku": "DOG-5"}, 201),
              (f"/api/v1/print-jobs/{ids[0]}/cancel", {}, 200),
              (f"/api/v1/print-jobs/{ids[1]}/retry", {}, 200))
    for url, body, status in writes:
        response = api.post(url, body)
        if may:
            assert response.status_code == status, (url, response.get_json())
        else:
            assert error_of(response, 403)["code"] == "forbidden", url
    states = [job.state for job in queue.listing(pweb.db.connection())]
    assert states == (["queued", "queued", "cancelled"] if may else ["failed", "queued"])
    for url in ("/api/v1/printers", "/api/v1/print-jobs", f"/api/v1/print-jobs/{ids[0]}",
                "/api/v1/labels/variant.png?sku=DOG-5"):
        assert api.get(url).status_code == 200, (role, url)


def test_a_session_needs_the_csrf_header_to_print(pweb):
    client = pweb.client("staff")
    body = {"label": "variant", "sku": "DOG-5"}
    assert error_of(client.post("/api/v1/print-jobs", json=body), 400)["code"] == "csrf_failed"
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/api/v1/print-jobs", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    assert job_count(pweb) == 1


def test_anonymous_callers_get_401(pweb):
    anonymous = pweb.app.test_client()
    for method, url in (("GET", "/api/v1/printers"), ("GET", "/api/v1/print-jobs"), ("GET", "/api/v1/print-jobs/1"),
                        ("POST", "/api/v1/print-jobs"), ("POST", "/api/v1/print-jobs/1/retry"),
                        ("POST", "/api/v1/print-jobs/1/cancel"), ("GET", "/api/v1/labels/variant.png?sku=DOG-5")):
        assert anonymous.open(url, method=method, json={}).status_code == 401, url


# --- previews ----------------------------------------------------------------------------------------------

def image_of(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/png"
    return Image.open(io.BytesIO(response.data))


def test_label_previews(pweb):
    add_gtin(pweb, "DOG-5")
    api = Api(pweb, "viewer")
    assert image_of(api.get("/api/v1/labels/variant.png?sku=DOG-5")).size == (dots(50, 203), dots(30, 203))
    assert image_of(api.get("/api/v1/labels/location.png?code=BER-A-02")).size == (dots(60, 300), dots(40, 300))
    case = image_of(api.get("/api/v1/labels/case.png?sku=DOG-5&lot=L1&expiry=2027-01-31&count=6&printer=receipt"))
    assert case.size[0] == dots(72, 203) and case.mode == "1"
    assert error_of(api.get("/api/v1/labels/variant.png"), 400)["details"]["field"] == "sku"
    assert error_of(api.get("/api/v1/labels/sscc.png?sku=DOG-5"), 400)["details"]["field"] == "label"
    assert error_of(api.get("/api/v1/labels/variant.png?sku=DOG-5&size=big"), 400)["details"]["field"] == "size"
    assert error_of(api.get("/api/v1/labels/variant.png?sku=NOPE-1"), 404)["code"] == "unknown_sku"
    assert error_of(api.get("/api/v1/labels/variant.png?sku=DOG-5&printer=nope"), 404)["code"] == "no_printer"


def test_without_printers_the_list_is_empty_and_printing_is_a_404(web):
    api = Api(web, "staff")
    assert api.get("/api/v1/printers").get_json() == {"items": []}
    assert error_of(api.post("/api/v1/print-jobs", {"label": "variant", "sku": "DOG-5"}), 404)["code"] == "no_printer"
    assert error_of(api.get("/api/v1/labels/variant.png?sku=DOG-5"), 404)["code"] == "no_printer"


# --- the document against the answers, with printers configured ------------------------------------------------

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]
EXISTING = {"/print-jobs/{job_id}": {"job_id": 1}, "/print-jobs/{job_id}/retry": {"job_id": 2},
            "/print-jobs/{job_id}/cancel": {"job_id": 1}}


def test_the_printing_operations_conform_to_the_document(pweb):
    """schemathesis' requests against the document, with printers configured so that jobs are created and their
    answers checked against the PrintJob schema (tests/test_api_openapi.py runs the whole API without printers)."""
    add_gtin(pweb, "DOG-5")
    ids = queue_jobs(pweb, 2)
    set_state(pweb, ids[1], "done")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", pweb.app)
    headers = {"Authorization": f"Bearer {token_for(pweb, 'manager')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    chosen = [op for op in operations if op.path.startswith(("/printers", "/print-jobs", "/labels/"))]
    assert len(chosen) == 7
    for operation in chosen:
        for fixed in ({}, {"path_parameters": EXISTING[operation.path]} if operation.path in EXISTING else None):
            if fixed is None:
                continue

            @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(**fixed))
            def conforms(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            conforms()
    assert job_count(pweb) >= 2
    # And a request written by hand that must succeed, checked the same way.
    created = schema["/print-jobs"]["POST"].Case(body={"label": "variant", "sku": "DOG-5", "copies": 1})
    response = created.call(headers=headers)
    assert response.status_code == 201
    created.validate_response(response, checks=CHECKS)
    assert PRINTERS[0]["name"] == response.json()["printer"]
