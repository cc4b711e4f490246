#!/usr/bin/env python3
"""Reorder trigger benchmark (issue 6): how soon a crossing is noticed, and what the trigger costs a ship post.

Prints ONE JSON object on stdout; progress goes to stderr.

Set-up: a fresh signed ledger (`synchronous=FULL`), site BER, one supplier, variants with a reorder rule
(point 10, reorder qty 20, the supplier). The trigger runs as in production: `ReorderWatcher` in another
process (this script started with `--watcher DB`, the agent's thread alone, without sync or other jobs),
noticing commits through `PRAGMA data_version`.

1. Commit → alert and draft line. Each trial ships 3 of a variant that stands at 12, crossing its point of 10,
   with `Ledger.post` in this process. The clock starts when the post has returned (committed) and stops when
   a separate read connection sees both the open low-stock alert and the variant's line on the automatic
   draft purchase order (polled every 0.5 ms). Trials are spaced by a random 0–40 ms so commits fall at every
   phase of the watcher's 20 ms poll. Baseline in the same run: the post's own latency.
2. Added cost to a ship post. Ship posts of 1 unit of variants with plenty of stock (rules checked, no
   crossing), back to back, in rounds alternating between no watcher running and the watcher running; per
   round pair the added cost is (mean with − mean without) / mean without, and the figure is the median of
   the pairs. Back-to-back posts are the worst case: every commit wakes the watcher, which reads the new
   movements, checks their rules and moves its cursor in a write transaction of its own.

Options: --trials N (default 300), --posts N per round (default 500), --rounds R (default 6), --quick.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

from bench_ledger import bench_key, machine_info, now_ts, setup_small, target  # noqa: E402
from appliance.app import App  # noqa: E402
from appliance.config import parse_config  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.requests import Move  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402

SITE = "BER"
POINT, REORDER_QTY, START_QTY, SHIP_QTY = 10, 20, 12, 3
PLENTY = 10 ** 7
TARGET_P99_MS = 100.0
TARGET_ADDED = 0.20


def log(msg: str) -> None:
    print(f"[bench-reorder {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentiles(ms: list[float]) -> dict:
    ordered = sorted(ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 3)
    return {"n": len(ms), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 3),
            "mean": round(statistics.fmean(ms), 3)}


def make_app(db_path: Path, db=None) -> App:
    config = parse_config({"site": {"id": SITE, "name": "Berlin"}, "database": {"path": str(db_path)},
                           "web": {"advertise": False}}, label="bench", base_dir=db_path.parent)
    db = db or open_db(db_path, synchronous="FULL")
    app = App(config, db)
    app.__dict__["ledger"] = Ledger(db, SITE, bench_key(db))
    return app


def build(db_path: Path, n_crossing: int, n_plenty: int) -> App:
    db = setup_small(db_path, "FULL", n_skus=n_crossing + n_plenty)
    app = make_app(db_path, db)
    ts = now_ts()
    with db.atomic("IMMEDIATE"):
        supplier = db.execute_sql("INSERT INTO supplier (name, email, lead_time_days, created_at)"
                                  " VALUES ('Bench Supplies', 'orders@bench.example', 2, ?) RETURNING id",
                                  (ts,)).fetchone()[0]
        db.execute_sql("UPDATE variant SET reorder_point = ?, reorder_qty = ?, supplier_id = ?",
                       (POINT, REORDER_QTY, supplier))
    for i in range(1, n_crossing + n_plenty + 1):
        qty = START_QTY if i <= n_crossing else PLENTY
        app.ledger.post(Move("receive", sku=sku(i), location="BER-A-01", qty=qty), op_id=f"setup:{i}",
                        device="bench")
    return app


def sku(i: int) -> str:
    return f"BENCH-{i:03d}"


# --- the watcher process ------------------------------------------------------------------------------------

def serve_watcher(db_path: Path) -> int:
    """`--watcher DB`: run the agent's reorder watcher until stdin closes (or SIGTERM)."""
    from appliance.purchasing.reorder import ReorderWatcher, catch_up
    app = make_app(db_path)
    catch_up(app)   # sets the cursor at the newest movement, as on a box's first start
    watcher = ReorderWatcher(app)
    watcher.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    watcher.stop()
    return 0


