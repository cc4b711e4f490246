"""The web UI in a real browser (Chromium via Playwright) against `appliance web` under gunicorn: logging in,
booking through a form, the dashboard following movements another process posts, the dock screen's manual
entry and live scans, phone-sized layouts, and screenshots of the main pages (tests/artifacts/screenshots/).
Fixtures: tests/browser/conftest.py. Waits are on what the page shows, never on the clock."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

LIVE_TIMEOUT_MS = 5000   # a movement reaches an open page within ~0.1 s; this is the bound, not a sleep


def problems_of(page) -> list[str]:
    """Collect script errors and console errors (a CSP violation is one) from now on."""
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(f"page error: {error}"))
    page.on("console", lambda message: found.append(f"console: {message.text}") if message.type == "error" else None)
    return found


def set_field(page, name: str, value: str) -> None:
    field = page.locator(f"form [name={name}]").first
    if field.evaluate("el => el.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def test_log_in_lands_on_the_dashboard(new_page, box, shot):
    page = new_page(logged_in=False)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    shot(page, "login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("Wrong login or password")
    page.fill("input[name=password]", box.password)
    page.click("button[type=submit]")
    expect(page).to_have_url(box.url + "/")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_receive_through_the_booking_form(page, box, shot):
    before = box.stock("DOG-DRY-5", "BER-A-01")
    response = page.goto("/book/receive")
    assert response.status == 200, f"/book/receive answered {response.status}"
    set_field(page, "sku", "DOG-DRY-5")
    set_field(page, "location", "BER-A-01")
    set_field(page, "qty", "12")
    shot(page, "receive-form")
    with page.expect_navigation():
        page.locator("form:has([name=qty]) button[type=submit]").first.click()
    # Post/Redirect/Get: by the time the next page is shown the booking is committed.
    assert box.stock("DOG-DRY-5", "BER-A-01") == before + 12
    assert page.locator(".flash-error").count() == 0


def test_the_dashboard_follows_a_movement_booked_by_another_process(page, box, shot):
    problems = problems_of(page)
    page.goto("/")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "open", timeout=LIVE_TIMEOUT_MS)
    booked = box.cli("move", "receive", "--sku", "DOG-DRY-15", "--location", "BER-A-02", "--qty", "7",
                     "--user", "admin")
    movement_id = int(booked.stdout.split()[0])
    row = page.locator(f'#recent tr[data-id="{movement_id}"]')
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text("DOG-DRY-15")
    expect(row).to_contain_text("+7")
    assert page.locator("#recent tbody tr").first.get_attribute("data-id") == str(movement_id)  # prepended
    # The summary is re-read: 7 is at or below the demo catalog's reorder point (10) for DOG-DRY-15.
    line = page.locator('#needs-stock tr[data-line="DOG-DRY-15@BER-A-02"]')
    expect(line).to_have_class(re.compile(r"\blevel-low\b"), timeout=LIVE_TIMEOUT_MS)
    expect(line.locator('[data-field="available"]')).to_have_text("7")
    expect(page.locator('#by-location tr[data-key="BER-A-02"] td[data-level="low"]')).to_have_text("1")
    shot(page, "dashboard-1920")
    assert problems == []


def test_dock_screen_manual_entry_and_live_scans(page, box, shot):
    problems = problems_of(page)
    page.goto("/dock/dock-1")
    code = page.locator("#code")
    feedback = page.locator("#feedback")
    expect(code).to_be_focused()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "open", timeout=LIVE_TIMEOUT_MS)
    # This Chromium has no BarcodeDetector: no Camera button, and the page says to type or scan instead.
    expect(page.locator("#camera-start")).to_be_hidden()
    expect(page.locator("#camera-note")).to_contain_text("cannot read barcodes with the camera")
    sound = page.locator("#sound")
    expect(sound).to_have_attribute("data-state", "locked")
    sound.click()
    expect(sound).to_have_attribute("data-state", "on")

    code.fill("NO-SUCH-CODE-77")
    code.press("Enter")
    expect(feedback).to_have_attribute("data-level", "error")
    expect(page.locator("#message")).to_contain_text("Unknown barcode NO-SUCH-CODE-77")
    expect(code).to_have_value("")
    shot(page, "dock-1920-error")

    code.fill("BER-A-01")
    code.press("Enter")
    expect(feedback).to_have_attribute("data-level", "ok")
    expect(page.locator("#scans > li").first).to_contain_text("BER-A-01")

    # A scan from another process (a gun read by the agent; here `appliance scan`) arrives over SSE.
    box.cli("scan", "dock-1", "CMD-RECEIVE")
    expect(page.locator("#mode")).to_have_attribute("data-mode", "receive", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#prompt")).to_have_text("Scan the receiving location")
    expect(feedback).to_have_attribute("data-level", "ok")
    # Each scan once, though this page's own scans came both as the POST answer and over SSE.
    expect(page.locator("#scans > li")).to_have_count(3)
    assert page.locator("#scans > li").evaluate_all("items => items.map(li => li.dataset.level)") == \
        ["ok", "ok", "error"]
    shot(page, "dock-1920")
    assert problems == []


# Stand-ins for the browser's camera and barcode reader (no camera here): a canvas stream, and a detector that
# always sees the same QR code, so the page's own camera code runs as on a phone.
FAKE_CAMERA = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["aztec", "qr_code", "ean_13"]; }
  constructor(options) { window.detectorFormats = options && options.formats; }
  async detect() { window.detections = (window.detections || 0) + 1; return [{rawValue: "BER-A-02", format: "qr_code"}]; }
};
navigator.mediaDevices.getUserMedia = async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 48;
  canvas.getContext("2d").fillRect(0, 0, 64, 48);
  return canvas.captureStream(10);
};
"""


