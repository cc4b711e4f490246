#!/usr/bin/env python3
"""Web benchmark: page and search latency and API posting rate through gunicorn, each beside the ledger API.

Prints ONE JSON object on stdout; progress goes to stderr.

Data: scripts/bench_data.py (the big ledger of gen_ledger_data.py: 50,000 variants, 1,000,000 movements of BER
and WAW, cached under --data-dir and copied fresh for each run, plus a manager `webbench` with a password and
an API token). Server: `appliance --config CFG web --bind 127.0.0.1:<free port>` as a subprocess, exactly as
systemd starts it (gunicorn, the [web] defaults for workers and threads, synchronous=FULL), with a config
written here ([site] BER, [database] the copy, [web] advertise = false); stopped with SIGTERM at the end.

Measured, with --clients concurrent HTTP clients (threads, one keep-alive http.client connection each):
1. GET / (dashboard) and GET /stock (stock list) with the session cookie of a real login; p50/p99. Beside
   them, one client alone (no queueing), and the queries behind each page called directly: for the stock
   list `queries.stock_levels` on the page's page size and the page module's own `stock_lines`, for the
   dashboard the page module's query functions (site and location counts, lines needing stock, recent).
2. GET /api/v1/variants?q=<text>&limit=20 with a Bearer token, texts drawn from the data: whole SKUs, SKU
   prefixes, product SKUs in lower case, parts of names (trigram index), whole name words, EAN barcodes, two
   letters. Beside it `catalog.search.search_variants` on the same texts.
3. POST /api/v1/movements with a Bearer token: receive 3 / ship 1 pairs of lot-free variants at BER bins,
   every post with a unique op_id, the clients concurrently; beside it `Ledger.post` of the same kind of
   pairs from this process (signed with the same site key, same user). Rounds alternate the two arms; the
   ratio is the median of the per-round ratios of rates.
Targets (issue 5): dashboard and stock list p99 <= 150 ms, search p99 <= 50 ms, API posting rate >= 0.5 x the
direct ledger rate. An endpoint that does not answer as expected (404 while the API is being written, 500)
is reported as not measurable: measured null, met false, with the status and the start of the body.

Options: --quick (2,000 variants, 20,000 movements, a few requests: a smoke run), --data-dir (default
<tmp>/appliance-bench), --clients, --requests (per endpoint), --phase-seconds (time cap per endpoint run: a
slow page yields fewer samples rather than an hour-long run), --posts (per arm per round), --rounds,
--workers (gunicorn workers instead of the [web] default). The client threads run on the same box as the
server and take CPU from it, as a second browser on the box would; on a 2-core machine that is visible.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

import bench_data  # noqa: E402
from bench_ledger import dist, loadavg, machine_info, target  # noqa: E402

from appliance.catalog.search import search_variants  # noqa: E402
from appliance.ledger import check as ledger_check  # noqa: E402
from appliance.ledger import queries  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.requests import Move  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402

SITE = bench_data.SITE
PAGE_P99_MS = 150.0
SEARCH_P99_MS = 50.0
POST_RATIO = 0.5
SEARCH_LIMIT = 20
COOKIE = "appliance_session"


def log(msg: str) -> None:
    print(f"[bench-web {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the server ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def appliance_command() -> list[str]:
    """The `appliance` console script of this interpreter's environment, as systemd runs it."""
    script = Path(sys.executable).with_name("appliance")
    return [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]


class Server:
    """gunicorn started by `appliance web` in its own process group; `stop()` is SIGTERM, then the group."""

    def __init__(self, work: Path, db_path: Path, workers: int | None) -> None:
        self.port = free_port()
        self.config = work / "appliance.toml"
        web = "advertise = false\n" + (f"workers = {workers}\n" if workers else "")
        self.config.write_text(f'[site]\nid = "{SITE}"\nname = "Berlin"\n\n[database]\npath = "{db_path}"\n\n'
                               f"[web]\n{web}")
        self.log_path = work / "server.log"
        self.command = appliance_command() + ["--config", str(self.config), "web", "--bind",
                                              f"127.0.0.1:{self.port}"]
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def start(self, timeout: float = 120.0) -> None:
        # Hermetic: no site key, session key or config of the caller's environment leaks in.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("APPLIANCE_") and k != "CREDENTIALS_DIRECTORY"}
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True, cwd=self.config.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    self.startup_s = time.perf_counter() - t0
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer /healthz within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)   # the gunicorn master: graceful stop of its workers
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log("the web server ignored SIGTERM for 30 s: killing its process group")
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)   # whatever of our own group is left (workers)
            except ProcessLookupError:
                pass
            if code is None:
                code = self.proc.wait(timeout=10)
            self.proc = None
        return code

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


