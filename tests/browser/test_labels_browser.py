"""Labels in a real browser (Chromium via Playwright): the product page's label preview loads, a print is queued
from a phone-sized screen, and the print queue shows it. Screenshots go to tests/artifacts/screenshots/.

The shared `box` (tests/browser/conftest.py) has a `capture` printer, "demo-zebra", as its default. Waits are on
what the page shows, never on the clock."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def problems_of(page) -> list[str]:
    """Script errors and console errors (a CSP violation is one) from now on."""
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(f"page error: {error}"))
    page.on("console", lambda message: found.append(f"console: {message.text}") if message.type == "error" else None)
    return found


LOADED = "img => img.complete && img.naturalWidth > 0"


def test_the_label_preview_loads_and_a_print_is_queued_from_a_phone(new_page, box, shot):
    page = new_page(360, 740)
    problems = problems_of(page)
    response = page.goto("/products/DOG-DRY-5")
    assert response.status == 200
    preview = page.locator("#label-card img.label-preview")
    expect(preview).to_be_visible()
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('#label-card img.label-preview'))")
    # The PNG has the printer's dots: 50 mm at 203 dpi.
    assert preview.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [400, 240]
    shown = preview.evaluate("img => img.getBoundingClientRect().width")
    assert 0 < shown <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "label-card-360")

    page.locator("#label-card input[name=copies]").fill("2")
    with page.expect_navigation():
        page.locator("#label-card button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/products/DOG-DRY-5$"))
    message = page.locator(".flash-success")
    expect(message).to_contain_text(re.compile(r"Print job \d+ queued on demo-zebra\."))
    job_id = re.search(r"Print job (\d+)", message.inner_text()).group(1)

    page.goto("/print-queue")
    row = page.locator(f"#job-{job_id}")
    expect(row).to_contain_text("DOG-DRY-5")
    expect(row).to_contain_text("demo-zebra")
    expect(row.locator(".badge")).to_have_text("queued")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the queue scrolls sideways at 360 px"
    shot(page, "print-queue-360")
    # Cancel it from the queue: the row says so afterwards.
    with page.expect_navigation():
        row.locator("button.danger").click()
    expect(page.locator(f"#job-{job_id} .badge")).to_have_text("cancelled")
    assert problems == []


def test_the_print_queue_and_the_label_card_at_1920(new_page, shot):
    page = new_page(1920, 1080)
    problems = problems_of(page)
    page.goto("/products/DOG-DRY-5")
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('#label-card img.label-preview'))")
    shot(page, "label-card-1920")
    page.goto("/locations/BER-A-01")
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('#label-card img.label-preview'))")
    shot(page, "location-label-1920")
    assert page.goto("/print-queue").status == 200
    expect(page.locator("nav.menu")).to_contain_text("Print queue")
    shot(page, "print-queue-1920")
    assert problems == []
