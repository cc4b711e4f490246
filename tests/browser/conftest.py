"""Browser tests against the real thing: `appliance web` (gunicorn) on a fresh box, driven by Chromium.

Fixtures built once for the module (the whole browser run stays well under a minute and a half), not per
session: Chromium listens for mDNS while it runs, and one left open for the rest of the session took the
answers the zeroconf tests wait for.
- `box`: a config in a temporary folder ([site] BER, [database], [web] on 127.0.0.1:<free port>, advertise off,
  one replay scanner at station dock-1), set up only through the CLI (`appliance init`, `user passwd`,
  `location add`, `import products scripts/demo/products.csv`), then `appliance --config CFG web` as a
  subprocess; the fixture waits for /healthz and stops the server at the end.
  `box.cli(*args)` runs another `appliance` command against the same box (another process, as a gun or a
  script would be).
- `browser`: Debian's Chromium (/usr/bin/chromium) through Playwright's sync API; the tests are skipped, saying
  why, when it is not installed. Playwright's own browser downloads are never used.
- `page`: a fresh 1920×1080 context logged in as `admin`; `new_page(width, height)` makes more.
- `shot(page, name)`: a full-page screenshot in tests/artifacts/screenshots/<name>.png.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
APPLIANCE = Path(sys.executable).with_name("appliance")
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
PASSWORD = "browser tests only 1"
LOCATIONS = ("BER-DOCK", "BER-A-01", "BER-A-02")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Box:
    config: Path
    url: str
    password: str = PASSWORD   # of `admin`

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(APPLIANCE), "--config", str(self.config), *args], input=stdin,
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        if check and done.returncode != 0:
            raise AssertionError(f"appliance {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(APPLIANCE), "--config", str(self.config), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)

    def stock(self, sku: str, location: str) -> int:
        lines = json.loads(self.cli("stock", "--sku", sku, "--location", location, "--all", "--json").stdout)
        return sum(line["on_hand"] for line in lines)


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    ends = time.monotonic() + timeout_s
    while time.monotonic() < ends:
        if server.poll() is not None:
            raise AssertionError(f"appliance web exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"appliance web did not answer /healthz within {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    folder = tmp_path_factory.mktemp("box")
    port = _free_port()
    config = folder / "appliance.toml"
    (folder / "scans.txt").write_text("")
    config.write_text(f"""
[site]
id = "BER"
name = "Berlin"

[database]
path = "{folder / 'appliance.db'}"

[web]
bind = "127.0.0.1:{port}"
advertise = false
workers = 2
threads = 16

[[scanner]]
kind = "replay"
station = "dock-1"
path = "{folder / 'scans.txt'}"

[[printer]]
name = "demo-zebra"
kind = "capture"
path = "{folder / 'printed'}"
default = true
""", encoding="utf-8")
    made = Box(config, f"http://127.0.0.1:{port}")
    made.cli("init")
    made.cli("user", "passwd", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    # Independent of each other: run side by side (SQLite serialises the writes), which saves seconds.
    steps = [("location", "add", code) for code in LOCATIONS]
    steps.append(("import", "products", str(ROOT / "scripts" / "demo" / "products.csv")))
    running = [(step, made.start(*step)) for step in steps]
    for step, process in running:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"appliance {' '.join(step)} exited {process.returncode}:\n{err}"
    log = folder / "web.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(APPLIANCE), "--config", str(config), "web"], stdout=out,
                                  stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        _wait_healthy(made.url, server, log)
        yield made
    finally:
        # An event stream whose browser has gone only notices at its next write (a heartbeat, 15 s), and
        # gunicorn waits for it up to its graceful timeout: after a short wait, end the test server outright.
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


def log_in(page, url: str, login_name: str = "admin", password: str = PASSWORD) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", login_name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


@pytest.fixture
def new_page(browser, box):
    contexts = []

    def make(width: int = 1920, height: int = 1080, logged_in: bool = True):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=box.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if logged_in:
            log_in(page, box.url)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="module")
def shot():
    """shot(page, name): a full-page screenshot to tests/artifacts/screenshots/<name>.png; returns the path."""
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return take
