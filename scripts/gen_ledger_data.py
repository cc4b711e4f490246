#!/usr/bin/env python3
"""Generate (or reuse) a big, consistent ledger database for benchmarks.

What it writes (deterministic for a given seed):
- local site BER (through `init_site`, user `admin`) and site WAW inserted as a non-local site row, each with its
  own locations: a warehouse, a dock, zones and bins (BER 8 zones x 25 bins, WAW 6 x 20);
- a pet-shop-like catalog: suppliers, products with 1-3 variants each (`--variants` in total), one EAN-13 barcode
  per variant, ~10 % of variants tracked in lots with expiry dates;
- `--movements` movements for both origins (~60 % BER, ~40 % WAW), each origin numbered gaplessly from 1 (epoch 1)
  and `site.head_seq` set to the last one: receive, ship (first-expiry-first-out over lots), adjust, count,
  reserve / consume / release with `reservation` rows (BER only: `check` compares reservations of the local
  site), transfers between the two sites (`transfer` rows, `transfer_out` + later `transfer_in`, some still in
  transit at the end), a few reversals; most requests carry an op_id, and BER's op_ids are in the `op` table;
  timestamps increase from 2025-01-01 to 2026-11-01; half the movements touch a set of 10 % "fast movers";
- the `stock` table as the exact projection of those movements (zero rows kept, as the ledger keeps them), so
  `check()` is empty. The generator runs `check()` once at the end and refuses to publish a database that fails.

How: the schema comes from `open_db()` (so tables, indexes and triggers are exactly the migrations'), then one
big transaction on a plain sqlite3 connection with synchronous=OFF and no journal, the movement indexes dropped
during the bulk insert and re-created from their own SQL afterwards; the file is switched back to WAL at the end.
The benchmark then reopens it with `open_db(..., synchronous="FULL")`.

Caching: `ensure(data_dir, ...)` keeps `ledger-<variants>v-<movements>m-s<seed>.db` plus a `.meta.json` beside it
and reuses them when the metadata matches, the file's schema equals a freshly migrated one, and the cheap
fingerprint (max movement id, head sequences, stock row count, variant count) is unchanged.

Usage: python scripts/gen_ledger_data.py [--data-dir DIR] [--variants 50000] [--movements 1000000] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from array import array
from collections import deque
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.ledger import check as ledger_check  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.movement_token import Body, Signer  # noqa: E402
from appliance.ledger.sites import init_site  # noqa: E402
from appliance.sync.identity import SigningKey  # noqa: E402

GENERATOR_VERSION = 2   # 2: movements signed
DEFAULT_SEED = 20261123
LOCAL_SITE, OTHER_SITE = "BER", "WAW"
SITE_LAYOUT = {LOCAL_SITE: ("Berlin", "ABCDEFGH", 25), OTHER_SITE: ("Warszawa", "ABCDEF", 20)}
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 1, tzinfo=timezone.utc)
SETUP_TS = "2024-12-31T12:00:00.000000Z"
USERS = ("admin", "anna", "ben", "carla", "dawid", "ewa", "franz")

# name, SKU prefix; product names are "<adjective> <noun> <brand>", so a search for a noun or brand matches a few %.
CATEGORIES = [
    ("Dog food", "DOG"), ("Dog snacks", "DSN"), ("Dog toys", "DTY"), ("Dog care", "DCA"), ("Cat food", "CAT"),
    ("Cat snacks", "CSN"), ("Cat toys", "CTY"), ("Cat litter", "CLI"), ("Cat care", "CCA"), ("Bird food", "BRD"),
    ("Bird cages", "BCG"), ("Fish food", "FSH"), ("Aquarium", "AQU"), ("Aquarium tech", "AQT"), ("Small pets", "SMP"),
    ("Hay and straw", "HAY"), ("Reptiles", "REP"), ("Terrarium", "TER"), ("Horse", "HRS"), ("Leashes", "LSH"),
    ("Collars", "COL"), ("Harnesses", "HRN"), ("Beds", "BED"), ("Bowls", "BWL"), ("Transport", "TRP"),
    ("Grooming", "GRM"), ("Health", "HLT"), ("Training", "TRN"), ("Clothing", "CLO"), ("Garden pond", "PND"),
]
ADJECTIVES = ["Premium", "Classic", "Natur", "Bio", "Sensitive", "Junior", "Senior", "Light", "Active", "Deluxe",
              "Mini", "Maxi", "Soft", "Robust", "Fresh", "Gold", "Vital", "Kompakt", "Eco", "Profi"]
NOUNS = ["Trockenfutter", "Nassfutter", "Leckerli", "Kauknochen", "Spielball", "Kratzbaum", "Streu", "Shampoo",
         "Buerste", "Leine", "Halsband", "Geschirr", "Napf", "Decke", "Korb", "Transportbox", "Kaefig", "Filter",
         "Pumpe", "Heizer", "Lampe", "Heu", "Einstreu", "Vitamin", "Wurmkur", "Zeckenschutz", "Mantel", "Pfeife",
         "Clicker", "Futterautomat", "Trinkbrunnen", "Tunnel", "Sitzstange", "Vogelsand", "Flocken", "Granulat",
         "Pellets", "Sticks", "Dental", "Huhn"]
BRANDS = ["Tierfutter Nord", "Pfotenglueck", "Zwirek", "AquaPlus", "Vogelwelt", "Happy Paws", "Nagerland",
          "Reptilo", "Equinox", "Canis Pro", "Felix und Co", "Teichmeister", "Fellpflege24", "Gassi", "Miau"]
SIZES = ["100g", "400g", "800g", "1kg", "2kg", "5kg", "10kg", "15kg", "S", "M", "L", "XL", "rot", "blau", "schwarz",
         "1l", "5l", "10l", "20l"]


def log(msg: str) -> None:
    print(f"[gen] {msg}", file=sys.stderr, flush=True)


def ean13(n: int) -> str:
    body = f"400{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def fmt_ts(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def catalog_rows(n_variants: int, seed: int):
    """Suppliers, products and variants as plain tuples; shared with the benchmark's CSV writer.

    Returns (suppliers, products, variants, barcodes) where
    supplier = (id, name); product = (id, sku, name, category, supplier_id);
    variant = (id, product_id, sku, name, cost_price, sale_price, unit, reorder_point, reorder_qty, pack_size);
    barcode = (code, variant_id).
    """
    rng = random.Random(seed)
    suppliers = [(i + 1, f"{brand} GmbH") for i, brand in enumerate(BRANDS)]
    products, variants, barcodes = [], [], []
    vid = 0
    pid = 0
    while vid < n_variants:
        pid += 1
        cat_name, prefix = CATEGORIES[rng.randrange(len(CATEGORIES))]
        brand_idx = rng.randrange(len(BRANDS))
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {BRANDS[brand_idx]}"
        psku = f"{prefix}-{pid:05d}"
        products.append((pid, psku, name, cat_name, brand_idx + 1))
        k = min(rng.choice((1, 1, 2, 2, 2, 3)), n_variants - vid)
        for size in rng.sample(SIZES, k):
            vid += 1
            cost = rng.randint(50, 8000)
            sale = int(cost * rng.uniform(1.3, 2.2))
            rp = rng.choice((None, 5, 10, 20, 50))
            variants.append((vid, pid, f"{psku}-{size.upper()}", size, cost, sale, "each", rp,
                             rp * 2 if rp else None, rng.choice((None, None, 6, 12, 24))))
            barcodes.append((ean13(vid), vid))
    return suppliers, products, variants, barcodes


class Sim:
    """The ledger's rules in memory: stock rows, reservations, transfers, sequences. Emits movement tuples."""

    def __init__(self, rng: random.Random, variants: list, lot_tracked: set) -> None:
        self.rng = rng
        self.cost = {v[0]: v[4] for v in variants}
        self.lot_tracked = lot_tracked
        self.stock: dict[tuple, list] = {}     # (variant, location, lot) -> [on_hand, reserved, in_transit, expiry]
        self.lots: dict[tuple, list] = {}      # (variant, location) -> [lot, ...] in first-expiry order
        self.seq = {LOCAL_SITE: 0, OTHER_SITE: 0}
        self.next_id = 1
        self.ops: list[tuple] = []
        self.reservations: list[list] = []     # [id, variant, location, lot, qty, consumed, released, ref, status, ...]
        self.held: list[int] = []              # indexes into reservations
        self.transfers: list[list] = []
        self.pending: list[tuple] = []         # heap of (due request index, transfer index, legs)
        self.recent = {LOCAL_SITE: deque(maxlen=200), OTHER_SITE: deque(maxlen=200)}
        self.reversed: set[int] = set()
        self.lot_counter = 0
        self.op_counter = 0
        self.kinds: dict[str, int] = {}

    # -- helpers --------------------------------------------------------------------------------------------

    def row(self, v, loc, lot):
        key = (v, loc, lot)
        r = self.stock.get(key)
        if r is None:
            r = self.stock[key] = [0, 0, 0, None]
        return r

    def totals(self, v, loc):
        if v in self.lot_tracked:
            rows = [self.stock[(v, loc, lot)] for lot in self.lots.get((v, loc), ())]
            return sum(r[0] for r in rows), sum(r[1] for r in rows)
        r = self.stock.get((v, loc, ""))
        return (r[0], r[1]) if r else (0, 0)

    def fefo(self, v, loc, qty):
        """Which lots `qty` leaves from, first expiry first (the ledger's order); prunes lots with nothing on hand."""
        if v not in self.lot_tracked:
            return [("", qty, None)]
        key = (v, loc)
        lots = self.lots[key] = [lot for lot in self.lots.get(key, ()) if self.stock[(v, loc, lot)][0] > 0]
        takes, left = [], qty
        for lot in lots:
            r = self.stock[(v, loc, lot)]
            take = min(r[0], left)
            takes.append((lot, take, r[3]))
            left -= take
            if not left:
                break
        assert not left, (v, loc, qty)
        return takes

    def op(self, site, ts, user):
        """An op_id for 90 % of requests; BER's go to the op table (WAW's came in by sync)."""
        if self.rng.random() >= 0.9:
            return None
        self.op_counter += 1
        op_id = f"{site.lower()}-g{self.op_counter % 7}-{self.op_counter:08d}"
        if site == LOCAL_SITE:
            self.ops.append((op_id, "%032x" % self.rng.getrandbits(128), ts))
        return op_id

    def emit(self, out, site, op_id, kind, v, loc, lot="", expiry=None, d_on_hand=0, d_reserved=0, d_in_transit=0,
             to=None, unit_cost=None, ref_type=None, ref_id=None, reverses_id=None, reason=None, user=None,
             device=None, ts=None):
        self.seq[site] += 1
        mid = self.next_id
        self.next_id += 1
        out.append((mid, site, 1, self.seq[site], op_id, kind, v, loc, to, lot, expiry, d_on_hand, d_reserved,
                    d_in_transit, unit_cost, ref_type, ref_id, reverses_id, reason, None, user, device, ts))
        if to is None:
            self.project(v, loc, lot, expiry, d_on_hand, d_reserved, d_in_transit)
        else:
            if d_on_hand or d_reserved:
                self.project(v, loc, lot, expiry, d_on_hand, d_reserved, 0)
            self.project(v, to, lot, expiry, 0, 0, d_in_transit)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return mid

    def project(self, v, loc, lot, expiry, dh, dr, dt):
        r = self.row(v, loc, lot)
        r[0] += dh
        r[1] += dr
        r[2] += dt
        if expiry is not None:
            r[3] = expiry
        assert r[0] >= 0 and r[1] >= 0 and r[2] >= 0, (v, loc, lot, r)
        if lot:
            lots = self.lots.setdefault((v, loc), [])
            if lot not in lots:
                lots.append(lot)
                lots.sort(key=lambda name: (self.stock[(v, loc, name)][3] or "9999", name))

    # -- one request ----------------------------------------------------------------------------------------

    def request(self, index: int, ts: str, site: str, v: int, loc: int, other_loc: int) -> list:
        rng = self.rng
        out: list = []
        user = USERS[rng.randrange(len(USERS))]
        device = f"{site}-GUN-{rng.randint(1, 4)}"
        if self.pending and self.pending[0][0] <= index:
            return self.transfer_in(out, ts, user)
        lot_var = v in self.lot_tracked
        on_hand, reserved = self.totals(v, loc)
        avail = on_hand - reserved
        x = rng.random()
        op_id = self.op(site, ts, user)
        common = dict(user=user, device=device, ts=ts)
        if avail < 5 or x < 0.30:
            qty = rng.randint(10, 60)
            lot = expiry = None
            if lot_var:
                self.lot_counter += 1
                lot = f"L{self.lot_counter:07d}"
                expiry = (date.fromisoformat(ts[:10]) + timedelta(days=rng.randint(120, 720))).isoformat()
            ref = ("po", f"PO-{index // 40:06d}") if rng.random() < 0.7 else (None, None)
            mid = self.emit(out, site, op_id, "receive", v, loc, lot or "", expiry, d_on_hand=qty,
                            unit_cost=self.cost[v], ref_type=ref[0], ref_id=ref[1], **common)
            if not lot_var:
                self.recent[site].append((mid, v, loc, qty))
        elif x < 0.84:
            qty = rng.randint(1, min(avail, 8))
            ref = ("order", f"SO-{index // 3:07d}") if rng.random() < 0.6 else (None, None)
            for lot, take, expiry in self.fefo(v, loc, qty):
                mid = self.emit(out, site, op_id, "ship", v, loc, lot, expiry, d_on_hand=-take, ref_type=ref[0],
                                ref_id=ref[1], **common)
                if not lot_var:
                    self.recent[site].append((mid, v, loc, -take))
        elif x < 0.88:
            qty = rng.randint(1, 5)
            if rng.random() < 0.5:
                lot = self.lots[(v, loc)][-1] if lot_var else ""
                expiry = self.stock[(v, loc, lot)][3] if lot_var else None
                self.emit(out, site, op_id, "adjust", v, loc, lot, expiry, d_on_hand=qty, reason="found", **common)
            else:
                for lot, take, expiry in self.fefo(v, loc, min(qty, avail)):
                    self.emit(out, site, op_id, "adjust", v, loc, lot, expiry, d_on_hand=-take, reason="damaged",
                              **common)
        elif x < 0.91:
            lot = self.lots[(v, loc)][-1] if lot_var else ""
            r = self.stock[(v, loc, lot)]
            counted = max(r[1], r[0] + rng.choice((-2, -1, 0, 0, 0, 1)))
            self.emit(out, site, op_id, "count", v, loc, lot, r[3], d_on_hand=counted - r[0], ref_type="count",
                      ref_id=f"CNT-{index // 500:05d}", reason="count", **common)
        elif x < 0.95 and site == LOCAL_SITE and not lot_var:  # reserve (the local site's own reservations)
            qty = rng.randint(1, min(avail, 5))
            rid = len(self.reservations) + 1
            self.reservations.append([rid, v, loc, "", qty, 0, 0, f"SO-{index:07d}", "held",
                                      None, ts, None])
            self.held.append(rid - 1)
            self.emit(out, site, op_id, "reserve", v, loc, d_reserved=qty, ref_type="reservation",
                      ref_id=str(rid), **common)
        elif 0.95 <= x < 0.98 and site == LOCAL_SITE and len(self.held) > 50:  # consume or release
            res = self.reservations[self.held.pop(rng.randrange(len(self.held)))]
            rid, rv, rloc, _, qty = res[:5]
            if rng.random() < 0.7:
                self.emit(out, site, op_id, "ship", rv, rloc, d_on_hand=-qty, d_reserved=-qty,
                          ref_type="reservation", ref_id=str(rid), **common)
                res[5], res[8] = qty, "consumed"
            else:
                self.emit(out, site, op_id, "release", rv, rloc, d_reserved=-qty, ref_type="reservation",
                          ref_id=str(rid), reason="released", **common)
                res[6], res[8] = qty, "released"
            res[11] = ts
        elif x < 0.98:  # what the branches above did not take: an ordinary ship
            for lot, take, expiry in self.fefo(v, loc, rng.randint(1, min(avail, 8))):
                self.emit(out, site, op_id, "ship", v, loc, lot, expiry, d_on_hand=-take, **common)
        elif x < 0.995:
            qty = rng.randint(1, min(avail, 10))
            tid = len(self.transfers) + 1
            code = f"{site}-TR-{tid:06d}"
            legs = []
            for lot, take, expiry in self.fefo(v, loc, qty):
                self.emit(out, site, op_id, "transfer_out", v, loc, lot, expiry, d_on_hand=-take, d_in_transit=take,
                          to=other_loc, ref_type="transfer", ref_id=code, **common)
                legs.append((lot, take, expiry))
            self.transfers.append([tid, code, site, v, loc, other_loc, qty, 0, 0, 0, "in_transit", ts, None])
            heapq.heappush(self.pending, (index + rng.randint(200, 5000), tid - 1, legs))
        else:
            # Reverse a recent receive or ship of this site (non-lot variants only).
            for mid, rv, rloc, dh in reversed(self.recent[site]):
                if mid in self.reversed:
                    continue
                if dh > 0:
                    oh, rs = self.totals(rv, rloc)
                    if oh - rs < dh:
                        continue
                self.reversed.add(mid)
                self.emit(out, site, op_id, "reversal", rv, rloc, d_on_hand=-dh, unit_cost=self.cost[rv] if dh > 0
                          else None, reverses_id=mid, reason="wrong scan", **common)
                break
            else:
                self.emit(out, site, op_id, "receive", v, loc, d_on_hand=5, unit_cost=self.cost[v], **common)
        return out

    def transfer_in(self, out, ts, user):
        _, t_index, legs = heapq.heappop(self.pending)
        t = self.transfers[t_index]
        tid, code, origin, v, src, dest, qty = t[:7]
        site = OTHER_SITE if origin == LOCAL_SITE else LOCAL_SITE
        op_id = self.op(site, ts, user)
        for lot, take, expiry in legs:
            self.emit(out, site, op_id, "transfer_in", v, dest, lot, expiry, d_on_hand=take, d_in_transit=-take,
                      ref_type="transfer", ref_id=code, user=user, device=f"{site}-GUN-1", ts=ts)
        t[7], t[10], t[12] = qty, "received", ts
        return out