class WatcherProcess:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "WatcherProcess":
        self.proc = subprocess.Popen([sys.executable, __file__, "--watcher", str(self.db_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the watcher process did not start (said {line!r})")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.returncode != 0:
            raise RuntimeError(f"the watcher process exited with {self.proc.returncode}")


# --- 1. commit → alert + draft line -------------------------------------------------------------------------

def bench_latency(app: App, trials: int, rng: random.Random) -> tuple[list[float], list[float], list[str]]:
    import sqlite3
    reader = sqlite3.connect(str(app.config.database.path), isolation_level=None)
    failures = []
    latencies, posts = [], []
    with WatcherProcess(Path(app.config.database.path)):
        for i in range(1, trials + 1):
            time.sleep(rng.uniform(0, 0.040))
            variant_id = app.db.execute_sql("SELECT id FROM variant WHERE sku = ?", (sku(i),)).fetchone()[0]
            subject = f"{sku(i)}@{SITE}"
            begin = time.perf_counter()
            app.ledger.post(Move("ship", sku=sku(i), location="BER-A-01", qty=SHIP_QTY), op_id=f"cross:{i}",
                            device="bench")
            committed = time.perf_counter()
            deadline = committed + 5.0
            while True:
                seen = reader.execute(
                    "SELECT EXISTS (SELECT 1 FROM alert WHERE kind = 'low_stock' AND subject = ?"
                    " AND resolved_at IS NULL) AND EXISTS (SELECT 1 FROM purchase_order_line l JOIN purchase_order po"
                    " ON po.id = l.po_id WHERE po.status = 'draft' AND po.auto AND l.variant_id = ?)",
                    (subject, variant_id)).fetchone()[0]
                now = time.perf_counter()
                if seen:
                    break
                if now > deadline:
                    failures.append(f"{subject}: no alert and draft line within 5 s")
                    break
                time.sleep(0.0005)
            posts.append((committed - begin) * 1e3)
            latencies.append((now - committed) * 1e3)
    reader.close()
    return latencies, posts, failures


# --- 2. the trigger's cost to a ship post --------------------------------------------------------------------

def ship_round(app: App, first: int, n: int, n_crossing: int, n_plenty: int, tag: str) -> float:
    start = time.perf_counter()
    for j in range(first, first + n):
        app.ledger.post(Move("ship", sku=sku(n_crossing + 1 + j % n_plenty), location="BER-A-01", qty=1),
                        op_id=f"{tag}:{j}", device="bench")
    return (time.perf_counter() - start) * 1e3 / n


def bench_cost(app: App, posts: int, rounds: int, n_crossing: int, n_plenty: int) -> dict:
    db_path = Path(app.config.database.path)
    ship_round(app, 0, min(posts, 200), n_crossing, n_plenty, "warm")
    without, with_, ratios = [], [], []
    counter = 0
    for r in range(rounds):
        pair = {}
        order = ("without", "with") if r % 2 == 0 else ("with", "without")
        for arm in order:
            if arm == "with":
                with WatcherProcess(db_path):
                    pair[arm] = ship_round(app, counter, posts, n_crossing, n_plenty, f"r{r}w")
            else:
                pair[arm] = ship_round(app, counter, posts, n_crossing, n_plenty, f"r{r}n")
            counter += posts
        without.append(pair["without"])
        with_.append(pair["with"])
        ratios.append((pair["with"] - pair["without"]) / pair["without"])
        log(f"round {r + 1}/{rounds}: {pair['without']:.3f} ms without, {pair['with']:.3f} ms with the watcher")
    return {"mean_post_ms_without": [round(x, 4) for x in without], "mean_post_ms_with": [round(x, 4) for x in with_],
            "added_per_round": [round(x, 4) for x in ratios], "added_median": round(statistics.median(ratios), 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="40 trials, 3 rounds of 150 posts (a smoke test)")
    parser.add_argument("--watcher", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.watcher:
        return serve_watcher(args.watcher)
    if args.quick:
        args.trials, args.posts, args.rounds = 40, 150, 3
    rng = random.Random(6)
    with tempfile.TemporaryDirectory(prefix="bench-reorder-") as tmp:
        db_path = Path(tmp) / "ledger.db"
        n_plenty = 50
        log(f"set-up: {args.trials} variants at {START_QTY} and {n_plenty} with plenty, point {POINT}")
        app = build(db_path, args.trials, n_plenty)
        log(f"1. commit -> alert + draft line, {args.trials} crossings")
        latencies, posts, failures = bench_latency(app, args.trials, rng)
        log(f"2. added cost to a ship post, {args.rounds} rounds of {args.posts} posts per arm")
        cost = bench_cost(app, args.posts, args.rounds, args.trials, n_plenty)
        drafted = app.db.execute_sql("SELECT count(*) FROM purchase_order_line l JOIN purchase_order po"
                                     " ON po.id = l.po_id WHERE po.auto").fetchone()[0]
        alerts = app.db.execute_sql("SELECT count(*) FROM alert WHERE kind = 'low_stock'").fetchone()[0]
        app.db.close()
        lat = percentiles(latencies)
        post = percentiles(posts)
        result = {
            "benchmark": "reorder",
            "targets": {
                "commit_to_alert_and_draft_p99_ms": target(
                    lat["p99"], f"<= {TARGET_P99_MS:g} ms", TARGET_P99_MS,
                    what="from a committed ship that crosses the point to the open alert and the draft line"),
                "trigger_added_cost_to_ship_post": target(
                    cost["added_median"], f"<= {TARGET_ADDED:g} of the post's own latency", TARGET_ADDED,
                    what="(mean ship post with the watcher - without) / without, median of paired rounds"),
            },
            "latency_ms": {"commit_to_alert_and_draft": lat, "ship_post_baseline": post,
                           "ratio_p50_to_post_p50": round(lat["p50"] / post["p50"], 2)},
            "cost": cost,
            "sanity": {"ok": not failures and drafted == args.trials and alerts == args.trials,
                       "failures": failures[:10], "draft_lines": drafted, "low_stock_alerts": alerts},
            "machine": machine_info(Path(tmp)),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