# --- HTTP clients -------------------------------------------------------------------------------------------

class Client:
    """One keep-alive connection, reopened when the server closed it while idle."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionResetError,
                    BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue   # a POST sent twice is harmless: its op_id makes the second a replay
            if (response.getheader("Connection") or "").lower() == "close":
                self.close()
            return response.status, data, response
        raise AssertionError("not reached")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def session_cookie(response: http.client.HTTPResponse) -> str | None:
    for name, value in response.getheaders():
        if name.lower() == "set-cookie" and value.startswith(COOKIE + "="):
            return value.split(";", 1)[0]
    return None


def login(port: int, user: str, password: str) -> str:
    """The session cookie of a browser-like login (the form's CSRF token included)."""
    client = Client(port, {})
    try:
        status, body, response = client.request("GET", "/login")
        found = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        cookie = session_cookie(response)
        if status != 200 or not found or not cookie:
            raise RuntimeError(f"GET /login answered {status} without a login form: {body[:300]!r}")
        form = urlencode({"login": user, "password": password, "csrf_token": found.group(1).decode(),
                          "next": "/"}).encode()
        status, body, response = client.request("POST", "/login", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        cookie = session_cookie(response)
        if status not in (302, 303) or not cookie:
            raise RuntimeError(f"POST /login answered {status}: {body[:300]!r}")
        return cookie
    finally:
        client.close()


class Run:
    """What one endpoint run produced: latencies (s) with a tag each, status counts, wall time."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, float]] = []
        self.statuses: collections.Counter = collections.Counter()
        self.bad: list[str] = []
        self.elapsed = 0.0
        self.lock = threading.Lock()

    def ok(self, expected: int) -> bool:
        return bool(self.statuses) and set(self.statuses) == {expected}

    def latency(self) -> dict:
        return dist([s for _, s in self.samples])

    def summary(self) -> dict:
        out = {"requests": len(self.samples), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
               "seconds": round(self.elapsed, 2)}
        if self.samples:
            out["latency_ms"] = self.latency()
            out["requests_per_s"] = round(len(self.samples) / self.elapsed, 1) if self.elapsed else None
        if self.bad:
            out["first_unexpected"] = self.bad[:3]
        return out


def hammer(port: int, headers: dict[str, str], requests: list, clients: int, expected: int,
           max_s: float | None = None) -> Run:
    """Send `requests` ((tag, method, path, body) each) over `clients` concurrent connections, round-robin;
    after `max_s` seconds the clients stop where they are (a slow endpoint yields fewer samples)."""
    run = Run()
    shares = [requests[i::clients] for i in range(clients)]
    halt = threading.Event()
    deadline = [float("inf")]

    def worker(share: list) -> None:
        client = Client(port, headers)
        mine: list[tuple[str, float]] = []
        statuses: collections.Counter = collections.Counter()
        bad: list[str] = []
        clock = time.perf_counter
        try:
            start.wait()
            for tag, method, path, body in share:
                if halt.is_set() or clock() > deadline[0]:
                    break
                extra = {"Content-Type": "application/json"} if body is not None else None
                t = clock()
                status, data, _ = client.request(method, path, body, extra)
                mine.append((tag, clock() - t))
                statuses[status] += 1
                if status != expected and len(bad) < 3:
                    bad.append(f"{method} {path} -> {status}: {data[:200].decode(errors='replace')}")
        finally:
            client.close()
            with run.lock:
                run.samples += mine
                run.statuses.update(statuses)
                run.bad += bad

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares if share]
    start = threading.Barrier(len(threads) + 1)   # all ready: the clock starts together
    for t in threads:
        t.start()
    try:
        t0 = time.perf_counter()
        deadline[0] = t0 + max_s if max_s else float("inf")
        start.wait()
        for t in threads:
            t.join()
        run.elapsed = time.perf_counter() - t0
    finally:
        halt.set()   # interrupted (Ctrl-C, SIGTERM): the clients stop before the server does
        start.abort()
        for t in threads:
            t.join()
    return run


def unmeasurable(run: Run, text: str, expected: int, what: str) -> dict:
    wrong = [s for s in run.statuses if s != expected]
    return {"measured": None, "target": text, "met": False, "what": what,
            "status": wrong[0] if wrong else None, "statuses": {str(k): v for k, v in run.statuses.items()},
            "first_unexpected": run.bad[:1], "note": "not measurable: the endpoint did not answer as expected"}


def latency_target(run: Run, limit: float, expected: int, what: str) -> dict:
    text = f"<= {limit:g}"
    if not run.ok(expected):
        return unmeasurable(run, text, expected, what)
    lat = run.latency()
    out = target(lat["p99"], text, limit, what=what)
    out["p50"] = lat["median"]
    return out


def timed_calls(fn, reps: int, max_s: float) -> list[float]:
    """Durations of up to `reps` calls of fn(i), stopping once `max_s` seconds have been spent."""
    out = []
    clock = time.perf_counter
    end = clock() + max_s
    for i in range(reps):
        t = clock()
        fn(i)
        out.append(clock() - t)
        if t > end:
            break
    return out


# --- the measurements ---------------------------------------------------------------------------------------

def page_queries(conn) -> tuple[dict, int]:
    """The pages' own query functions, when their modules have them: {page: {name: fn(i)}}, and the stock
    list's page size. Context only: how much of a page's time is its queries."""
    found: dict = {"dashboard": {}, "stock_list": {}}
    page_size = 100
    from appliance.webapp import pages_dashboard, stock_health
    found["dashboard"]["stock_health.full_summary() (a worker's first request, or after a catalog edit)"] = \
        lambda _: stock_health.full_summary(conn, SITE)
    steady = stock_health.StockHealth(SITE)
    found["dashboard"]["StockHealth.summary() (kept up to date)"] = lambda _: steady.summary(conn)
    found["dashboard"]["pages_dashboard.recent_movements()"] = lambda _: pages_dashboard.recent_movements(conn)
    try:
        from appliance.webapp import pages_stock
        page_size = getattr(pages_stock, "PAGE", page_size)
        if hasattr(pages_stock, "stock_lines"):
            found["stock_list"][f"pages_stock.stock_lines(limit={page_size + 1})"] = \
                lambda _: pages_stock.stock_lines(conn, limit=page_size + 1)
    except ImportError:
        pass
    # The ledger API's own query for a stock list page, whatever the page module does.
    found["stock_list"][f"queries.stock_levels(limit={page_size + 1})"] = \
        lambda _: queries.stock_levels(conn, limit=page_size + 1)
    return found, page_size


def bench_pages(port: int, cookie: str, conn, clients: int, n: int, warm: int,
                max_s: float) -> tuple[dict, dict]:
    headers = {"Cookie": cookie}
    pages = {"dashboard": "/", "stock_list": "/stock"}
    direct_fns, _ = page_queries(conn)
    out: dict = {}
    targets: dict = {}
    for name, path in pages.items():
        hammer(port, headers, [(name, "GET", path, None)] * warm, clients, 200, max_s / 2)
        log(f"{name}: GET {path}, up to {n} requests or {max_s:g} s, {clients} clients")
        run = hammer(port, headers, [(name, "GET", path, None)] * n, clients, 200, max_s)
        log(f"{name}: {len(run.samples)} requests, one client alone next")
        alone = hammer(port, headers, [(name, "GET", path, None)] * max(10, n // 5), 1, 200, max_s / 2)
        entry = {"path": path, "auth": "session cookie", "http": {"clients": clients, **run.summary()},
                 "http_one_client": alone.summary()}
        targets[f"{name}_p99_ms"] = latency_target(run, PAGE_P99_MS, 200,
                                                   f"GET {path} p99 with {clients} concurrent clients")
        direct = {}
        for what, fn in direct_fns[name].items():
            try:
                direct[what] = dist(timed_calls(fn, max(10, n // 5), max_s / 4))
            except Exception as error:   # noqa: BLE001 - a page module mid-rewrite: context only
                direct[what] = {"error": repr(error)[:300]}
        entry["direct_ms"] = direct or None
        entry["direct_note"] = ("the page's query functions called directly from this process, one at a time "
                                "(context: how much of the page is its queries)")
        base = next((d for d in direct.values() if "median" in d), None)
        if base and alone.ok(200):
            entry["ratio_http_one_client_p50_to_first_direct_p50"] = round(
                alone.latency()["median"] / base["median"], 2)
        out[name] = entry
    return out, targets


def bench_search(port: int, token: str, conn, texts: list[tuple[str, str]], clients: int, n: int,
                 warm: int, max_s: float) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {token}"}

    def req(kind: str, text: str):
        return kind, "GET", f"/api/v1/variants?q={quote(text)}&limit={SEARCH_LIMIT}", None

    reqs = [req(*texts[i % len(texts)]) for i in range(n)]
    hammer(port, headers, [req(*t) for t in texts[:warm]], clients, 200, max_s / 2)
    log(f"search: up to {n} requests or {max_s:g} s over {len(texts)} texts, {clients} clients")
    run = hammer(port, headers, reqs, clients, 200, max_s)
    direct: dict[str, list[float]] = collections.defaultdict(list)
    for kind, text in [texts[i % len(texts)] for i in range(len(run.samples) or n)]:
        t = time.perf_counter()
        search_variants(conn, text, limit=SEARCH_LIMIT)
        direct[kind].append(time.perf_counter() - t)
    all_direct = [x for v in direct.values() for x in v]
    by_kind = {}
    http_by_kind: dict[str, list[float]] = collections.defaultdict(list)
    for kind, s in run.samples:
        http_by_kind[kind].append(s)
    for kind in direct:
        by_kind[kind] = {"examples": [t for k, t in texts if k == kind][:3],
                         "direct_ms": dist(direct[kind])}
        if http_by_kind.get(kind):
            by_kind[kind]["http_ms"] = dist(http_by_kind[kind])
    out = {"path": f"/api/v1/variants?q=...&limit={SEARCH_LIMIT}", "auth": "Bearer token",
           "http": {"clients": clients, **run.summary()},
           "direct": {"what": f"catalog.search.search_variants(text, limit={SEARCH_LIMIT})",
                      "latency_ms": dist(all_direct)},
           "by_kind": by_kind}
    if run.ok(200):
        out["ratio_http_p50_to_direct_p50"] = round(run.latency()["median"] / out["direct"]["latency_ms"]["median"],
                                                    2)
    return out, {"search_p99_ms": latency_target(run, SEARCH_P99_MS, 200,
                                                 f"GET /api/v1/variants?q= p99 with {clients} concurrent clients")}


def post_body(pairs: list, g: int, tag: str) -> tuple[str, dict]:
    sku, location = pairs[(g // 2) % len(pairs)]
    kind, qty = ("receive", 3) if g % 2 == 0 else ("ship", 1)
    return f"{tag}-{g}", {"kind": kind, "sku": sku, "location": location, "qty": qty}


def bench_posts(port: int, token: str, ledger: Ledger, login_name: str, pairs: list, clients: int, n: int,
                rounds: int) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    # Every client posts its own pairs (receive before ship, in its own order), so no ship can fail.
    per_client = [pairs[i::clients] for i in range(clients)]

    def api_arm(r: int, count: int) -> tuple[float, Run]:
        reqs: list = []
        per = count // clients // 2 * 2
        share = [[] for _ in range(clients)]
        for c in range(clients):
            for g in range(per):
                op_id, move = post_body(per_client[c], g, f"api-r{r}-c{c}")
                share[c].append(("post", "POST", "/api/v1/movements", json.dumps({"op_id": op_id, **move}).encode()))
        # hammer() deals requests round-robin: interleave so client c gets exactly share[c], in order.
        for g in range(per):
            for c in range(clients):
                reqs.append(share[c][g])
        run = hammer(port, headers, reqs, clients, 201)
        return (len(run.samples) / run.elapsed if run.elapsed else 0.0), run

    def direct_arm(r: int, count: int) -> tuple[float, list[float]]:
        lat = []
        clock = time.perf_counter
        t0 = clock()
        for g in range(count // 2 * 2):
            op_id, move = post_body(pairs, g, f"direct-r{r}")
            t = clock()
            ledger.post(Move(**move), op_id=op_id, user=login_name, device="bench")
            lat.append(clock() - t)
        return count // 2 * 2 / (clock() - t0), lat

    warm = max(4, min(40, n // 10)) // 2 * 2
    api_arm(-1, warm * clients)
    direct_arm(-1, warm)
    expected = warm * clients + warm + rounds * (n // clients // 2 * 2 * clients + n // 2 * 2)
    api_rates, direct_rates, api_lat, direct_lat = [], [], [], []
    runs: list[Run] = []
    for r in range(rounds):
        arms = [("api", api_arm), ("direct", direct_arm)]
        if r % 2:
            arms.reverse()
        for name, arm in arms:
            rate, result = arm(r, n)
            if name == "api":
                api_rates.append(rate)
                runs.append(result)
                api_lat += [s for _, s in result.samples]
            else:
                direct_rates.append(rate)
                direct_lat += result
        log(f"  posts round {r + 1}/{rounds}: API {api_rates[-1]:.0f}/s ({clients} clients), "
            f"direct {direct_rates[-1]:.0f}/s")
    statuses = sum((run.statuses for run in runs), collections.Counter())
    ok = set(statuses) == {201}
    out = {
        "path": "/api/v1/movements", "auth": "Bearer token", "clients": clients, "rounds": rounds,
        "posts_per_arm_per_round": n, "warmup_posts": {"api": warm * clients, "direct": warm},
        "movements_expected": expected,
        "workload": "receive 3 / ship 1 pairs of lot-free variants at BER bins, one movement per post, unique "
                    "op_ids; API: each client its own pairs; direct: Ledger.post from this process, one thread, "
                    "same site key and user",
        "api": {"rate_per_s_rounds": [round(x, 1) for x in api_rates],
                "rate_per_s_median": round(statistics.median(api_rates), 1),
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "latency_ms": dist(api_lat) if api_lat else None},
        "direct": {"rate_per_s_rounds": [round(x, 1) for x in direct_rates],
                   "rate_per_s_median": round(statistics.median(direct_rates), 1),
                   "latency_ms": dist(direct_lat)},
    }
    bad = [b for run in runs for b in run.bad]
    if bad:
        out["api"]["first_unexpected"] = bad[:3]
    text = f">= {POST_RATIO:g}"
    what = "median over rounds of API posts/s (concurrent clients) / Ledger.post posts/s (direct)"
    if not ok:
        fake = Run()
        fake.statuses, fake.bad = statuses, bad
        return out, {"api_post_ratio": unmeasurable(fake, text, 201, what)}
    ratios = [a / d for a, d in zip(api_rates, direct_rates)]
    out["ratio"] = {"median_of_round_ratios": round(statistics.median(ratios), 3),
                    "rounds": [round(x, 3) for x in ratios],
                    "ratio_of_median_rates": round(out["api"]["rate_per_s_median"]
                                                   / out["direct"]["rate_per_s_median"], 3)}
    result = target(out["ratio"]["median_of_round_ratios"], text, POST_RATIO, what=what, higher_is_better=True)
    result["api_posts_per_s"] = out["api"]["rate_per_s_median"]
    result["direct_posts_per_s"] = out["direct"]["rate_per_s_median"]
    return out, {"api_post_ratio": result}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny data and runs: a smoke test of the script")
    ap.add_argument("--data-dir", type=Path, default=bench_data.DEFAULT_DATA_DIR,
                    help=f"where the dataset is cached (default {bench_data.DEFAULT_DATA_DIR})")
    ap.add_argument("--variants", type=int, default=None)
    ap.add_argument("--movements", type=int, default=None)
    ap.add_argument("--seed", type=int, default=bench_data.gen.DEFAULT_SEED)
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    ap.add_argument("--requests", type=int, default=None, help="requests per endpoint (default 2000, quick 40)")
    ap.add_argument("--posts", type=int, default=None, help="posts per arm per round (default 2000, quick 40)")
    ap.add_argument("--rounds", type=int, default=None, help="post rounds (default 3, quick 1)")
    ap.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the [web] default)")
    ap.add_argument("--phase-seconds", type=float, default=None,
                    help="at most this long per measured endpoint run (default 90, quick 20)")
    args = ap.parse_args(argv)
    args.phase_seconds = args.phase_seconds or (20.0 if args.quick else 90.0)
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C: the finally below stops gunicorn and removes the copy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    variants = args.variants or (2_000 if args.quick else 50_000)
    movements = args.movements or (20_000 if args.quick else 1_000_000)
    n = args.requests or (40 if args.quick else 2000)
    n_posts = args.posts or (40 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    clients = max(1, args.clients)
    warm = 8 if args.quick else 40

    t_start = time.perf_counter()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"benchmark": "web", "quick": args.quick, "machine": machine_info(args.data_dir),
                 "sizes": {"variants": variants, "movements": movements, "sites": 2}}
    work = Path(tempfile.mkdtemp(prefix="bench-web-", dir=args.data_dir))   # same file system as the cache
    server = None
    db = None
    try:
        data = bench_data.prepare(args.data_dir, work, variants=variants, movements=movements, seed=args.seed)
        out["data"] = data.info
        load = bench_data.workload(data.path, args.seed)
        db = open_db(data.path, synchronous="FULL")
        conn = db.connection()
        before = conn.execute("SELECT head_seq FROM site WHERE id = ?", (SITE,)).fetchone()[0]

        server = Server(work, data.path, args.workers)
        log(f"starting: {' '.join(server.command)}")
        server.start()
        log(f"server up in {server.startup_s:.1f}s on port {server.port}")
        from appliance.config import load_config
        web = load_config(server.config).web
        out["server"] = {"command": " ".join(server.command[1:]), "workers": args.workers or web.workers,
                         "threads": web.threads, "startup_s": round(server.startup_s, 2)}
        out["clients"] = clients

        targets: dict = {}
        cookie = login(server.port, data.login, data.password)
        out["pages"], got = bench_pages(server.port, cookie, conn, clients, n, warm, args.phase_seconds)
        targets.update(got)
        out["search"], got = bench_search(server.port, data.token, conn, load.search_texts, clients, n, warm,
                                          args.phase_seconds)
        targets.update(got)
        ledger = Ledger(db, SITE, data.key)
        out["posts"], got = bench_posts(server.port, data.token, ledger, data.login, load.post_pairs, clients,
                                        n_posts, rounds)
        targets.update(got)
        out["targets"] = targets

        out["server"]["exit_code"] = server.stop()
        if any(t["measured"] is None for t in targets.values()):
            out["server"]["log_tail"] = server.log_tail(6000)   # the tracebacks of the 500s, if any
        after = conn.execute("SELECT head_seq FROM site WHERE id = ?", (SITE,)).fetchone()[0]
        t0 = time.perf_counter()
        differences = ledger_check.check(conn)
        api_ok = sum(v for k, v in out["posts"]["api"]["statuses"].items() if k == "201")
        out["sanity"] = {
            "movements_posted": after - before,
            "movements_expected": out["posts"]["movements_expected"],
            "api_posts_201": api_ok,
            "check_empty": not differences,
            "check_seconds": round(time.perf_counter() - t0, 1),
            "first_differences": [str(d) for d in differences[:3]],
        }
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            db.close()
        shutil.rmtree(work, ignore_errors=True)
    out["all_targets_met"] = all(t["met"] for t in out["targets"].values())
    out["seconds_total"] = round(time.perf_counter() - t_start, 1)
    out["machine"]["loadavg_at_end"] = loadavg()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
