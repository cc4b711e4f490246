"""The nightly backup: SQLite's online backup API into `[jobs] backup_dir`, one file per UTC day
(`<db name>-YYYY-MM-DD.db`), verified, and the files older than `backup_keep_days` deleted.

The copy is made in one backup step: a step-by-step copy restarts whenever another process writes, and the
agent's own sweeps write every few seconds. WAL readers do not block writers, so the ledger keeps posting.
It is written under a temporary name, switched to a rollback journal (a single self-contained file),
fsynced, renamed into place, then opened read-only and checked with `PRAGMA integrity_check`. Old backups are
deleted only after today's has been verified.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from appliance.errors import ApplianceError

logger = logging.getLogger(__name__)


class BackupError(ApplianceError):
    code = "backup_failed"


def backup_dir(config) -> Path:
    return config.jobs.backup_dir or Path(config.database.path).parent / "backups"


def backup_name(db_path: Path, day: date) -> str:
    return f"{db_path.stem}-{day.isoformat()}.db"


def _dated(db_path: Path) -> re.Pattern:
    return re.compile(re.escape(db_path.stem) + r"-(\d{4}-\d{2}-\d{2})\.db")


def make_backup(db_path: Path, target_dir: Path, now: datetime) -> Path:
    """Copy the database at `db_path` into `target_dir` and verify the copy; its path. Raises BackupError."""
    day = now.astimezone(timezone.utc).date()
    final = target_dir / backup_name(db_path, day)
    temp = target_dir / f".{final.name}.tmp"
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        temp.unlink(missing_ok=True)
        source = sqlite3.connect(db_path, timeout=30)
        try:
            dest = sqlite3.connect(temp)
            try:
                source.backup(dest)
                dest.execute("PRAGMA journal_mode = DELETE")
            finally:
                dest.close()
        finally:
            source.close()
        _fsync(temp)
        os.replace(temp, final)
        _fsync(target_dir)
    except (OSError, sqlite3.Error) as exc:
        _discard(temp)
        raise BackupError(f"backup of {db_path} into {target_dir} failed: {exc}", path=str(final)) from exc
    verify_backup(final)
    return final


def verify_backup(path: Path) -> None:
    """Open the backup read-only and run the integrity check; BackupError naming what it found otherwise."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"backup {path} cannot be read: {exc}", path=str(path)) from exc
    if found != ["ok"]:
        # One row may hold several lines, led by "*** in database main ***".
        problems = [line for row in found for line in row.splitlines() if line and not line.startswith("***")]
        raise BackupError(f"backup {path} fails the integrity check: {'; '.join(problems[:5])}", path=str(path),
                          problems=problems[:20])


def delete_old(db_path: Path, target_dir: Path, now: datetime, keep_days: int) -> list[Path]:
    """Delete this database's backups dated `keep_days` or more UTC days before `now`: `keep_days` files stay
    (today's and the days before). Other files in the directory are left alone."""
    oldest_kept = now.astimezone(timezone.utc).date() - timedelta(days=keep_days - 1)
    pattern = _dated(db_path)
    deleted = []
    for entry in sorted(target_dir.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            continue
        if day < oldest_kept:
            entry.unlink()
            deleted.append(entry)
    if deleted:
        logger.info("deleted %d backup(s) older than %d days from %s", len(deleted), keep_days, target_dir)
    return deleted


def _discard(temp: Path) -> None:
    try:
        temp.unlink(missing_ok=True)
    except OSError:
        pass   # the directory itself is what failed; the error being raised says so


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_backup(app, now: datetime) -> str:
    """The `backup` job."""
    db_path = Path(app.config.database.path)
    target_dir = backup_dir(app.config)
    made = make_backup(db_path, target_dir, now)
    deleted = delete_old(db_path, target_dir, now, app.config.jobs.backup_keep_days)
    size = made.stat().st_size
    logger.info("backup %s written and verified (%d bytes)", made, size)
    return f"{made} ({size} bytes, integrity ok); {len(deleted)} old backup(s) deleted"
