"""Shared fixtures: a real ledger file in `tmp_path`, set up the way a Berlin box is.

Fixtures
- `db_path`: a database file path in `tmp_path` (not created).
- `db`: an empty, migrated database at `db_path`, opened with `open_db` and closed afterwards.
- `fake_clock`: a `FakeClock` (UTC, starts at `FakeClock.START`, one second further on every call).
- `ledger`: `db` set up by `populate` and a `Ledger` for site BER whose `now=` is `fake_clock`.

The set-up itself is plain code in tests/workers.py (import it from there: `from workers import ...`), so that a
fresh process can build or open the same database from its path alone without importing pytest, which keeps
spawning 40 processes cheap:
- `populate(db)`: local site BER ("Berlin", user `admin`) with locations BER-A-01 and BER-A-02; site WAW
  inserted directly as a non-local site with location WAW-A-01; products DOG (variants DOG-5, DOG-15) and CAT
  (variant CAT-2), created through the peewee models; no stock.
- `build_site(path)`: create the database at `path`, `populate` it, close it.
- `open_ledger(path, now=...)`: open it again as a `Ledger` for BER (close with `ledger.db.close()`).
- constants `SITE`, `LOCATIONS`, `FOREIGN_SITE`, `FOREIGN_LOCATION`, `CATALOG`, `SKUS`; `FakeClock`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from hypothesis import HealthCheck, settings
from workers import SITE, SITE_KEY, FakeClock, populate

from appliance.ledger.db import open_db
from appliance.ledger.service import Ledger


# The test machines are shared: time limits on example generation and on each example fail for load, not bugs.
settings.register_profile("shared-machine", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = open_db(db_path)
    yield database
    database.close()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(db: peewee.SqliteDatabase, fake_clock: FakeClock) -> Ledger:
    populate(db)
    return Ledger(db, SITE, SITE_KEY, now=fake_clock)


@pytest.fixture
def web(tmp_path: Path):
    """The web app over a populated ledger with one user per role (tests/webtools.py)."""
    from webtools import make_web
    made = make_web(tmp_path)
    yield made
    made.app.extensions["appliance"].feed.stop()
    made.parts.close()
