"""Label pages over a real ledger file and real `capture` printers: PNG previews, the print form of the product
and location pages, the print queue with retry and cancel, who may do what."""

from __future__ import annotations

import html
import io
import re

import pytest
import webtools
from PIL import Image
from webtools import ROLES, USERS, csrf
from workers import SITE

from appliance.config import parse_config
from appliance.printing import queue

# Real config entries, through the real loader: a 203 dpi ZPL default, a 300 dpi ZPL printer that claims
# location labels, and an ESC/POS receipt printer. All `capture`: each job's bytes go to a folder.
PRINTERS = [
    {"name": "dock-zebra", "kind": "capture", "path": "printed/dock", "dpi": 203, "width_mm": 50,
     "height_mm": 30, "default": True},
    {"name": "shelf-300", "kind": "capture", "path": "printed/shelf", "dpi": 300, "width_mm": 60,
     "height_mm": 40, "labels": "location"},
    {"name": "receipt", "kind": "capture", "speaks": "escpos", "path": "printed/receipt", "width_mm": 72,
     "height_mm": 60, "media": "continuous"},
]


def dots(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


def make_printing_web(tmp_path, monkeypatch, printers=PRINTERS):
    """webtools.make_web over a config that has `printers` as [[printer]] entries."""
    def config_with_printers(db_path, **web):
        return parse_config({"site": {"id": SITE, "name": "Berlin"}, "database": {"path": str(db_path)},
                             "web": {"advertise": False, **web}, "printer": printers},
                            label="test", base_dir=db_path.parent)
    monkeypatch.setattr(webtools, "web_config", config_with_printers)
    return webtools.make_web(tmp_path)


@pytest.fixture
def pweb(tmp_path, monkeypatch):
    made = make_printing_web(tmp_path, monkeypatch)
    yield made
    made.app.extensions["appliance"].feed.stop()
    made.parts.close()


def jobs(web) -> list[tuple]:
    return web.db.execute_sql("SELECT id, printer, label, copies, state, created_by FROM print_job"
                              " ORDER BY id").fetchall()


def png_of(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    image.load()
    return image


def print_form(client, **values) -> dict:
    return {"csrf_token": csrf(client), "label": "variant", "value": "DOG-5", "copies": "1", **values}


def flashes(page: str) -> list[str]:
    return [(kind, html.unescape(text))
            for kind, text in re.findall(r'<p class="flash flash-(\w+)" role="status">([^<]*)</p>', page)]


# --- previews ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_the_variant_preview_is_a_png_of_the_default_printers_label(pweb, role):
    image = png_of(pweb.client(role).get("/labels/variant/DOG-5.png"))
    assert image.size == (dots(50, 203), dots(30, 203)) == (400, 240)
    assert image.mode == "1"
    # Not a blank label: the name, the SKU and a barcode put black dots on it.
    assert 0.02 < image.histogram()[0] / (400 * 240) < 0.8


def test_a_preview_follows_the_chosen_printer(pweb):
    client = pweb.client("viewer")
    shelf = png_of(client.get("/labels/variant/DOG-5.png?printer=shelf-300"))
    assert shelf.size == (dots(60, 300), dots(40, 300))
    # Location labels are claimed by shelf-300, so that is the default for them.
    assert png_of(client.get("/labels/location/BER-A-01.png")).size == (dots(60, 300), dots(40, 300))
    # ESC/POS paper: the printer's width, as long as the label's flow is.
    assert png_of(client.get("/labels/location/BER-A-01.png?printer=receipt")).size[0] == dots(72, 203)


def test_preview_errors(pweb):
    client = pweb.client("staff")
    assert client.get("/labels/variant/NOPE-1.png").status_code == 404
    assert client.get("/labels/location/NOWHERE.png").status_code == 404
    unknown = client.get("/labels/variant/DOG-5.png?printer=nope")
    assert unknown.status_code == 404 and unknown.mimetype == "text/plain"
    assert "there is no printer 'nope'" in unknown.get_data(as_text=True)
    anonymous = pweb.client().get("/labels/variant/DOG-5.png")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_without_a_printer_the_preview_says_so_and_the_product_page_only_hints(web):
    response = web.client("staff").get("/labels/variant/DOG-5.png")
    assert response.status_code == 404 and response.mimetype == "text/plain"
    assert "no printer is configured" in response.get_data(as_text=True)
    staff_page = web.client("staff").get("/products/DOG-5").get_data(as_text=True)
    manager_page = web.client("manager").get("/products/DOG-5").get_data(as_text=True)
    assert 'id="label-card"' not in staff_page and 'id="label-card"' not in manager_page
    assert "No label printer is configured" in manager_page
    assert "No label printer is configured" not in staff_page


# --- the product and location pages -------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_the_product_page_shows_the_label_and_the_print_form_to_those_who_may_print(pweb, role):
    page = pweb.client(role).get("/products/DOG-5").get_data(as_text=True)
    assert 'id="label-card"' in page
    assert '<img class="label-preview" src="/labels/variant/DOG-5.png" width="400"' in page
    assert "dock-zebra: 50 × 30 mm, 203 dpi" in page
    has_form = 'action="/labels/print"' in page
    assert has_form == (role in ("manager", "staff"))
    if has_form:
        options = re.findall(r'<option value="([^"]+)"( selected)?>', page.split('action="/labels/print"')[1])
        assert [name for name, _ in options] == ["dock-zebra", "shelf-300", "receipt"]
        assert [name for name, chosen in options if chosen] == ["dock-zebra"]


def test_the_location_page_has_a_print_button(pweb):
    page = pweb.client("staff").get("/locations/BER-A-01").get_data(as_text=True)
    assert '<img class="label-preview" src="/labels/location/BER-A-01.png"' in page
    assert 'name="value" value="BER-A-01"' in page and 'name="label" value="location"' in page


def test_when_no_printer_is_chosen_the_card_says_why(tmp_path, monkeypatch):
    two = [{**PRINTERS[0], "default": False}, PRINTERS[1]]
    made = make_printing_web(tmp_path, monkeypatch, two)
    try:
        page = made.client("staff").get("/products/DOG-5").get_data(as_text=True)
        assert 'id="label-card"' in page and 'class="label-preview"' not in page
        assert "no printer takes variant labels" in page
        assert 'action="/labels/print"' in page   # a printer can still be chosen by name
    finally:
        made.app.extensions["appliance"].feed.stop()
        made.parts.close()


# --- printing through the form --------------------------------------------------------------------------------

def test_the_print_form_queues_a_job_and_goes_back(pweb):
    client = pweb.client("staff")
    response = client.post("/labels/print", data=print_form(client, copies="3", printer="shelf-300",
                                                            next="/products/DOG-5?lang=en"))
    assert response.status_code == 302
    assert response.headers["Location"] == "/products/DOG-5?lang=en"
    assert jobs(pweb) == [(1, "shelf-300", "variant", 3, "queued", USERS["staff"])]
    job = queue.require(pweb.db.connection(), 1)
    assert job.data["sku"] == "DOG-5" and job.data["name"] == "Dog food" and job.data["variant"] == "5 kg"
    assert ("success", "Print job 1 queued on shelf-300.") in flashes(client.get("/products/DOG-5").get_data(
        as_text=True))


def test_a_location_label_goes_to_the_printer_that_claims_location_labels(pweb):
    client = pweb.client("manager")
    response = client.post("/labels/print", data=print_form(client, label="location", value="ber-a-02"))
    assert response.headers["Location"] == "/locations/BER-A-02"   # no `next`: the location's page
    assert jobs(pweb) == [(1, "shelf-300", "location", 1, "queued", USERS["manager"])]
    assert queue.require(pweb.db.connection(), 1).data["code"] == "BER-A-02"


@pytest.mark.parametrize("role", ["viewer", "purchasing"])
def test_roles_without_print_cannot_print(pweb, role):
    client = pweb.client(role)
    assert client.post("/labels/print", data=print_form(client)).status_code == 403
    assert jobs(pweb) == []


def test_the_print_form_needs_its_csrf_token(pweb):
    client = pweb.client("staff")
    response = client.post("/labels/print", data={"label": "variant", "value": "DOG-5", "copies": "1"})
    assert response.status_code == 400
    assert jobs(pweb) == []


@pytest.mark.parametrize("values, says", [
    ({"copies": "0"}, "Copies must be a whole number from 1 to 1000, not 0."),
    ({"copies": "1001"}, "Copies must be a whole number from 1 to 1000, not 1001."),
    ({"copies": "two"}, "Copies must be a whole number from 1 to 1000, not two."),
    ({"printer": "nope"}, "there is no printer 'nope'"),
    ({"value": "NOPE-1"}, "unknown SKU 'NOPE-1'"),
    ({"label": "sscc"}, "the pages print variant and location labels, not 'sscc'"),
])
def test_a_refused_print_says_why_and_queues_nothing(pweb, values, says):
    client = pweb.client("staff")
    response = client.post("/labels/print", data=print_form(client, next="/products/DOG-5", **values))
    assert response.status_code == 302 and response.headers["Location"] == "/products/DOG-5"
    shown = flashes(client.get("/products/DOG-5").get_data(as_text=True))
    assert len(shown) == 1 and shown[0][0] == "error" and says in shown[0][1], shown
    assert jobs(pweb) == []


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_next_never_leaves_the_box(pweb, target):
    client = pweb.client("staff")
    response = client.post("/labels/print", data=print_form(client, next=target))
    assert response.headers["Location"] == "/products/DOG-5"


# --- the print queue ------------------------------------------------------------------------------------------

def queue_jobs(web, count: int, printer: str = "dock-zebra") -> list[int]:
    with web.ledger.write() as ops:
        return [queue.enqueue(ops.conn, printer, "location", {"code": "BER-A-01", "name": ""}, now=ops.ts,
                              user="sam") for _ in range(count)]


def set_state(web, job_id: int, state: str) -> None:
    """Drive a job the way the spooler would: claimed, then done, failed, or caught mid-send (uncertain)."""
    with web.ledger.write() as ops:
        assert queue.claim(ops.conn, job_id, ops.ts)
        if state == "done":
            queue.finish(ops.conn, job_id, ops.ts)
        elif state == "failed":
            queue.settle(ops.conn, job_id, "failed", ops.ts, "dock-zebra: connection refused")
        elif state == "uncertain":
            queue.recover(ops.conn, ops.ts)


@pytest.mark.parametrize("role", ROLES)
def test_the_queue_lists_jobs_newest_first_with_buttons_for_those_who_may_print(pweb, role):
    ids = queue_jobs(pweb, 4)
    set_state(pweb, ids[0], "done")
    set_state(pweb, ids[1], "failed")
    set_state(pweb, ids[2], "uncertain")
    page = pweb.client(role).get("/print-queue").get_data(as_text=True)
    assert re.findall(r'<tr id="job-(\d+)" class="job-(\w+)"', page) == [
        ("4", "queued"), ("3", "uncertain"), ("2", "failed"), ("1", "done")]
    assert "The agent stopped while sending this job" in page
    assert "connection refused" in page
    may = role in ("manager", "staff")
    assert len(re.findall(r'action="/print-queue/\d+/retry"', page)) == (3 if may else 0)   # done/failed/uncertain
    assert len(re.findall(r'action="/print-queue/\d+/cancel"', page)) == (3 if may else 0)  # queued/failed/uncertain
    assert ">Reprint<" in page if may else ">Reprint<" not in page
    assert ('<a href="/print-queue">Print queue</a>' in page) == may   # the menu link


def test_the_queue_filters_by_state_and_printer(pweb):
    ids = queue_jobs(pweb, 2) + queue_jobs(pweb, 1, printer="shelf-300")
    set_state(pweb, ids[0], "done")
    client = pweb.client("viewer")
    rows = lambda url: re.findall(r'<tr id="job-(\d+)"', client.get(url).get_data(as_text=True))  # noqa: E731
    assert rows("/print-queue?state=queued") == ["3", "2"]
    assert rows("/print-queue?printer=shelf-300") == ["3"]
    assert rows("/print-queue?state=done&printer=dock-zebra") == ["1"]
    assert client.get("/print-queue?state=lost").status_code == 400


def test_the_queue_pages(pweb):
    queue_jobs(pweb, 51)
    client = pweb.client("viewer")
    first = client.get("/print-queue").get_data(as_text=True)
    assert len(re.findall(r'<tr id="job-', first)) == 50 and 'href="/print-queue?offset=50"' in first
    second = client.get("/print-queue?offset=50").get_data(as_text=True)
    assert re.findall(r'<tr id="job-(\d+)"', second) == ["1"]


def test_retry_and_cancel_change_the_state(pweb):
    ids = queue_jobs(pweb, 3)
    set_state(pweb, ids[1], "done")
    set_state(pweb, ids[2], "uncertain")
    client = pweb.client("staff")
    token = csrf(client)
    back = "/print-queue?state=queued"
    response = client.post(f"/print-queue/{ids[0]}/cancel", data={"csrf_token": token, "next": back})
    assert response.status_code == 302 and response.headers["Location"] == back
    assert jobs(pweb)[0][4] == "cancelled"
    client.post(f"/print-queue/{ids[0]}/retry", data={"csrf_token": token})
    assert jobs(pweb)[0][4] == "queued"
    # An uncertain job goes back to the queue, with the partial format cancelled first.
    client.post(f"/print-queue/{ids[2]}/retry", data={"csrf_token": token})
    again = queue.require(pweb.db.connection(), ids[2])
    assert again.state == "queued" and again.partial
    # A done job is printed again as a new job.
    response = client.post(f"/print-queue/{ids[1]}/retry", data={"csrf_token": token})
    assert response.headers["Location"] == "/print-queue"
    reprint = queue.require(pweb.db.connection(), 4)
    assert reprint.reprint_of == ids[1] and reprint.state == "queued" and reprint.created_by == USERS["staff"]
    page = client.get("/print-queue").get_data(as_text=True)
    assert ("success", f"Print job 4 queued on dock-zebra: a reprint of job {ids[1]}.") in flashes(page)


def test_refused_queue_actions(pweb):
    ids = queue_jobs(pweb, 1)
    set_state(pweb, ids[0], "done")
    staff = pweb.client("staff")
    staff.post(f"/print-queue/{ids[0]}/cancel", data={"csrf_token": csrf(staff)})
    shown = flashes(staff.get("/print-queue").get_data(as_text=True))
    assert shown == [("error", f"print job {ids[0]} is done: only a queued, failed or uncertain job can be "
                               "cancelled")]
    assert jobs(pweb)[0][4] == "done"
    assert staff.post("/print-queue/999/retry", data={"csrf_token": csrf(staff)}).status_code == 404
    assert staff.post(f"/print-queue/{ids[0]}/retry").status_code == 400          # no CSRF token
    viewer = pweb.client("viewer")
    for action in ("retry", "cancel"):
        assert viewer.post(f"/print-queue/{ids[0]}/{action}", data={"csrf_token": csrf(viewer)}).status_code == 403
    assert len(jobs(pweb)) == 1


def test_the_queue_page_in_german_and_polish(pweb):
    queue_jobs(pweb, 1)
    client = pweb.client("staff")
    german = client.get("/print-queue?lang=de").get_data(as_text=True)
    assert "Druckwarteschlange" in german
    polish = client.get("/print-queue?lang=pl").get_data(as_text=True)
    assert "Kolejka wydruku" in polish


def test_a_printer_in_trouble_shows_its_problem_on_the_queue_page_and_in_the_api(pweb):
    from appliance.notify.alerts import Alert, raise_alert, resolve_alert
    with pweb.ledger.write() as ops:
        raise_alert(ops.conn, Alert("printer_error", "shelf-300", "printer shelf-300: paper out; 2 jobs waiting",
                                    detail={"printer": "shelf-300", "problem": "paper out"}), ops.ts, None)
    client = pweb.client("staff")
    page = client.get("/print-queue").get_data(as_text=True)
    assert re.search(r'shelf-300.*?<span class="printer-problem">paper out</span>', page, re.S)
    assert page.count('class="printer-problem"') == 1   # the other printers print
    printers = {p["name"]: p["problem"] for p in client.get("/api/v1/printers").get_json()["items"]}
    assert printers == {"dock-zebra": None, "shelf-300": "paper out", "receipt": None}
    with pweb.ledger.write() as ops:
        resolve_alert(ops.conn, "printer_error", "shelf-300", ops.ts, None)
    assert 'class="printer-problem"' not in client.get("/print-queue").get_data(as_text=True)