def test_dock_camera_scans_a_code_once_while_it_stays_in_view(new_page):
    page = new_page(360, 740)
    page.add_init_script(FAKE_CAMERA)
    problems = problems_of(page)
    page.goto("/dock/phone-1")
    page.click("#camera-start")
    expect(page.locator("#camera video")).to_be_visible()
    expect(page.locator("#feedback")).to_have_attribute("data-level", "ok", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#message")).to_contain_text("BER-A-02")
    # Only the formats both the page wants and the browser reads, in the page's order.
    assert page.evaluate("window.detectorFormats") == ["ean_13", "qr_code"]
    page.wait_for_function("() => window.detections >= 12")   # about 1.8 s of the same code in view
    expect(page.locator("#scans > li")).to_have_count(1)
    page.click("#camera-stop")
    expect(page.locator("#camera")).to_be_hidden()
    expect(page.locator("#camera-start")).to_be_visible()
    assert problems == []


def test_phone_sized_pages_do_not_scroll_sideways(new_page, shot):
    page = new_page(360, 740)
    problems = problems_of(page)
    for path, name in (("/", "dashboard-360"), ("/dock/dock-1", "dock-360"), ("/dock", "dock-stations-360"),
                       ("/products", "products-360"), ("/products/new", "product-form-360"),
                       ("/stock", "stock-360"), ("/stock/DOG-DRY-5", "stock-variant-360"),
                       ("/movements", "movements-360"), ("/book", "book-360"), ("/book/receive", "receive-360"),
                       ("/admin/users", "users-360"), ("/admin/settings", "settings-360")):
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width} px wide in a 360 px viewport"
        shot(page, name)
    # The dock screen's type stays large on a phone.
    page.goto("/dock/dock-1")
    size = page.locator("#message").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 24, f"the feedback message is {size} px on a phone"
    assert problems == []


@pytest.mark.parametrize("width, height", [(1920, 1080)])
def test_screenshots_of_the_main_pages(new_page, shot, width, height):
    page = new_page(width, height)
    statuses = {}
    for path, name in (("/products", "products"), ("/stock", "stock"), ("/movements", "movements"),
                       ("/book/receive", "receive-form-empty"), ("/dock", "dock-stations")):
        response = page.goto(path)
        statuses[path] = response.status
        shot(page, name)
    print("page statuses:", statuses)
    assert statuses["/dock"] == 200
    expect(page.locator('a[href="/dock/dock-1"]')).to_be_visible()   # the configured scanner's station


def test_product_search_narrows_the_list_as_one_types(page, shot):
    problems = problems_of(page)
    page.goto("/products")
    rows = page.locator("#product-rows tr")
    expect(rows.first).to_be_visible()
    everything = rows.count()
    page.locator("#product-q").fill("Trockenfutter")   # a word of the product name, not the SKU
    expect(rows).to_have_count(2, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#product-rows")).to_contain_text("DOG-DRY-5")
    expect(page.locator("#product-rows")).not_to_contain_text("CAT-LITTER-10")
    page.locator("#product-q").fill("4006381333931")   # a barcode
    expect(rows).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#product-rows")).to_contain_text("DOG-DRY-5")
    page.locator("#product-q").fill("")
    expect(rows).to_have_count(everything, timeout=LIVE_TIMEOUT_MS)
    shot(page, "products-search")
    assert problems == []
