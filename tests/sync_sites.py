"""Plain helpers (no pytest import) for multi-site tests: one database per site, each with its own key,
locations `{SITE}-A-01` and `{SITE}-A-02`, the shared catalog of workers.CATALOG, and every other site
registered the way `appliance site add` registers it.

- `site_key(site)`: the fixed signing key of a test site (same in every process).
- `build_box(path, site, peers)`: create the database at `path` for `site`, registering `peers`.
- `open_box(path, site)`: a `Ledger` for that database (close with `ledger.db.close()`).
- `all_tokens(db, origin)`: every stored token of `origin` in `db`, in order (what a fill would hand over).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import peewee
from workers import CATALOG

from appliance import clock
from appliance.ledger.db import open_db
from appliance.ledger.models import Product, Variant
from appliance.ledger.service import Ledger
from appliance.ledger.sites import add_location, init_site
from appliance.sync import outbox
from appliance.sync.identity import SigningKey
from appliance.sync.registry import add_entry

NAMES = {"BER": "Berlin", "WAW": "Warszawa", "PAR": "Paris"}


def site_key(site: str) -> SigningKey:
    return SigningKey.from_seed(f"{site}#1", hashlib.sha256(site.encode()).digest())


def entry(site: str) -> dict:
    key = site_key(site)
    return {"site": site, "name": NAMES.get(site, site), "kid": key.kid, "public_key": key.public.text(),
            "location_prefix": site}


def setup_box(db: peewee.SqliteDatabase, site: str, peers: list[str]) -> None:
    init_site(db, site, NAMES.get(site, site))
    key = site_key(site)
    with db.atomic("IMMEDIATE"):
        db.execute_sql("INSERT INTO site_key (kid, site_id, public_key, created_at) VALUES (?, ?, ?, ?)",
                       (key.kid, site, key.public.text(), clock.now_ts()))
        db.execute_sql("UPDATE site SET location_prefix = ? WHERE id = ?", (site, site))
    for peer in peers:
        add_entry(db, entry(peer))
    for code in (f"{site}-A-01", f"{site}-A-02"):
        add_location(db, site, code)
    with db.atomic("IMMEDIATE"):
        products: dict[str, Product] = {}
        for product_sku, product_name, sku, name, cost in CATALOG:
            if product_sku not in products:
                products[product_sku] = Product.create(sku=product_sku, name=product_name)
            Variant.create(product=products[product_sku], sku=sku, name=name, cost_price=cost)


def build_box(path: str | Path, site: str, peers: list[str]) -> None:
    db = open_db(path)
    try:
        setup_box(db, site, peers)
    finally:
        db.close()


def open_box(path: str | Path, site: str, **open_args) -> Ledger:
    return Ledger(open_db(path, **open_args), site, site_key(site))


def all_tokens(db: peewee.SqliteDatabase, origin: str) -> list[str]:
    conn = db.connection()
    head = outbox.head_of(conn, origin)
    return outbox.tokens(conn, origin, head.epoch, 1, max(head.seq, 1), limit=10**9)
