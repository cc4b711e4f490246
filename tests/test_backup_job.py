"""The nightly backup job: a verified copy made with SQLite's online backup API, one file per UTC day, the
oldest deleted after `backup_keep_days`, and a backup that cannot be made or verified raising 'backup_failed'."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from workers import SITE, FakeClock

from appliance import clock
from appliance.app import App
from appliance.config.schema import Config, DatabaseConfig, JobsConfig, SiteConfig
from appliance.jobs.backup import BackupError, verify_backup
from appliance.jobs.catalog import build_jobs
from appliance.jobs.scheduler import JobScheduler
from appliance.ledger.requests import Move

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def make_app(db_path, ledger, **jobs) -> App:
    config = Config(site=SiteConfig(id=SITE, timezone="Europe/Berlin"), database=DatabaseConfig(path=db_path),
                    jobs=JobsConfig(**jobs))
    app = App(config, ledger.db)
    app.ledger = ledger
    return app


def backup_scheduler(app: App, at: datetime = START) -> JobScheduler:
    scheduler = JobScheduler(app, now=FakeClock(at, step=timedelta(0)),
                             jobs=[j for j in build_jobs(app.config) if j.name == "backup"])
    scheduler.start()
    return scheduler


def open_alert(app: App, kind: str) -> list[tuple]:
    return app.db.execute_sql("SELECT subject, message FROM alert WHERE kind = ? AND resolved_at IS NULL",
                              (kind,)).fetchall()


def test_the_backup_is_a_verified_copy_of_the_database(db_path, ledger):
    ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=7, lot="L1", expiry="2026-09-30"),
                 Move("receive", sku="CAT-2", location="BER-A-02", qty=3)])
    app = make_app(db_path, ledger)
    result = backup_scheduler(app).run_now("backup")
    assert result.outcome == "ok", result.detail
    made = db_path.parent / "backups" / "ledger-2026-03-02.db"
    assert str(made) in result.detail and "integrity ok" in result.detail
    assert sorted(p.name for p in made.parent.iterdir()) == ["ledger-2026-03-02.db"]   # no temp file left

    copy = sqlite3.connect(f"{made.as_uri()}?mode=ro", uri=True)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)   # one self-contained file
        query = "SELECT v.sku, l.code, s.lot, s.on_hand FROM stock s JOIN variant v ON v.id = s.variant_id" \
                " JOIN location l ON l.id = s.location_id ORDER BY v.sku"
        assert copy.execute(query).fetchall() == ledger.db.execute_sql(query).fetchall() == [
            ("CAT-2", "BER-A-02", "", 3), ("DOG-5", "BER-A-01", "L1", 7)]
        assert copy.execute("SELECT count(*) FROM movement").fetchone() == (2,)
    finally:
        copy.close()


def test_backups_are_kept_for_backup_keep_days(db_path, ledger, tmp_path):
    target = tmp_path / "nightly"
    target.mkdir()
    (target / "notes.txt").write_text("not a backup\n")
    (target / "other-2026-01-01.db").write_text("another database's backup\n")
    app = make_app(db_path, ledger, backup_dir=target, backup_at="02:30", backup_keep_days=3)
    scheduler = backup_scheduler(app)
    for day in range(3, 9):   # the nights of the 3rd to the 8th, 02:30 Berlin = 01:30 UTC
        ran = scheduler.tick(datetime(2026, 3, day, 1, 30, tzinfo=timezone.utc))
        assert [r.outcome for r in ran] == ["ok"]
        assert scheduler.tick(datetime(2026, 3, day, 1, 45, tzinfo=timezone.utc)) == []
    assert sorted(p.name for p in target.iterdir()) == [
        "ledger-2026-03-06.db", "ledger-2026-03-07.db", "ledger-2026-03-08.db", "notes.txt", "other-2026-01-01.db"]
    for name in ("ledger-2026-03-06.db", "ledger-2026-03-08.db"):
        verify_backup(target / name)
    details = [d for (d,) in app.db.execute_sql("SELECT detail FROM job_run WHERE job = 'backup' ORDER BY id")]
    assert details[0].endswith("; 0 old backup(s) deleted") and details[-1].endswith("; 1 old backup(s) deleted")


def test_a_backup_that_cannot_be_written_raises_backup_failed_until_one_succeeds(db_path, ledger, tmp_path):
    target = tmp_path / "usb-stick"
    target.write_text("a file where the backup directory should be\n")
    app = make_app(db_path, ledger, backup_dir=target)
    scheduler = backup_scheduler(app)
    result = scheduler.run_now("backup")
    assert result.outcome == "failed"
    assert result.detail.startswith(f"backup of {db_path} into {target} failed:")
    [(subject, message)] = open_alert(app, "backup_failed")
    assert subject == "backup" and message == f"job backup failed: {result.detail}"
    assert open_alert(app, "job_failed") == []        # one alert for one failure: the backup's own kind

    target.unlink()
    target.mkdir()
    assert scheduler.run_now("backup").outcome == "ok"
    assert open_alert(app, "backup_failed") == []
    resolved = app.db.execute_sql("SELECT resolved_at FROM alert WHERE kind = 'backup_failed'").fetchall()
    assert resolved == [(clock.to_ts(START),)]


def _stock_root_page(path) -> int:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'stock'").fetchone()[0]
    finally:
        conn.close()


def _claim_too_many_cells(data: bytearray, page_size: int, page: int) -> None:
    start = (page - 1) * page_size
    data[start + 3:start + 5] = (200).to_bytes(2, "big")     # the b-tree page header's cell count


def _scribble_over_every_page(data: bytearray, page_size: int, page: int) -> None:
    for offset in range(page_size * 2, len(data), page_size):
        data[offset:offset + 12] = b"\xa5" * 12


@pytest.mark.parametrize("corrupt, found", [
    (_claim_too_many_cells, "fails the integrity check: On tree page"),
    (_scribble_over_every_page, "cannot be read: database disk image is malformed"),
])
def test_a_corrupt_backup_fails_verification(db_path, ledger, tmp_path, corrupt, found):
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=7))
    app = make_app(db_path, ledger, backup_dir=tmp_path / "b")
    assert backup_scheduler(app).run_now("backup").outcome == "ok"
    made = tmp_path / "b" / "ledger-2026-03-02.db"
    verify_backup(made)
    data = bytearray(made.read_bytes())
    corrupt(data, int.from_bytes(data[16:18], "big"), _stock_root_page(made))
    made.write_bytes(bytes(data))
    with pytest.raises(BackupError) as caught:
        verify_backup(made)
    assert caught.value.message.startswith(f"backup {made} {found}")
