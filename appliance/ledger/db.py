"""Open the SQLite ledger file with the pragmas every process must share, and bind the models to it."""

from __future__ import annotations

from pathlib import Path

import peewee

from appliance.ledger import migrate as migrations
from appliance.ledger.models import MODELS

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def open_db(path: str | Path, synchronous: str = "FULL", busy_timeout_ms: int = 15000,
            apply_migrations: bool = True) -> peewee.SqliteDatabase:
    """Open (creating if needed) the ledger at `path`: WAL, foreign keys, busy timeout, migrations applied.

    `synchronous=FULL` is the default because these boxes run on SD cards that lose power: a commit that
    returned is on disk.
    """
    synchronous = synchronous.upper()
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(
        str(path),
        # busy_timeout first: switching to WAL on a fresh file needs a lock other processes may hold.
        pragmas=[
            ("busy_timeout", busy_timeout_ms),
            ("journal_mode", "wal"),
            ("synchronous", synchronous),
            ("foreign_keys", 1),
            ("cache_size", -16000),
        ],
        timeout=busy_timeout_ms / 1000,
    )
    db.connect()
    if apply_migrations:
        try:
            migrations.migrate(db.connection(), path)
        except BaseException:
            db.close()
            raise
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    return db
