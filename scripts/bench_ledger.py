#!/usr/bin/env python3
"""Ledger benchmark: post throughput against raw sqlite3, read queries and `check` on a big ledger, CSV import.

Prints ONE JSON object on stdout; progress goes to stderr.

1. Posts. Single-movement `Ledger.post(Move("receive"|"ship", ...), op_id=...)` alternating receive (3) and ship (1)
   of the same SKU and location, so stock stays positive, against a raw sqlite3 baseline doing the same writes:
   `BEGIN IMMEDIATE`; `UPDATE site SET head_seq = head_seq + 1 ... RETURNING epoch, head_seq`; INSERT the movement
   row (same table, same columns, same values including op_id); UPDATE the stock row (INSERT when new); COMMIT.
   Each side has its own fresh database file created with `open_db()` (identical schema and indexes) and the same
   pragmas (WAL, synchronous, foreign_keys=ON, busy_timeout, cache_size). A third arm, `raw_with_op`, adds the
   `op` row the ledger writes for an op_id (context only; the target ratio is ledger / raw). The arms run in rounds
   of N posts each, their order rotated every round; rates are per round and the ratio is the median of the
   per-round ratios (paired, so machine noise cancels), with the ratio of median rates next to it. Without
   `--posts`, N is calibrated from a warm-up so that the rounds take ~30 s. The same comparison is repeated on
   copies of the big database (random SKUs and bins; context only, no target).
2. Queries on a generated ledger (scripts/gen_ledger_data.py: 50,000 variants x 2 sites, 1,000,000 movements,
   check() empty), opened with `open_db(..., synchronous=FULL)`: a stock list page, one SKU at all locations,
   stock as of a past moment for one SKU, a history page of one SKU, the full check. Per-SKU timings use a
   different random SKU for every sample (so SQLite's own 16 MB page cache is cold-ish for that SKU; the OS page
   cache is warm: the file was just generated or reused and nothing drops caches). Each query has a raw-SQL
   baseline doing the least work that answers the same question, and its EXPLAIN QUERY PLAN.
3. Import of a 50,000-variant CSV (written by this script) into a fresh database with
   `appliance.catalog.csv_import.import_products`, against a raw executemany of the same rows.

Options: --quick (2,000 variants, 20,000 movements, few posts; for CI smoke tests), --data-dir (where the big
database is cached; default: <tmp>/appliance-bench-ledger, reused when valid), --posts N, --rounds R,
--synchronous FULL|NORMAL, --skip-import, --skip-big-posts.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

import peewee  # noqa: E402

import gen_ledger_data as gen  # noqa: E402
from appliance.ledger import check as ledger_check  # noqa: E402
from appliance.ledger import queries  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.requests import Move  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402
from appliance.ledger.sites import add_location, init_site  # noqa: E402
from appliance.ledger.movement_token import Body, Signer  # noqa: E402
from appliance.sync.identity import SigningKey  # noqa: E402

SITE = "BER"
BUSY_TIMEOUT_MS = 15000   # open_db's default
CACHE_SIZE = -16000       # open_db's cache_size pragma


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- statistics --------------------------------------------------------------------------------------------

def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def dist(seconds: list[float], unit: float = 1e3, digits: int = 3) -> dict:
    """Summary of a list of durations in seconds, scaled by `unit` (1e3: milliseconds)."""
    v = sorted(x * unit for x in seconds)
    r = lambda x: round(x, digits)  # noqa: E731
    return {"n": len(v), "median": r(statistics.median(v)), "p90": r(pct(v, 90)), "p99": r(pct(v, 99)),
            "min": r(v[0]), "max": r(v[-1]), "mean": r(statistics.fmean(v))}


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn(*args, **kw)
    return time.perf_counter() - t, result


# --- query plans -------------------------------------------------------------------------------------------

def capture_sql(conn: sqlite3.Connection, fn) -> list[str]:
    """The SELECT statements `fn` runs, with their parameters expanded (sqlite3_expanded_sql)."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    out = []
    for sql in seen:
        flat = " ".join(sql.split())
        if flat.upper().startswith(("SELECT", "WITH")) and flat not in out:
            out.append(flat)
    return out


def query_plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    depth = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def plans(conn: sqlite3.Connection, fn) -> list[dict]:
    return [{"sql": sql, "plan": query_plan(conn, sql)} for sql in capture_sql(conn, fn)]


# --- posts -------------------------------------------------------------------------------------------------

