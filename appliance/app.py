"""Composition root: builds the appliance's parts from the config, in order, and closes them in reverse.

Today that is the database (with migrations) and the ledger; the agent (sync, scanners, printers, scheduler)
and the web app add their parts here so that start-up order and failures are read in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import peewee

from appliance.config import Config
from appliance.ledger.db import open_db
from appliance.ledger.service import Ledger
from appliance.sync.registry import load_site_key

logger = logging.getLogger(__name__)


@dataclass
class App:
    config: Config
    db: peewee.SqliteDatabase
    _closers: list = field(default_factory=list)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db, self.config.site.id, load_site_key(self.config.database.path))

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_app(config: Config) -> App:
    try:
        db = open_db(config.database.path, synchronous=config.database.synchronous,
                     busy_timeout_ms=config.database.busy_timeout_ms)
    except Exception:
        logger.error("start-up failed opening the database %s", config.database.path)
        raise
    app = App(config, db)
    app._closers.append(db.close)
    return app
