#!/usr/bin/env python3
"""The web benchmark's dataset: the big ledger of gen_ledger_data.py, copied fresh for each run and made servable.

The ledger itself (50,000 variants, 1,000,000 movements by default) comes from `gen_ledger_data.ensure`, which
already builds what the web benchmark needs, fast (raw sqlite3 executemany in one big transaction on a file
created by `open_db` + `init_site`, so schema, migrations and the FTS search index triggers are the real ones):
local site BER (head_seq = its movement count, seq 1..N) with 200 bins, a foreign site WAW with its own
locations and movements, the `stock` projection computed in Python and checked with `check()`, movements
signed with fixed site keys. It is cached under `--data-dir`, keyed by (variants, movements, seed, schema),
and reused while valid. On this 2-core sandbox the full size takes ~3.5 minutes to build.

`prepare()` copies the cached file into a work directory (each run starts from the same data: the posts of a
run do not accumulate in the cache) and adds what serving needs, never stored in the cache:
- BER's site key as `keys/site.key` beside the copy (the web app signs its posts with it), the same fixed key
  the generator signed BER's movements with (`bench_ledger.bench_key`);
- a manager `webbench` with a password (`access.users.set_password`) and an API token (`access.api_tokens`).

Usage: python scripts/bench_data.py [--data-dir DIR] [--variants 50000] [--movements 1000000] [--force]
(builds or checks the cache and prints its metadata as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS))

import gen_ledger_data as gen  # noqa: E402
from bench_ledger import bench_key  # noqa: E402

from appliance.access import api_tokens  # noqa: E402
from appliance.access.users import set_password  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.sites import add_user  # noqa: E402
from appliance.sync.identity import SigningKey, write_key_file  # noqa: E402
from appliance.sync.registry import key_path  # noqa: E402

SITE = gen.LOCAL_SITE
LOGIN = "webbench"
PASSWORD = "web benchmark password"
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "appliance-bench"


def log(msg: str) -> None:
    print(f"[bench-data {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Dataset:
    path: Path                     # the working copy (served and written by this run)
    key: SigningKey                # BER's site key, also in keys/site.key beside `path`
    login: str
    password: str
    token: str                     # an API token of `login` (manager)
    info: dict = field(default_factory=dict)   # sizes, build and copy times, for the report


def ensure(data_dir: Path, *, variants: int, movements: int, seed: int = gen.DEFAULT_SEED,
           force: bool = False) -> tuple[Path, dict, bool, float]:
    """The cached ledger for these parameters (built when missing or invalid): (path, meta, built now, seconds)."""
    t0 = time.perf_counter()
    path, meta, fresh = gen.ensure(data_dir, variants=variants, movements=movements, seed=seed, force=force)
    forget_read_only_leftovers(path)
    return path, meta, fresh, time.perf_counter() - t0


def forget_read_only_leftovers(path: Path) -> None:
    """Remove the empty -wal and the -shm that ensure()'s read-only validation leaves beside the cached file
    (a read-only connection cannot delete them on close). Only when the WAL is empty: nothing is lost."""
    wal, shm = Path(str(path) + "-wal"), Path(str(path) + "-shm")
    if wal.exists() and wal.stat().st_size == 0:
        wal.unlink(missing_ok=True)
    if not wal.exists():
        shm.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    # Flush the copy now, or its writeback competes with the first measured commits' fsyncs.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare(data_dir: Path, work_dir: Path, *, variants: int, movements: int,
            seed: int = gen.DEFAULT_SEED) -> Dataset:
    """A fresh servable copy of the cached ledger in `work_dir` (see the module docstring)."""
    cached, meta, fresh, ensure_s = ensure(data_dir, variants=variants, movements=movements, seed=seed)
    t0 = time.perf_counter()
    path = work_dir / "ledger.db"
    shutil.copyfile(cached, path)
    fsync_file(path)
    copy_s = time.perf_counter() - t0
    log(f"copied {cached.name} ({cached.stat().st_size / 1e6:.0f} MB) in {copy_s:.1f}s")

    db = open_db(path)
    try:
        key = bench_key(db)
        write_key_file(key, key_path(path))
        add_user(db, LOGIN, name="Web benchmark", role="manager")
        set_password(db, LOGIN, PASSWORD)
        _, token = api_tokens.create(db, LOGIN, "web benchmark")
    finally:
        db.close()
    info = {"variants": variants, "movements": movements, "seed": seed, "cache": str(cached),
            "built_now": fresh, "build_seconds": meta.get("seconds"), "ensure_seconds": round(ensure_s, 1),
            "copy_seconds": round(copy_s, 1), "file_mb": round(path.stat().st_size / 1e6, 1),
            "stats": meta.get("stats"),
            "copy_policy": "the cached file is copied fresh for every run; posts never reach the cache"}
    return Dataset(path, key, LOGIN, PASSWORD, token, info)


@dataclass
class Workload:
    """What the clients ask for, drawn from the data (deterministic for a seed)."""
    search_texts: list[tuple[str, str]]        # (kind, text)
    post_pairs: list[tuple[str, str]]          # (sku, BER bin) of variants without lots


def workload(path: Path, seed: int, n_texts: int = 240, n_pairs: int = 400) -> Workload:
    import random
    rng = random.Random(seed)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        variants = conn.execute("SELECT v.sku, p.sku, p.name FROM variant v JOIN product p ON p.id = v.product_id"
                                ).fetchall()
        barcodes = [r[0] for r in conn.execute("SELECT code FROM barcode")]
        bins = [r[0] for r in conn.execute(
            "SELECT code FROM location WHERE site_id = ? AND kind = 'bin' ORDER BY code", (SITE,))]
        # Posting only variants that hold no lots anywhere: a ship then never has to choose among lots.
        plain = [r[0] for r in conn.execute(
            "SELECT v.sku FROM variant v WHERE NOT EXISTS (SELECT 1 FROM stock s WHERE s.variant_id = v.id"
            " AND s.lot != '') ORDER BY v.id")]
    finally:
        conn.close()
    texts: list[tuple[str, str]] = []
    kinds = ("sku", "sku_prefix", "product_prefix", "name_part", "name_word", "barcode", "short")
    for i in range(n_texts):
        kind = kinds[i % len(kinds)]
        sku, product_sku, name = rng.choice(variants)
        words = name.split()
        if kind == "sku":
            text = sku
        elif kind == "sku_prefix":
            text = sku[:rng.randint(5, 8)]                   # "DOG-001": hundreds of SKUs start so
        elif kind == "product_prefix":
            text = product_sku.lower()                       # typed in lower case
        elif kind == "name_part":
            word = max(words, key=len)
            start = rng.randint(0, max(0, len(word) - 4))
            text = word[start:start + rng.randint(3, 6)].lower()   # "futter", "kauk": the trigram index
        elif kind == "name_word":
            text = rng.choice(words)
        elif kind == "barcode":
            text = rng.choice(barcodes)
        else:
            text = name[:2]                                  # two letters: the name-prefix path
        texts.append((kind, text))
    pairs = [(rng.choice(plain), rng.choice(bins)) for _ in range(n_pairs)]
    return Workload(texts, pairs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--variants", type=int, default=50_000)
    ap.add_argument("--movements", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=gen.DEFAULT_SEED)
    ap.add_argument("--force", action="store_true", help="rebuild even when a valid cached file exists")
    args = ap.parse_args(argv)
    path, meta, fresh, seconds = ensure(args.data_dir, variants=args.variants, movements=args.movements,
                                        seed=args.seed, force=args.force)
    print(json.dumps({"path": str(path), "built_now": fresh, "ensure_seconds": round(seconds, 1), **meta},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
