"""Schema migrations: recorded, applied once, backed up before, refused when newer, and matching the models."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
import workers

from appliance.ledger import migrate
from appliance.ledger.db import open_db
from appliance.ledger.models import MODELS

SPAWN = multiprocessing.get_context("spawn")


def migration_rows(path: Path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()


def dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def open_files_under(directory: Path) -> list[str]:
    """Paths under `directory` this process holds open (Linux /proc)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def test_a_new_database_records_every_migration(db, db_path):
    known = migrate.available()
    assert known and [m.version for m in known] == sorted({m.version for m in known})
    rows = migration_rows(db_path)
    assert [(v, name) for v, name, _ in rows] == [(m.version, m.name) for m in known]
    assert all(applied_at.endswith("Z") for _, _, applied_at in rows)
    assert migrate.applied_versions(db.connection()) == [m.version for m in known]
    assert migrate.pending(db.connection()) == []


def test_reopening_applies_nothing_and_backs_up_nothing(db_path):
    open_db(db_path).close()
    before = migration_rows(db_path)
    db = open_db(db_path)
    try:
        assert migrate.migrate(db.connection(), db_path) == []
    finally:
        db.close()
    assert migration_rows(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_the_database_is_in_wal_mode_with_foreign_keys(db):
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with pytest.raises(ValueError):
        open_db(db.database, synchronous="sometimes")


@pytest.fixture
def from_the_future(db_path) -> Path:
    """A database that a newer appliance migrated to schema version 9999."""
    open_db(db_path).close()
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')")
    return db_path


def test_a_database_from_a_newer_version_is_refused_and_left_untouched(from_the_future):
    before, files = dump(from_the_future), sorted(p.name for p in from_the_future.parent.iterdir())
    with pytest.raises(migrate.SchemaTooNew) as caught:
        open_db(from_the_future)
    assert caught.value.details == {"versions": [9999]} and caught.value.code == "schema_too_new"
    del caught
    assert dump(from_the_future) == before
    assert not [name for name in os.listdir(from_the_future.parent) if ".bak" in name]
    with closing(sqlite3.connect(from_the_future)) as conn:
        with pytest.raises(migrate.SchemaTooNew):
            migrate.migrate(conn, from_the_future)
    assert dump(from_the_future) == before
    assert files == [from_the_future.name]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_a_refused_database_is_closed_again(from_the_future):
    """Regression (fixed in 2be52b8): open_db connected, migrate raised, and the connection stayed open until
    garbage collection (Python 3.13 reports that as an unclosed-database ResourceWarning)."""
    with pytest.raises(migrate.SchemaTooNew) as caught:
        open_db(from_the_future)
    assert caught.value is not None
    assert open_files_under(from_the_future.parent) == []


def _fake(version: int, name: str, up) -> migrate.Migration:
    return migrate.Migration(version, name, SimpleNamespace(up=up))


def test_a_pending_migration_is_applied_after_a_backup(db_path, monkeypatch):
    open_db(db_path).close()
    real = migrate.available()
    added = _fake(real[-1].version + 1, "add_notes", lambda conn: conn.execute("CREATE TABLE note (body TEXT)"))
    monkeypatch.setattr(migrate, "available", lambda: real + [added])
    db = open_db(db_path)
    try:
        assert [v for v, _, _ in migration_rows(db_path)] == [m.version for m in real] + [added.version]
        db.execute_sql("INSERT INTO note VALUES ('hello')")
    finally:
        db.close()
    backup = db_path.with_name(f"{db_path.name}.pre-m{added.version:04d}.bak")
    assert backup.exists()
    assert [v for v, _, _ in migration_rows(backup)] == [m.version for m in real]


def test_a_failing_migration_leaves_the_previous_version(db_path, monkeypatch):
    open_db(db_path).close()
    real = migrate.available()

    def half_done(conn):
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(migrate, "available", lambda: real + [_fake(real[-1].version + 1, "broken", half_done)])
    with pytest.raises(RuntimeError, match="disk on fire"):
        open_db(db_path)
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    assert [v for v, _, _ in migration_rows(db_path)] == [m.version for m in real]


def test_several_processes_opening_a_fresh_file_migrate_it_once(db_path):
    n = 6
    barrier, results = SPAWN.Barrier(n), SPAWN.Queue()
    processes = [SPAWN.Process(target=workers.open_race, args=(str(db_path), barrier, results)) for _ in range(n)]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
        results.close()
        results.join_thread()
    crashes = [o[1] for o in outcomes if o[0] == "crash"]
    assert not crashes, crashes[0]
    versions = [m.version for m in migrate.available()]
    assert [o[1] for o in outcomes] == [versions] * n
    assert [v for v, _, _ in migration_rows(db_path)] == versions


def test_models_match_the_migrated_schema(db):
    conn = db.connection()
    tables = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    search_index = {name for name in tables if name.startswith("variant_search")}  # FTS5, queried in SQL
    assert {m._meta.table_name for m in MODELS} == tables - {"schema_migrations"} - search_index
    for model in MODELS:
        info = conn.execute(f"PRAGMA table_info({model._meta.table_name})").fetchall()
        columns = {name: (bool(notnull), pk > 0) for _, name, _, notnull, _, pk in info}
        fields = {f.column_name: f for f in model._meta.sorted_fields}
        assert set(fields) == set(columns), model.__name__
        for name, field in fields.items():
            notnull, is_pk = columns[name]
            in_pk = field.primary_key or name in _composite_key_columns(model)
            assert is_pk == in_pk, f"{model.__name__}.{name}: primary key"
            if not is_pk:
                assert notnull == (not field.null), f"{model.__name__}.{name}: NOT NULL"


def _composite_key_columns(model) -> set[str]:
    key = model._meta.primary_key
    names = getattr(key, "field_names", ())
    return {model._meta.fields[n].column_name for n in names}
