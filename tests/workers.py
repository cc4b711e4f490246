"""Plain test helpers (no pytest import) and the code that runs in separate OS processes during the tests.

The standard set-up (`populate`, `build_site`, `open_ledger`, `FakeClock`; see tests/conftest.py) lives here
so that a spawned process can import it cheaply. Every worker opens the database from its path.

- `race(...)`: a `multiprocessing` (spawn) target: open the ledger, wait at a barrier with the other racers,
  do one ledger call, put the outcome on a queue.
- `open_race(...)`: the same for `open_db` itself (several processes opening one fresh file).
- `python tests/workers.py stream DB REPORT PREFIX`: post `stream_moves(i)` under op_id `PREFIX-i` for
  i = 0, 1, 2, ... until killed; after each post returns, append `op_id id,id,...` to REPORT and fsync it.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import peewee

from appliance import clock
from appliance.errors import ApplianceError
from appliance.ledger.db import open_db
from appliance.ledger.migrate import applied_versions
from appliance.ledger.models import Location, Product, Site, Variant
from appliance.ledger.requests import Move
from appliance.ledger.service import Ledger
from appliance.ledger.sites import add_location, init_site
from appliance.sync.identity import SigningKey

SITE = "BER"
LOCATIONS = ("BER-A-01", "BER-A-02")
FOREIGN_SITE = "WAW"
# Fixed keys, so that every process of a test signs and verifies alike without sharing files.
SITE_KEY = SigningKey.from_seed(f"{SITE}#1", bytes(range(32)))
FOREIGN_KEY = SigningKey.from_seed(f"{FOREIGN_SITE}#1", bytes(range(1, 33)))
FOREIGN_LOCATION = "WAW-A-01"
# (product sku, product name, variant sku, variant name, cost price in minor units)
CATALOG = (
    ("DOG", "Dog food", "DOG-5", "5 kg", 1299),
    ("DOG", "Dog food", "DOG-15", "15 kg", 3499),
    ("CAT", "Cat litter", "CAT-2", "2 kg", None),
)
SKUS = tuple(row[2] for row in CATALOG)


class FakeClock:
    """A `now=` for `Ledger`: each call returns a moment one `step` later than the previous call.

    `last` is the value returned by the latest call (the timestamp of the latest write); `advance()` jumps ahead.
    """

    START = datetime(2026, 3, 2, 8, 0, 0, tzinfo=timezone.utc)

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.last = start - step
        self.step = step

    def __call__(self) -> datetime:
        self.last += self.step
        return self.last

    def advance(self, **delta: float) -> None:
        self.last += timedelta(**delta)

    @property
    def last_ts(self) -> str:
        return clock.to_ts(self.last)


def populate(db: peewee.SqliteDatabase) -> None:
    """Write the standard set-up into an opened, empty database: BER (local: BER-A-01, BER-A-02, user admin),
    WAW (not local: WAW-A-01) and the variants of `CATALOG`, through the peewee models; no stock."""
    init_site(db, SITE, "Berlin")
    register_key(db, SITE_KEY)
    for code in LOCATIONS:
        add_location(db, SITE, code)
    with db.atomic("IMMEDIATE"):
        Site.create(id=FOREIGN_SITE, name="Warszawa", is_local=False)
        Location.create(code=FOREIGN_LOCATION, site=FOREIGN_SITE)
        products: dict[str, Product] = {}
        for product_sku, product_name, sku, name, cost in CATALOG:
            if product_sku not in products:
                products[product_sku] = Product.create(sku=product_sku, name=product_name)
            Variant.create(product=products[product_sku], sku=sku, name=name, cost_price=cost)


def register_key(db: peewee.SqliteDatabase, key: SigningKey) -> None:
    """What `appliance init` records for a key file it creates (`registry.ensure_site_key`)."""
    with db.atomic("IMMEDIATE"):
        db.execute_sql("INSERT INTO site_key (kid, site_id, public_key, created_at) VALUES (?, ?, ?, ?)",
                       (key.kid, key.site, key.public.text(), clock.now_ts()))
        db.execute_sql("UPDATE site SET location_prefix = coalesce(location_prefix, id) WHERE id = ?", (key.site,))


def build_site(path: str | Path, **open_args) -> None:
    """Create the database at `path` with the standard set-up, and close it (for tests that spawn processes)."""
    db = open_db(path, **open_args)
    try:
        populate(db)
    finally:
        db.close()


def open_ledger(path: str | Path, now: Callable[[], datetime] = clock.utcnow, **open_args) -> Ledger:
    """Open an existing set-up database at `path` as site BER; close it with `ledger.db.close()`."""
    return Ledger(open_db(path, **open_args), SITE, SITE_KEY, now=now)


# --- workers ---------------------------------------------------------------------------------------------------

# Outcomes put on the queue: ("ok", movement ids, replayed), ("error", error code, details), ("crash", text).


def _call(ledger, action: str, args: dict):
    if action == "post":
        return ledger.post(Move(**args["move"]), op_id=args.get("op_id"))
    if action == "reserve":
        return ledger.reserve(**args)
    raise ValueError(f"unknown action {action!r}")


def race(path: str, action: str, args: dict, barrier, results) -> None:
    try:
        ledger = open_ledger(path)
        try:
            barrier.wait(timeout=120)
            try:
                result = _call(ledger, action, args)
            except ApplianceError as exc:
                results.put(("error", exc.code, exc.details))
            else:
                results.put(("ok", result.ids, result.replayed))
        finally:
            ledger.db.close()
    except BaseException:  # noqa: BLE001 (the test must learn about any failure, not wait for a timeout)
        results.put(("crash", traceback.format_exc()))


def open_race(path: str, barrier, results) -> None:
    try:
        barrier.wait(timeout=120)
        db = open_db(path)
        try:
            results.put(("ok", applied_versions(db.connection()), None))
        finally:
            db.close()
    except BaseException:  # noqa: BLE001
        results.put(("crash", traceback.format_exc()))


def stream_moves(index: int) -> list[Move]:
    """The request posted as number `index` of a stream: receives, ships that always find stock, and batches."""
    kind = index % 3
    if kind == 0:
        return [Move("receive", sku="DOG-5", location=LOCATIONS[0], qty=5, ref_id=f"PO-{index}")]
    if kind == 1:
        return [Move("ship", sku="DOG-5", location=LOCATIONS[0], qty=3, ref_id=f"SO-{index}")]
    return [Move("receive", sku="CAT-2", location=LOCATIONS[1], qty=2, ref_id=f"PO-{index}"),
            Move("ship", sku="CAT-2", location=LOCATIONS[1], qty=1, ref_id=f"SO-{index}")]


def stream(path: str, report: str, prefix: str) -> None:
    ledger = open_ledger(path)
    with open(report, "a", encoding="ascii") as out:
        index = 0
        while True:
            op_id = f"{prefix}-{index}"
            result = ledger.post(stream_moves(index), op_id=op_id)
            out.write(f"{op_id} {','.join(str(i) for i in result.ids)}\n")
            out.flush()
            os.fsync(out.fileno())
            index += 1


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command != "stream":
        sys.exit(f"unknown command {command!r}")
    stream(*arguments)