INSERT_MOVEMENT = """
INSERT INTO movement (origin, epoch, seq, op_id, kind, variant_id, location_id, to_location_id, lot, expiry,
    d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, note, user_login,
    device, ts, token, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# The raw arm signs the same body with the same key and library as the ledger (movement_token.Signer), so that
# the ratio measures what the ledger's code costs beyond the work any implementation has to do.
RAW_SIGNER = Signer(SigningKey.from_seed(f"{SITE}#1", bytes([2]) * 32))
UPDATE_STOCK = """
UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ?, in_transit = in_transit + ?,
    expiry = coalesce(?, expiry)
WHERE variant_id = ? AND location_id = ? AND lot = ?"""
INSERT_STOCK = """
INSERT INTO stock (variant_id, location_id, lot, expiry, on_hand, reserved, in_transit) VALUES (?, ?, ?, ?, ?, ?, ?)"""
READ_HEAD = "SELECT epoch, head_seq, head_hash FROM site WHERE id = ?"
SET_HEAD = "UPDATE site SET head_seq = ?, head_hash = ? WHERE id = ?"
INSERT_OP = "INSERT OR IGNORE INTO op (op_id, request_digest, created_at) VALUES (?, ?, ?)"


def raw_connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A plain sqlite3 connection with open_db's pragmas, in open_db's order."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    for pragma in (f"busy_timeout={BUSY_TIMEOUT_MS}", "journal_mode=wal", f"synchronous={synchronous}",
                   "foreign_keys=1", f"cache_size={CACHE_SIZE}"):
        conn.execute("PRAGMA " + pragma)
    return conn


def now_ts() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")[:26] + "Z"


class Workload:
    """The post sequence both arms run: pairs (receive 3, ship 1) of one SKU at one location, cycling."""

    def __init__(self, pairs: list[tuple[str, str, int, int, int | None]]) -> None:
        self.pairs = pairs   # (sku, location code, variant id, location id, cost price)

    def step(self, g: int):
        sku, code, vid, lid, cost = self.pairs[(g // 2) % len(self.pairs)]
        return ("receive", 3, cost) if g % 2 == 0 else ("ship", 1, None), sku, code, vid, lid


def run_ledger(ledger: Ledger, work: Workload, start: int, n: int, tag: str) -> tuple[float, list[float]]:
    lat = []
    clock = time.perf_counter
    t0 = clock()
    for g in range(start, start + n):
        (kind, qty, _), sku, code, _, _ = work.step(g)
        t = clock()
        ledger.post(Move(kind, sku=sku, location=code, qty=qty), op_id=f"{tag}-{g}")
        lat.append(clock() - t)
    return clock() - t0, lat


def run_raw(conn: sqlite3.Connection, work: Workload, start: int, n: int, tag: str,
            with_op: bool) -> tuple[float, list[float]]:
    lat = []
    clock = time.perf_counter
    execute = conn.execute
    t0 = clock()
    for g in range(start, start + n):
        (kind, qty, cost), sku, code, vid, lid = work.step(g)
        t = clock()
        op_id = f"{tag}-{g}"
        d_on_hand = qty if kind == "receive" else -qty
        ts = now_ts()
        execute("BEGIN IMMEDIATE")
        try:
            if with_op:
                execute(INSERT_OP, (op_id, hashlib.sha256(f"{kind}{sku}{qty}".encode()).hexdigest()[:32], ts))
            epoch, seq, prev = execute(READ_HEAD, (SITE,)).fetchone()
            seq += 1
            token, digest = RAW_SIGNER.sign(Body(1, SITE, epoch, seq, prev, kind, sku, code, None, "", None, d_on_hand,
                                                 0, 0, cost, None, None, None, None, None, None, None, op_id, ts))
            execute(SET_HEAD, (seq, digest, SITE))
            execute(INSERT_MOVEMENT, (SITE, epoch, seq, op_id, kind, vid, lid, None, "", None, d_on_hand, 0, 0,
                                      cost, None, None, None, None, None, None, None, ts, token, digest))
            if execute(UPDATE_STOCK, (d_on_hand, 0, 0, None, vid, lid, "")).rowcount == 0:
                execute(INSERT_STOCK, (vid, lid, "", None, d_on_hand, 0, 0))
            execute("COMMIT")
        except BaseException:
            execute("ROLLBACK")
            raise
        lat.append(clock() - t)
    return clock() - t0, lat


def bench_key(db: peewee.SqliteDatabase) -> SigningKey:
    """A fixed site key, registered as `appliance init` would: the ledger arm signs every movement, as in production."""
    key = SigningKey.from_seed(f"{SITE}#1", bytes([1]) * 32)   # the seed gen_ledger_data.py signs BER's with
    with db.atomic("IMMEDIATE"):
        db.execute_sql("INSERT OR IGNORE INTO site_key (kid, site_id, public_key, created_at) VALUES (?, ?, ?, ?)",
                       (key.kid, SITE, key.public.text(), now_ts()))
    return key


def setup_small(path: Path, synchronous: str, n_skus: int = 50) -> peewee.SqliteDatabase:
    """A fresh ledger: site BER, four bins, `n_skus` variants with cost prices, no stock."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = open_db(path, synchronous=synchronous)
    init_site(db, SITE, "Berlin")
    for i in range(1, 5):
        add_location(db, SITE, f"BER-A-{i:02d}", name=f"bay {i}")
    ts = now_ts()
    with db.atomic("IMMEDIATE"):
        db.execute_sql("INSERT INTO product (id, sku, name, created_at, updated_at) VALUES (1, 'BENCH', 'Bench', ?, ?)",
                       (ts, ts))
        for i in range(1, n_skus + 1):
            db.execute_sql("INSERT INTO variant (id, product_id, sku, cost_price, created_at, updated_at)"
                           " VALUES (?, 1, ?, ?, ?, ?)", (i, f"BENCH-{i:03d}", 100 + i, ts, ts))
    return db


