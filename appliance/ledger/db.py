"""Open the SQLite ledger file with the pragmas every process must share, and bind the models to it."""

from __future__ import annotations

import time
from pathlib import Path

import peewee

from appliance.ledger import migrate as migrations
from appliance.ledger.models import MODELS

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def _use_wal(db: peewee.SqliteDatabase, timeout_s: float) -> None:
    """Switch the file to WAL (persistent, so once per file is enough).

    Changing the journal mode needs an exclusive lock and SQLite may answer "locked" at once instead of
    waiting in the busy handler, e.g. when several processes open a fresh file together: retry until the
    busy timeout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = db.execute_sql("PRAGMA journal_mode = wal").fetchone()[0]
        except peewee.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        if mode.lower() != "wal":
            raise peewee.OperationalError(f"could not switch {db.database} to WAL (journal_mode is {mode})")
        return


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
        pragmas=[
            ("busy_timeout", busy_timeout_ms),
            ("synchronous", synchronous),
            ("foreign_keys", 1),
            ("cache_size", -16000),
        ],
        timeout=busy_timeout_ms / 1000,
    )
    db.connect()
    try:
        _use_wal(db, busy_timeout_ms / 1000)
    except BaseException:
        db.close()
        raise
    if apply_migrations:
        try:
            migrations.migrate(db.connection(), path)
        except BaseException:
            db.close()
            raise
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    return db