class MovementSigning:
    """Signs generated movements as their origin's ledger would (movement_token.py), with fixed keys that are
    registered in the database: the big ledger then has real tokens, which are most of a movement row's size."""

    def __init__(self, conn: sqlite3.Connection, variant_rows: list, loc_rows: list, movements: int) -> None:
        self.sku = {v[0]: v[2] for v in variant_rows}
        self.code = {row[0]: row[1] for row in loc_rows}
        self.signers = {site: Signer(SigningKey.from_seed(f"{site}#1", bytes([n]) * 32))
                        for n, site in enumerate((LOCAL_SITE, OTHER_SITE), start=1)}
        self.prev = {site: "" for site in self.signers}
        self.seq_of = array("q", bytes(8 * (movements + 100)))   # movement id -> seq, for `reverses`
        self.site_of = bytearray(movements + 100)                  # movement id -> 0 LOCAL / 1 OTHER
        for signer in self.signers.values():
            conn.execute("INSERT INTO site_key (kid, site_id, public_key, created_at) VALUES (?, ?, ?, ?)",
                         (signer.key.kid, signer.site, signer.key.public.text(), SETUP_TS))
            conn.execute("UPDATE site SET location_prefix = id WHERE id = ?", (signer.site,))

    def sign(self, row: tuple) -> tuple[str, str]:
        (mid, site, epoch, seq, op_id, kind, v, loc, to, lot, expiry, dh, dr, dt, cost, ref_type, ref_id,
         reverses_id, reason, note, user, device, ts) = row
        self.seq_of[mid], self.site_of[mid] = seq, site != LOCAL_SITE
        reverses = None
        if reverses_id is not None:
            reverses = f"{OTHER_SITE if self.site_of[reverses_id] else LOCAL_SITE}:1:{self.seq_of[reverses_id]}"
        token, digest = self.signers[site].sign(Body(
            1, site, epoch, seq, self.prev[site], kind, self.sku[v], self.code[loc], self.code[to] if to else None,
            lot, expiry, dh, dr, dt, cost, ref_type, ref_id, reverses, reason, note, user, device, op_id, ts))
        self.prev[site] = digest
        return token, digest