def small_workload(conn: sqlite3.Connection) -> Workload:
    variants = conn.execute("SELECT id, sku, cost_price FROM variant ORDER BY id").fetchall()
    locations = conn.execute("SELECT id, code FROM location ORDER BY id").fetchall()
    return Workload([(sku, locations[i % len(locations)][1], vid, locations[i % len(locations)][0], cost)
                     for i, (vid, sku, cost) in enumerate(variants)])


def big_workload(conn: sqlite3.Connection, n_pairs: int, seed: int) -> Workload:
    rng = random.Random(seed)
    variants = conn.execute("SELECT id, sku, cost_price FROM variant").fetchall()
    bins = conn.execute("SELECT id, code FROM location WHERE site_id = ? AND kind = 'bin'", (SITE,)).fetchall()
    pairs = []
    for vid, sku, cost in rng.sample(variants, min(n_pairs, len(variants))):
        lid, code = rng.choice(bins)
        pairs.append((sku, code, vid, lid, cost))
    return Workload(pairs)


def post_rounds(arms: dict, rounds: int, n: int) -> dict:
    """Run every arm `rounds` times for `n` posts, rotating the order; per-arm rates and latencies."""
    names = list(arms)
    done = {name: 0 for name in names}
    rates = {name: [] for name in names}
    lats = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            elapsed, lat = arms[name](done[name], n)
            done[name] += n
            rates[name].append(n / elapsed)
            lats[name].extend(lat)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{name} {rates[name][-1]:.0f}/s" for name in names))
    out = {}
    for name in names:
        out[name] = {"rate_per_s_median": round(statistics.median(rates[name]), 1),
                     "rate_per_s_rounds": [round(x, 1) for x in rates[name]],
                     "latency_ms": dist(lats[name])}
    ratios = [a / b for a, b in zip(rates["ledger"], rates["raw"])]
    out["ratio_ledger_raw"] = {
        "median_of_round_ratios": round(statistics.median(ratios), 3),
        "ratio_of_median_rates": round(out["ledger"]["rate_per_s_median"] / out["raw"]["rate_per_s_median"], 3),
        "rounds": [round(x, 3) for x in ratios]}
    if "raw_with_op" in rates:
        ratios_op = [a / b for a, b in zip(rates["ledger"], rates["raw_with_op"])]
        out["ratio_ledger_raw_with_op"] = {"median_of_round_ratios": round(statistics.median(ratios_op), 3),
                                           "rounds": [round(x, 3) for x in ratios_op]}
    return out


def make_arms(ledger: Ledger, raw: sqlite3.Connection, raw_op: sqlite3.Connection, work: Workload) -> dict:
    return {
        "ledger": lambda start, n: run_ledger(ledger, work, start, n, "L"),
        "raw": lambda start, n: run_raw(raw, work, start, n, "R", with_op=False),
        "raw_with_op": lambda start, n: run_raw(raw_op, work, start, n, "O", with_op=True),
    }


