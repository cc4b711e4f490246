"""Apply the ordered migrations in `ledger/migrations/`, each in one transaction with its bookkeeping row.

The database file is backed up (SQLite online backup) before the first pending migration runs on a database
that already holds data, and a database written by a newer version of the appliance is refused rather than
touched.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from appliance import clock
from appliance.errors import ApplianceError
from appliance.ledger import migrations as migrations_pkg

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^m(\d{4})_(\w+)$")


class SchemaTooNew(ApplianceError):
    code = "schema_too_new"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType


def available() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(migrations_pkg.__path__):
        match = _NAME.match(info.name)
        if match:
            module = importlib.import_module(f"{migrations_pkg.__name__}.{info.name}")
            found.append(Migration(int(match.group(1)), match.group(2), module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def _ensure_bookkeeping(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def pending(conn: sqlite3.Connection) -> list[Migration]:
    known = available()
    done = set(applied_versions(conn))
    newest_known = known[-1].version if known else 0
    too_new = sorted(v for v in done if v > newest_known)
    if too_new:
        raise SchemaTooNew(
            f"this database was written by a newer version of the appliance (schema versions {too_new}); "
            f"this version knows up to {newest_known}. Upgrade the appliance instead of downgrading the data.",
            versions=too_new,
        )
    return [m for m in known if m.version not in done]


def _backup(conn: sqlite3.Connection, db_path: Path, version: int) -> Path:
    target = db_path.with_name(f"{db_path.name}.pre-m{version:04d}.bak")
    with sqlite3.connect(target) as dest:
        conn.backup(dest)
    dest.close()
    logger.info("backed up %s to %s before migration %04d", db_path, target, version)
    return target


def migrate(conn: sqlite3.Connection, db_path: Path | None = None) -> list[Migration]:
    """Apply every pending migration; returns those applied. `conn` must be in autocommit mode."""
    to_apply = pending(conn)
    if not to_apply:
        return []
    if db_path is not None and applied_versions(conn):
        _backup(conn, db_path, to_apply[0].version)
    applied = []
    for migration in to_apply:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ensure_bookkeeping(conn)
            # Another process may have applied it while we waited for the write lock.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            migration.module.up(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, clock.now_ts()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            logger.error("migration %04d_%s failed; database left at the previous version",
                         migration.version, migration.name)
            raise
        logger.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration)
    return applied