def generate(path: Path, *, variants: int, movements: int, seed: int = DEFAULT_SEED) -> dict:
    """Write a fresh database at `path` (replacing it). Returns the metadata that `ensure` stores."""
    t0 = time.perf_counter()
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    db = open_db(tmp, synchronous="OFF")
    init_site(db, LOCAL_SITE, SITE_LAYOUT[LOCAL_SITE][0])
    db.close()

    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("PRAGMA temp_store=MEMORY")
    rng = random.Random(seed)
    conn.execute("BEGIN")

    # Sites and locations.
    conn.execute("INSERT INTO site (id, name, is_local, epoch, head_seq, created_at) VALUES (?, ?, 0, 1, 0, ?)",
                 (OTHER_SITE, SITE_LAYOUT[OTHER_SITE][0], SETUP_TS))
    bins: dict[str, list[int]] = {}
    loc_id = 0
    loc_rows = []
    for site, (_, zones, per_zone) in SITE_LAYOUT.items():
        loc_id += 1
        wh = loc_id
        loc_rows.append((wh, site, site, f"{site} warehouse", "warehouse", None))
        loc_id += 1
        loc_rows.append((loc_id, f"{site}-DOCK", site, "Goods in", "dock", wh))
        bins[site] = []
        for z in zones:
            loc_id += 1
            zone = loc_id
            loc_rows.append((zone, f"{site}-{z}", site, f"Zone {z}", "zone", wh))
            for b in range(1, per_zone + 1):
                loc_id += 1
                loc_rows.append((loc_id, f"{site}-{z}-{b:02d}", site, f"Aisle {z}, bay {b}", "bin", zone))
                bins[site].append(loc_id)
    conn.executemany("INSERT INTO location (id, code, site_id, name, kind, parent_id, created_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, '" + SETUP_TS + "')", loc_rows)
    conn.executemany("INSERT OR IGNORE INTO app_user (login, name, role, created_at) VALUES (?, ?, 'staff', ?)",
                     [(u, u.title(), SETUP_TS) for u in USERS])

    # Catalog.
    suppliers, products, variant_rows, barcodes = catalog_rows(variants, seed)
    conn.executemany("INSERT INTO supplier (id, name, created_at) VALUES (?, ?, '" + SETUP_TS + "')", suppliers)
    conn.executemany("INSERT INTO product (id, sku, name, category, supplier_id, created_at, updated_at)"
                     " VALUES (?, ?, ?, ?, ?, '" + SETUP_TS + "', '" + SETUP_TS + "')", products)
    conn.executemany("INSERT INTO variant (id, product_id, sku, name, cost_price, sale_price, unit, reorder_point,"
                     " reorder_qty, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '" + SETUP_TS + "', '"
                     + SETUP_TS + "')", [v[:9] for v in variant_rows])
    conn.executemany("INSERT INTO barcode (code, variant_id) VALUES (?, ?)", barcodes)
    log(f"catalog: {len(products)} products, {len(variant_rows)} variants, {len(loc_rows)} locations")

    # Movements: drop the movement indexes for the bulk insert, re-create them from their own SQL afterwards.
    index_sql = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'movement' AND sql IS NOT NULL")]
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'movement'"
                                " AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")

    n_var = len(variant_rows)
    lot_tracked = set(rng.sample(range(1, n_var + 1), n_var // 10))
    fast = rng.sample(range(1, n_var + 1), max(1, n_var // 10))
    home = {site: [0] + [rng.choice(bins[site]) for _ in range(n_var)] for site in bins}
    second = {site: [0] + [rng.choice(bins[site]) if rng.random() < 0.2 else 0 for _ in range(n_var)]
              for site in bins}
    buffer: list = []
    insert_sql = ("INSERT INTO movement (id, origin, epoch, seq, op_id, kind, variant_id, location_id, to_location_id,"
                  " lot, expiry, d_on_hand, d_reserved, d_in_transit, unit_cost, ref_type, ref_id, reverses_id,"
                  " reason, note, user_login, device, ts, token, hash) VALUES (" + ", ".join("?" * 25) + ")")
    signing = MovementSigning(conn, variant_rows, loc_rows, movements)

    def flush():
        conn.executemany(insert_sql, [row + signing.sign(row) for row in buffer])
        buffer.clear()

    sim = Sim(rng, variant_rows, lot_tracked)
    span_us = (END - START) / timedelta(microseconds=1)
    step_us = span_us / movements
    index = 0
    written = 0
    last_log = time.perf_counter()
    last_ts = None
    while written < movements:
        moment = START + timedelta(microseconds=int(index * step_us + rng.random() * step_us * 0.9))
        ts = last_ts = fmt_ts(moment)
        if movements - written <= 20:
            # A request may write several movements (lots, transfer legs): finish with single receives so the
            # total is exact.
            site = LOCAL_SITE if written % 2 else OTHER_SITE
            v = rng.randint(1, n_var)
            sim.emit(buffer, site, None, "receive", v, home[site][v], "" if v not in lot_tracked else "LEND",
                     "2027-12-31" if v in lot_tracked else None, d_on_hand=1, unit_cost=sim.cost[v],
                     user="admin", device="bench", ts=ts)
            written += 1
            index += 1
            continue
        site = LOCAL_SITE if rng.random() < 0.6 else OTHER_SITE
        v = fast[rng.randrange(len(fast))] if rng.random() < 0.5 else rng.randint(1, n_var)
        loc = second[site][v] if second[site][v] and rng.random() < 0.3 else home[site][v]
        other = OTHER_SITE if site == LOCAL_SITE else LOCAL_SITE
        rows = sim.request(index, ts, site, v, loc, home[other][v])
        index += 1
        buffer.extend(rows)
        written += len(rows)
        if len(buffer) >= 50000:
            flush()
        if time.perf_counter() - last_log > 5:
            log(f"movements: {written:,}/{movements:,}")
            last_log = time.perf_counter()
    flush()
    t_mov = time.perf_counter()
    log(f"movements written ({written:,}) in {t_mov - t0:.1f}s; re-creating {len(index_sql)} indexes")
    for sql in index_sql:
        conn.execute(sql)
    t_idx = time.perf_counter()

    conn.executemany("INSERT INTO stock (variant_id, location_id, lot, expiry, on_hand, reserved, in_transit)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     sorted((k[0], k[1], k[2], r[3], r[0], r[1], r[2]) for k, r in sim.stock.items()))
    conn.executemany("INSERT INTO op (op_id, request_digest, created_at) VALUES (?, ?, ?)", sorted(sim.ops))
    conn.executemany("INSERT INTO reservation (id, variant_id, location_id, lot, qty, qty_consumed, qty_released,"
                     " ref, status, expires_at, created_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     sim.reservations)
    conn.executemany("INSERT INTO transfer (id, code, origin, variant_id, from_location_id, to_location_id, qty_sent,"
                     " qty_received, qty_short, qty_over, status, created_at, closed_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sim.transfers)
    for site, seq in sim.seq.items():
        conn.execute("UPDATE site SET head_seq = ?, head_hash = ? WHERE id = ?", (seq, signing.prev[site], site))
    conn.execute("COMMIT")
    t_commit = time.perf_counter()
    log(f"indexes {t_idx - t_mov:.1f}s, stock/op/reservation/transfer rows + commit {t_commit - t_idx:.1f}s")

    fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    if fk:
        raise RuntimeError(f"generated data violates foreign keys: {fk[:5]}")
    conn.execute("PRAGMA journal_mode=WAL")
    t_check0 = time.perf_counter()
    diffs = ledger_check.check(conn)
    t_check = time.perf_counter() - t_check0
    if diffs:
        raise RuntimeError(f"generated data fails check(): {len(diffs)} differences, e.g. {diffs[:3]}")
    log(f"foreign keys ok, check() empty ({t_check:.1f}s)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    stats = {
        "products": len(products), "variants": len(variant_rows), "locations": len(loc_rows),
        "lot_tracked_variants": len(lot_tracked), "movements": written, "requests": index,
        "movements_by_origin": dict(sim.seq), "movements_by_kind": dict(sorted(sim.kinds.items())),
        "stock_rows": len(sim.stock), "op_rows": len(sim.ops), "reservations": len(sim.reservations),
        "reservations_held": len(sim.held), "transfers": len(sim.transfers),
        "transfers_in_transit": len(sim.pending), "first_ts": fmt_ts(START), "last_ts": last_ts,
    }
    return {"seconds": round(time.perf_counter() - t0, 1), "check_seconds_at_generation": round(t_check, 2),
            "stats": stats}


def schema_of(conn: sqlite3.Connection) -> list:
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                               " AND name != 'schema_migrations'").fetchall())


def reference_schema(tmp_dir: Path) -> list:
    path = Path(tempfile.mkdtemp(dir=tmp_dir)) / "schema.db"
    db = open_db(path, synchronous="OFF")
    db.close()
    conn = sqlite3.connect(path)
    schema = schema_of(conn)
    conn.close()
    for p in path.parent.iterdir():
        p.unlink()
    path.parent.rmdir()
    return schema


def fingerprint(conn: sqlite3.Connection) -> dict:
    return {
        "max_movement_id": conn.execute("SELECT max(id) FROM movement").fetchone()[0],
        "head_seq": dict(conn.execute("SELECT id, head_seq FROM site ORDER BY id").fetchall()),
        "stock_rows": conn.execute("SELECT count(*) FROM stock").fetchone()[0],
        "variants": conn.execute("SELECT count(*) FROM variant").fetchone()[0],
        "migrations": [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")],
    }


def schema_digest(schema: list) -> str:
    return hashlib.sha256(repr(schema).encode()).hexdigest()[:16]


def ensure(data_dir: Path, *, variants: int, movements: int, seed: int = DEFAULT_SEED,
           force: bool = False) -> tuple[Path, dict, bool]:
    """The cached database for these parameters, generated when missing or invalid. Returns (path, meta, fresh)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"ledger-{variants}v-{movements}m-s{seed}.db"
    meta_path = path.with_name(path.name + ".meta.json")
    want = {"generator_version": GENERATOR_VERSION, "variants": variants, "movements": movements, "seed": seed,
            "schema": schema_digest(reference_schema(data_dir))}
    if not force and path.exists() and meta_path.exists():
        reason = None
        try:
            meta = json.loads(meta_path.read_text())
            if {k: meta.get(k) for k in want} != want:
                reason = "parameters, generator version or schema changed"
            else:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    if schema_digest(schema_of(conn)) != want["schema"]:
                        reason = "file schema differs from the migrations"
                    elif fingerprint(conn) != meta["fingerprint"]:
                        reason = "file content changed since it was generated"
                finally:
                    conn.close()
        except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
            reason = f"unreadable ({exc})"
        if reason is None:
            log(f"reusing {path}")
            return path, meta, False
        log(f"regenerating {path}: {reason}")
    log(f"generating {path}: {variants:,} variants x 2 sites, {movements:,} movements")
    info = generate(path, variants=variants, movements=movements, seed=seed)
    conn = sqlite3.connect(path)
    meta = {**want, **info, "fingerprint": fingerprint(conn), "bytes": path.stat().st_size}
    conn.close()
    meta_path.write_text(json.dumps(meta, indent=2))
    log(f"generated in {info['seconds']}s, {meta['bytes'] / 1e6:.0f} MB")
    return path, meta, True


def default_data_dir() -> Path:
    return Path(tempfile.gettempdir()) / "appliance-bench-ledger"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--variants", type=int, default=50_000)
    ap.add_argument("--movements", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--force", action="store_true", help="regenerate even when a valid cached file exists")
    args = ap.parse_args(argv)
    path, meta, fresh = ensure(args.data_dir, variants=args.variants, movements=args.movements, seed=args.seed,
                               force=args.force)
    print(json.dumps({"path": str(path), "generated": fresh, **meta}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