def bench_posts(work_dir: Path, synchronous: str, posts: int | None, rounds: int, target_s: float,
                quick: bool) -> dict:
    log(f"posts: fresh databases in {work_dir}, synchronous={synchronous}")
    ledger_db = setup_small(work_dir / "posts-ledger.db", synchronous)
    raw_paths = []
    for name in ("posts-raw.db", "posts-raw-op.db"):
        db = setup_small(work_dir / name, synchronous)
        db.close()
        raw_paths.append(work_dir / name)
    raw, raw_op = (raw_connect(p, synchronous) for p in raw_paths)
    ledger = Ledger(ledger_db, SITE, bench_key(ledger_db))
    work = small_workload(raw)
    assert [p[:2] for p in work.pairs] == [p[:2] for p in small_workload(ledger_db.connection()).pairs]
    arms = make_arms(ledger, raw, raw_op, work)

    # Warm-up (statement caches, first pages, WAL file) and calibration of N.
    warm = 20 if quick else 200
    per_post = {}
    for name, arm in arms.items():
        elapsed, _ = arm(10**9, warm)   # op_ids out of the measured range
        per_post[name] = elapsed / warm
    if posts is None:
        posts = 200 if quick else int(target_s / (rounds * sum(per_post.values())))
        posts = max(100, min(posts, 50_000)) // 2 * 2
    log(f"posts: warm-up {warm}/arm, " + ", ".join(f"{k} {1 / v:.0f}/s" for k, v in per_post.items())
        + f" -> N = {posts} posts per arm per round, {rounds} rounds")
    t0 = time.perf_counter()
    result = post_rounds(arms, rounds, posts)
    elapsed = time.perf_counter() - t0

    # Both sides wrote the same thing: same stock, same number of movements (sanity, not timed).
    q = ("SELECT (SELECT count(*) FROM movement), (SELECT head_seq FROM site WHERE id = 'BER'),"
         " (SELECT sum(on_hand) FROM stock)")
    counts = {"ledger": ledger_db.execute_sql(q).fetchone(), "raw": raw.execute(q).fetchone(),
              "raw_with_op": raw_op.execute(q).fetchone()}
    # The raw arm signs with a key this database does not register: only its signatures may differ.
    consistent = (not ledger_check.check(ledger_db.connection(), signatures=True)
                  and all(d.what in ("signature", "more") for d in ledger_check.check(raw, signatures=True)))
    ledger_db.close()
    raw.close()
    raw_op.close()
    for name in ("posts-ledger.db", "posts-raw.db", "posts-raw-op.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(str(work_dir / name) + suffix).unlink(missing_ok=True)
    return {
        "synchronous": synchronous, "posts_per_arm_per_round": posts, "rounds": rounds,
        "warmup_posts_per_arm": warm, "seconds": round(elapsed, 1),
        "workload": "alternating receive 3 / ship 1 of the same SKU+bin, 50 SKUs x 4 bins, every post with an op_id,"
                    " no user; fresh database per arm",
        "raw_baseline": "BEGIN IMMEDIATE; SELECT site head; sign the same body with the same Signer; UPDATE site"
                        " head; INSERT movement with its token; UPDATE stock (INSERT if new); COMMIT."
                        " raw_with_op adds INSERT OR IGNORE INTO op (context only)",
        **result,
        "sanity": {"movements_head_seq_on_hand": counts, "check_empty": consistent},
    }


def bench_big_posts(big_path: Path, work_dir: Path, synchronous: str, n: int, rounds: int) -> dict:
    """Ledger vs raw on copies of the big database: deeper B-trees, random SKUs and bins (context only)."""
    paths = {name: work_dir / f"big-posts-{name}.db" for name in ("ledger", "raw", "raw_with_op")}
    t0 = time.perf_counter()
    for p in paths.values():
        shutil.copyfile(big_path, p)
        # Flush the copy now: otherwise its writeback competes with the commits' fsyncs in the first round.
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    log(f"big posts: copied (and fsynced) the big database 3x in {time.perf_counter() - t0:.1f}s")
    ledger_db = open_db(paths["ledger"], synchronous=synchronous)
    raw = raw_connect(paths["raw"], synchronous)
    raw_op = raw_connect(paths["raw_with_op"], synchronous)
    work = big_workload(raw, 5000, seed=7)
    arms = make_arms(Ledger(ledger_db, SITE, bench_key(ledger_db)), raw, raw_op, work)
    for arm in arms.values():
        arm(10**9, 50)
    result = post_rounds(arms, rounds, n)
    ledger_db.close()
    raw.close()
    raw_op.close()
    for p in paths.values():
        for suffix in ("", "-wal", "-shm"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    return {"posts_per_arm_per_round": n, "rounds": rounds,
            "workload": "alternating receive 3 / ship 1 of random SKUs at random BER bins (5,000 pairs)", **result}


# --- queries on the big database ----------------------------------------------------------------------------

def sample_times(fn, samples: list) -> list[float]:
    out = []
    for s in samples:
        t = time.perf_counter()
        fn(s)
        out.append(time.perf_counter() - t)
    return out


def bench_queries(big_path: Path, meta: dict, synchronous: str, quick: bool, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    db = open_db(big_path, synchronous=synchronous)
    conn = db.connection()
    q: dict = {}
    first_ts, last_ts = meta["stats"]["first_ts"], meta["stats"]["last_ts"]
    skus = [r[0] for r in conn.execute("SELECT sku FROM variant")]
    n_sku = 200 if quick else 1000
    n_few = 200 if quick else 500
    n_page = 20 if quick else 40

    # Context sizes.
    q["data"] = {
        "file_mb": round(big_path.stat().st_size / 1e6, 1),
        "movements": conn.execute("SELECT max(id) FROM movement").fetchone()[0],
        "stock_rows": conn.execute("SELECT count(*) FROM stock").fetchone()[0],
        "stock_rows_BER": conn.execute("SELECT count(*) FROM stock s JOIN location l ON l.id = s.location_id"
                                       " WHERE l.site_id = 'BER'").fetchone()[0],
        "variants": len(skus),
        "analyze_run": conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] > 0,
        "cache": "per-SKU samples use a different random SKU each (SQLite page cache cold-ish for it, 16 MB cache);"
                 " OS page cache warm (file just generated or reused; caches not dropped)",
    }

    # 1. Stock list page: 50 rows, site=BER, filtered and sorted.
    log("queries: stock list pages")
    words = gen.NOUNS + [b.split()[0] for b in gen.BRANDS]
    page_cases = {
        "site_search_sort_sku": lambda w: queries.stock_levels(conn, site=SITE, search=w, sort="sku", limit=50),
        "site_search_sort_on_hand": lambda w: queries.stock_levels(conn, site=SITE, search=w, sort="on_hand",
                                                                   limit=50),
        "site_sort_sku_no_search": lambda w: queries.stock_levels(conn, site=SITE, sort="sku", limit=50),
        "site_sku_prefix_search": lambda w: queries.stock_levels(conn, site=SITE, search=w, sort="sku", limit=50),
        "one_bin_sort_sku": lambda w: queries.stock_levels(conn, location=w, sort="sku", limit=50),
    }
    prefixes = [c[1] + "-0" for c in gen.CATEGORIES]
    bins = [r[0] for r in conn.execute("SELECT code FROM location WHERE site_id = 'BER' AND kind = 'bin'")]
    inputs = {"site_search_sort_sku": words, "site_search_sort_on_hand": words, "site_sort_sku_no_search": [None],
              "site_sku_prefix_search": prefixes, "one_bin_sort_sku": bins}
    pages = {}
    for name, fn in page_cases.items():
        args = [rng.choice(inputs[name]) for _ in range(n_page)]
        fn(args[0])  # one warm-up (schema, statement cache)
        times = sample_times(fn, args)
        rows = [len(fn(a)) for a in args[:5]]
        pages[name] = {"ms": dist(times), "rows_returned_first5": rows, "plan": plans(conn, lambda: fn(args[0]))}
    pages["site_search_sort_sku"]["example_args"] = "site='BER', search=<a product-name word, e.g. 'Leine'>, sort='sku'"
    base = sample_times(lambda _: conn.execute(
        "SELECT count(*) FROM stock s JOIN location l ON l.id = s.location_id WHERE l.site_id = 'BER'").fetchone(),
        range(10))
    pages["baseline_count_BER_stock_rows_ms"] = dist(base)
    base = sample_times(lambda _: conn.execute(
        "SELECT v.sku FROM variant v ORDER BY v.sku LIMIT 50").fetchall(), range(10))
    pages["baseline_first_50_skus_by_index_ms"] = dist(base)
    q["stock_list_page"] = pages

    # 2. One SKU at all locations.
    log("queries: one SKU at all locations")
    sample = rng.sample(skus, n_sku)
    one = {"stock_levels_sku_ms": dist(sample_times(lambda s: queries.stock_levels(conn, sku=s), sample)),
           "plan": plans(conn, lambda: queries.stock_levels(conn, sku=sample[0]))}
    sample2 = rng.sample(skus, n_sku)
    one["totals_by_site_ms"] = dist(sample_times(lambda s: queries.totals_by_site(conn, s), sample2))
    one["totals_by_site_plan"] = plans(conn, lambda: queries.totals_by_site(conn, sample2[0]))
    sample3 = rng.sample(skus, n_sku)
    one["baseline_raw_ms"] = dist(sample_times(lambda s: conn.execute(
        "SELECT s.location_id, s.lot, s.on_hand FROM stock s WHERE s.variant_id = (SELECT id FROM variant WHERE sku = ?)",
        (s,)).fetchall(), sample3))
    q["one_sku_all_locations"] = one

    # 3. Stock as of a past moment, one SKU.
    log("queries: stock as of")
    t_lo = datetime.fromisoformat(first_ts.replace("Z", "+00:00")).timestamp()
    t_hi = datetime.fromisoformat(last_ts.replace("Z", "+00:00")).timestamp()

    def past_ts() -> str:
        return gen.fmt_ts(datetime.fromtimestamp(rng.uniform(t_lo, t_hi), timezone.utc))

    cases = [(s, past_ts()) for s in rng.sample(skus, n_few)]
    as_of = {"ms": dist(sample_times(lambda c: queries.stock_as_of(conn, c[1], sku=c[0]), cases)),
             "plan": plans(conn, lambda: queries.stock_as_of(conn, cases[0][1], sku=cases[0][0]))}
    cases_b = [(s, past_ts()) for s in rng.sample(skus, n_few)]
    as_of["baseline_raw_ms"] = dist(sample_times(lambda c: conn.execute(
        "SELECT location_id, lot, sum(d_on_hand), sum(d_reserved) FROM movement"
        " WHERE variant_id = (SELECT id FROM variant WHERE sku = ?) AND ts <= ? GROUP BY location_id, lot",
        c).fetchall(), cases_b))
    q["stock_as_of"] = as_of

    # 4. History page of one SKU.
    log("queries: history pages")
    sample4 = rng.sample(skus, n_few)
    hist = {"ms": dist(sample_times(lambda s: queries.history(conn, sku=s, limit=50), sample4)),
            "plan": plans(conn, lambda: queries.history(conn, sku=sample4[0], limit=50))}
    movs = [conn.execute("SELECT count(*) FROM movement WHERE variant_id = (SELECT id FROM variant WHERE sku = ?)",
                         (s,)).fetchone()[0] for s in sample4[:100]]
    hist["movements_per_sampled_sku"] = {"median": statistics.median(movs), "max": max(movs)}
    sample5 = rng.sample(skus, n_few)
    hist["baseline_raw_ms"] = dist(sample_times(lambda s: conn.execute(
        "SELECT * FROM movement WHERE variant_id = (SELECT id FROM variant WHERE sku = ?)"
        " ORDER BY ts DESC LIMIT 50", (s,)).fetchall(), sample5))
    q["history_page"] = hist

    # 5. Full check.
    log("queries: check() x3")
    runs = []
    for i in range(3):
        elapsed, diffs = timed(ledger_check.check, conn)
        runs.append(elapsed)
        log(f"  check run {i + 1}: {elapsed:.2f}s, {len(diffs)} differences")
        if diffs:
            raise RuntimeError(f"check() found {len(diffs)} differences in the generated data: {diffs[:3]}")
    parts = {}
    for name in ("_stock", "_sequences", "_reservations", "_transfers"):
        conn.execute("BEGIN")
        try:
            parts[name.strip("_")] = round(timed(getattr(ledger_check, name), conn)[0], 3)
        finally:
            conn.execute("COMMIT")
    chk = {"s": dist(runs, unit=1, digits=3), "parts_s_one_run": parts,
           "recomputed_query_only_s": round(timed(lambda: conn.execute(ledger_check._RECOMPUTED).fetchall())[0], 3),
           "baseline_count_movements_s": round(timed(
               lambda: conn.execute("SELECT count(*) FROM movement").fetchone())[0], 3),
           "baseline_table_scan_sum_s": round(timed(
               lambda: conn.execute("SELECT sum(d_on_hand), sum(d_in_transit) FROM movement").fetchone())[0], 3),
           "recomputed_plan": query_plan(conn, ledger_check._RECOMPUTED)}
    q["check"] = chk
    db.close()

    targets = {
        "stock_list_page_ms": target(pages["site_search_sort_sku"]["ms"]["median"], "<= 20", 20,
                                     p99=pages["site_search_sort_sku"]["ms"]["p99"],
                                     what="stock_levels(site='BER', search=<word>, sort='sku', limit=50); "
                                          "worst other case: " + worst_case(pages)),
        "one_sku_all_locations_ms": target(one["stock_levels_sku_ms"]["median"], "<= 2", 2,
                                           p99=one["stock_levels_sku_ms"]["p99"], what="stock_levels(sku=...)"),
        "stock_as_of_ms": target(as_of["ms"]["median"], "<= 20", 20, p99=as_of["ms"]["p99"],
                                 what="stock_as_of(ts, sku=...)"),
        "history_page_ms": target(hist["ms"]["median"], "<= 5", 5, p99=hist["ms"]["p99"],
                                  what="history(sku=..., limit=50)"),
        "check_s": target(chk["s"]["median"], "<= 15", 15, what="check(conn), median of 3"),
    }
    return q, targets


def worst_case(pages: dict) -> str:
    cases = {k: v["ms"]["median"] for k, v in pages.items() if isinstance(v, dict) and "plan" in v}
    name = max(cases, key=cases.get)
    return f"{name} {cases[name]} ms median"


def target(measured: float, text: str, limit: float, *, p99: float | None = None, what: str = "",
           higher_is_better: bool = False) -> dict:
    met = measured >= limit if higher_is_better else measured <= limit
    out = {"measured": measured, "target": text, "met": bool(met)}
    if p99 is not None:
        out["p99"] = p99
    if what:
        out["what"] = what
    return out


# --- import -------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("sku,name,product_sku,variant_name,barcode,category,supplier,cost_price,sale_price,unit,pack_size,"
               "reorder_point,reorder_qty").split(",")


def money(minor: int | None) -> str:
    return "" if minor is None else f"{minor // 100}.{minor % 100:02d}"


def write_csv(path: Path, n_variants: int, seed: int) -> int:
    import csv
    suppliers, products, variants, barcodes = gen.catalog_rows(n_variants, seed)
    supplier_name = dict(suppliers)
    product = {p[0]: p for p in products}
    code = {vid: c for c, vid in barcodes}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for vid, pid, sku, vname, cost, sale, unit, rp, rq, pack in variants:
            _, psku, pname, category, sup = product[pid]
            w.writerow([sku, pname, psku, vname, code[vid], category, supplier_name[sup], money(cost), money(sale),
                        unit, pack or "", "" if rp is None else rp, "" if rq is None else rq])
    return len(variants)


def raw_import(path: Path, n_variants: int, seed: int, synchronous: str) -> float:
    """The least the import has to write: suppliers, products, variants, barcodes, packs; one transaction."""
    db = open_db(path, synchronous=synchronous)
    db.close()
    conn = raw_connect(path, synchronous)
    t0 = time.perf_counter()
    suppliers, products, variants, barcodes = gen.catalog_rows(n_variants, seed)
    ts = now_ts()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO supplier (id, name, created_at) VALUES (?, ?, ?)", [s + (ts,) for s in suppliers])
    conn.executemany("INSERT INTO product (id, sku, name, category, supplier_id, created_at, updated_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", [p + (ts, ts) for p in products])
    conn.executemany("INSERT INTO variant (id, product_id, sku, name, cost_price, sale_price, unit, reorder_point,"
                     " reorder_qty, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [v[:9] + (ts, ts) for v in variants])
    conn.executemany("INSERT INTO barcode (code, variant_id) VALUES (?, ?)", barcodes)
    conn.executemany("INSERT INTO pack (variant_id, name, qty) VALUES (?, ?, ?)",
                     [(v[0], f"pack of {v[9]}", v[9]) for v in variants if v[9]])
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def bench_import(work_dir: Path, n_variants: int, synchronous: str, seed: int, quick: bool) -> tuple[dict, dict]:
    csv_path = work_dir / f"products-{n_variants}.csv"
    rows = write_csv(csv_path, n_variants, seed)
    out: dict = {"variants_in_csv": rows, "csv_mb": round(csv_path.stat().st_size / 1e6, 2),
                 "synchronous": synchronous}
    try:
        mod = importlib.import_module("appliance.catalog.csv_import")
        import_products = mod.import_products
    except (ImportError, AttributeError) as exc:
        out["skipped"] = f"appliance.catalog.csv_import.import_products not available: {exc}"
        log("import: " + out["skipped"])
        csv_path.unlink()
        return out, {"measured": None, "target": "<= 60", "met": None, "what": out["skipped"]}
    runs, results = [], []
    budget = 10 if quick else 90    # run again while the runs so far took less than this
    for i in range(3):
        path = work_dir / f"import-{i}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        db = open_db(path, synchronous=synchronous)
        init_site(db, SITE, "Berlin")
        log(f"import: run {i + 1}, {rows} variants")
        elapsed, result = timed(import_products, db, csv_path)
        counts = db.execute_sql("SELECT (SELECT count(*) FROM product), (SELECT count(*) FROM variant),"
                                " (SELECT count(*) FROM barcode), (SELECT count(*) FROM pack),"
                                " (SELECT count(*) FROM supplier)").fetchone()
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        runs.append(elapsed)
        results.append(result)
        log(f"  {elapsed:.2f}s; products/variants/barcodes/packs/suppliers = {counts}")
        out["rows_written"] = dict(zip(("product", "variant", "barcode", "pack", "supplier"), counts))
        if counts[1] != rows:
            out["error"] = f"import wrote {counts[1]} variants, the CSV has {rows}"
        if sum(runs) > budget:
            break
    out["s"] = dist(runs, unit=1, digits=3)
    out["result_repr"] = repr(results[-1])[:400]
    base_path = work_dir / "import-raw.db"
    out["baseline_raw_executemany_s"] = round(raw_import(base_path, n_variants, seed, synchronous), 3)
    for suffix in ("", "-wal", "-shm"):
        Path(str(base_path) + suffix).unlink(missing_ok=True)
    csv_path.unlink()
    tgt = target(out["s"]["median"], "<= 60", 60, what=f"import_products(db, csv) of {rows} variants into a fresh DB")
    if "error" in out:
        tgt["met"] = False
        tgt["error"] = out["error"]
    return out, tgt


# --- main ---------------------------------------------------------------------------------------------------

def machine_info(data_dir: Path) -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   "")
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "peewee": peewee.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "cpu": cpu, "memory_gib": mem,
            "data_dir": str(data_dir), "git_commit": commit, "loadavg_at_start": loadavg()}


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help=f"where the generated database is cached (default {gen.default_data_dir()})")
    ap.add_argument("--posts", type=int, default=None, help="posts per arm per round (default: calibrated)")
    ap.add_argument("--rounds", type=int, default=None, help="post rounds (default 5, quick 3)")
    ap.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL", type=str.upper)
    ap.add_argument("--post-seconds", type=float, default=30.0, help="calibration target for the post rounds")
    ap.add_argument("--variants", type=int, default=None, help="override the generated variant count")
    ap.add_argument("--movements", type=int, default=None, help="override the generated movement count")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-big-posts", action="store_true")
    ap.add_argument("--seed", type=int, default=gen.DEFAULT_SEED)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    data_dir = args.data_dir or gen.default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=data_dir))   # same file system as the data
    variants = args.variants or (2_000 if args.quick else 50_000)
    movements = args.movements or (20_000 if args.quick else 1_000_000)
    rounds = args.rounds or (3 if args.quick else 5)
    out: dict = {"benchmark": "ledger", "quick": args.quick, "machine": machine_info(data_dir),
                 "sizes": {"variants": variants, "sites": 2, "movements": movements}}
    try:
        posts = bench_posts(work_dir, args.synchronous, args.posts, rounds, args.post_seconds, args.quick)
        out["posts"] = posts

        t0 = time.perf_counter()
        big_path, meta, fresh = gen.ensure(data_dir, variants=variants, movements=movements, seed=args.seed)
        out["data"] = {"path": str(big_path), "generated_now": fresh,
                       "seconds_to_ensure": round(time.perf_counter() - t0, 1),
                       "generation_seconds": meta.get("seconds"), "stats": meta.get("stats")}

        if not args.skip_big_posts:
            n_big = 100 if args.quick else max(200, min(posts["posts_per_arm_per_round"], 1000))
            out["posts_big_db"] = bench_big_posts(big_path, work_dir, args.synchronous, n_big, 3)

        gc.collect()
        out["queries"], targets = bench_queries(big_path, meta, "FULL", args.quick, args.seed)

        ratio = posts["ratio_ledger_raw"]["median_of_round_ratios"]
        out["targets"] = {"post_ratio": {
            "measured": ratio, "target": ">= 0.6", "met": ratio >= 0.6, "synchronous": args.synchronous,
            "ledger_posts_per_s": posts["ledger"]["rate_per_s_median"],
            "raw_posts_per_s": posts["raw"]["rate_per_s_median"],
            "what": "median over rounds of ledger rate / raw sqlite3 rate (same writes, same pragmas)"}}
        out["targets"].update(targets)

        if args.skip_import:
            out["import"] = {"skipped": "--skip-import"}
            out["targets"]["import_50k_s"] = {"measured": None, "target": "<= 60", "met": None, "what": "skipped"}
        else:
            out["import"], out["targets"]["import_50k_s"] = bench_import(work_dir, variants, args.synchronous,
                                                                         args.seed, args.quick)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    out["all_targets_met"] = all(t["met"] for t in out["targets"].values() if t.get("met") is not None)
    out["seconds_total"] = round(time.perf_counter() - t_start, 1)
    out["machine"]["loadavg_at_end"] = loadavg()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
