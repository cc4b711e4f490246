"""The job scheduler on a controllable clock: a daily slot runs once, a missed slot is recorded and caught up
after a restart, a crash-left run becomes 'interrupted', a failure is recorded and alerted until a good run,
and two schedulers on one database never run one job at once. One test runs APScheduler on the real clock."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from workers import SITE, FakeClock, open_ledger

from appliance import clock
from appliance.app import App
from appliance.config.schema import Config, DatabaseConfig, JobsConfig, SiteConfig
from appliance.jobs.catalog import Job, build_jobs
from appliance.jobs.locks import JobLock
from appliance.jobs.scheduler import JobScheduler
from appliance.jobs.schedules import Daily, Every

BERLIN = "Europe/Berlin"
START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)        # 09:00 in Berlin, a Monday


def berlin(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    """A March 2026 moment given in Berlin time (UTC+1 until the 29th)."""
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=timezone(timedelta(hours=1)))


def make_app(db_path, ledger, **jobs) -> App:
    config = Config(site=SiteConfig(id=SITE, timezone=BERLIN), database=DatabaseConfig(path=db_path),
                    jobs=JobsConfig(**jobs))
    app = App(config, ledger.db)
    app.ledger = ledger
    return app


def pinned(at: datetime = START) -> FakeClock:
    """A clock that stands still until the test moves it (`advance`)."""
    return FakeClock(at, step=timedelta(0))


def catalog(app: App, *names: str) -> list[Job]:
    return [job for job in build_jobs(app.config) if job.name in names]


def rows(app: App, job: str) -> list[tuple]:
    return app.db.execute_sql("SELECT outcome, scheduled_for, detail FROM job_run WHERE job = ? ORDER BY id",
                              (job,)).fetchall()


def alert(app: App, kind: str, subject: str) -> tuple | None:
    """(message, resolved_at) of the latest alert of that kind and subject."""
    return app.db.execute_sql("SELECT message, resolved_at FROM alert WHERE kind = ? AND subject = ?"
                              " ORDER BY id DESC LIMIT 1", (kind, subject)).fetchone()


def test_a_daily_job_runs_once_at_its_time_and_not_again_when_ticked_again(db_path, ledger):
    app = make_app(db_path, ledger, check_at="03:00")
    scheduler = JobScheduler(app, now=pinned(), jobs=catalog(app, "nightly_check"))
    scheduler.start()
    assert rows(app, "nightly_check") == []          # 03:00 today was before the first start: nobody's slot

    assert scheduler.tick(berlin(3, 2, 59, 59)) == []
    ran = scheduler.tick(berlin(3, 3, 0))
    assert [(r.job, r.outcome) for r in ran] == [("nightly_check", "ok")]
    assert scheduler.tick(berlin(3, 3, 0, 30)) == []
    assert scheduler.tick(berlin(3, 23, 59)) == []
    assert [r.outcome for r in scheduler.tick(berlin(4, 3, 5))] == ["ok"]
    assert [(o, s) for o, s, _ in rows(app, "nightly_check")] == [
        ("ok", clock.to_ts(berlin(3, 3, 0))), ("ok", clock.to_ts(berlin(4, 3, 0)))]


def test_daily_times_follow_the_site_time_zone_across_the_clock_change():
    backup = Daily("02:30", BERLIN)
    # 29 March 2026: Berlin springs from 02:00 to 03:00; the slot that does not exist is taken at 01:30 UTC.
    assert backup.next_due(datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    assert backup.next_due(datetime(2026, 3, 29, 12, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 3, 30, 0, 30, tzinfo=timezone.utc)       # 02:30 summer time
    assert backup.last_due(datetime(2026, 3, 30, 0, 29, tzinfo=timezone.utc)) == \
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_a_slot_missed_while_the_agent_was_down_is_recorded_and_caught_up_within_grace(db_path, ledger):
    app = make_app(db_path, ledger, check_at="03:00", misfire_grace_s=3600)
    first = JobScheduler(app, now=pinned(), jobs=catalog(app, "nightly_check"))
    first.start()
    first.tick(berlin(3, 3, 0))
    # The agent stops on the 3rd and comes back at 03:20 on the 4th: the 03:00 run was missed.
    restart = pinned(berlin(4, 3, 20))
    second = JobScheduler(app, now=restart, jobs=catalog(app, "nightly_check"))
    second.start()
    history = rows(app, "nightly_check")
    assert [(o, s) for o, s, _ in history] == [
        ("ok", clock.to_ts(berlin(3, 3, 0))),
        ("missed", clock.to_ts(berlin(4, 3, 0))),
        ("ok", clock.to_ts(berlin(4, 3, 0)))]          # caught up at once: 20 minutes late is within grace
    assert "did not run at 2026-03-04 03:00: the agent was not running; running it now" in history[1][2]
    message, resolved = alert(app, "job_missed", "nightly_check")
    assert "did not run at 2026-03-04 03:00" in message and resolved is not None   # the good run resolved it
    assert second.tick(berlin(4, 3, 21)) == []          # and the slot is not run a third time

    # Back only at 05:00 on the 5th: two hours late is past the grace. Recorded, alerted, not run.
    third = JobScheduler(app, now=pinned(berlin(5, 5, 0)), jobs=catalog(app, "nightly_check"))
    third.start()
    assert [o for o, _, _ in rows(app, "nightly_check")][3:] == ["missed"]
    assert alert(app, "job_missed", "nightly_check")[1] is None                    # open
    assert third.tick(berlin(5, 6, 0)) == []
    assert [r.outcome for r in third.tick(berlin(6, 3, 0))] == ["ok"]
    assert alert(app, "job_missed", "nightly_check")[1] is not None


def test_a_run_left_running_by_a_crash_becomes_interrupted_unless_someone_holds_it(db_path, ledger):
    app = make_app(db_path, ledger)
    with ledger.write() as ops:
        for job in ("backup", "nightly_check"):
            ops.conn.execute("INSERT INTO job_run (job, started_at, outcome) VALUES (?, ?, 'running')",
                             (job, clock.to_ts(START - timedelta(hours=5))))
    # Another process (an agent started twice) is running the nightly check right now.
    other = JobLock(db_path, "nightly_check")
    assert other.acquire()
    try:
        JobScheduler(app, now=pinned(), jobs=catalog(app, "backup", "nightly_check")).start()
    finally:
        other.release()
    assert [(o, d) for o, _, d in rows(app, "backup")] == [("interrupted", "the process stopped during the run")]
    assert [o for o, _, _ in rows(app, "nightly_check")] == ["running"]


def test_a_daily_run_cut_short_by_a_crash_is_run_again_after_the_restart(db_path, ledger):
    app = make_app(db_path, ledger, check_at="03:00")
    JobScheduler(app, now=pinned(), jobs=catalog(app, "nightly_check")).start()
    with ledger.write() as ops:        # the 03:00 run had begun when the power went
        ops.conn.execute("INSERT INTO job_run (job, scheduled_for, started_at, outcome) VALUES (?, ?, ?, 'running')",
                         ("nightly_check", clock.to_ts(berlin(3, 3, 0)), clock.to_ts(berlin(3, 3, 0, 1))))
    JobScheduler(app, now=pinned(berlin(3, 3, 10)), jobs=catalog(app, "nightly_check")).start()
    assert [(o, d.split(":")[0]) for o, _, d in rows(app, "nightly_check")] == [
        ("interrupted", "the process stopped during the run"),
        ("missed", "job nightly_check did not run at 2026-03-03 03"),
        ("ok", "consistent")]
    assert rows(app, "nightly_check")[1][2].endswith("its run was interrupted by a stop; running it now")


def test_a_failing_job_is_recorded_and_alerted_once_and_a_good_run_resolves_it(db_path, ledger, caplog):
    app = make_app(db_path, ledger)
    calls = []

    def flaky(app_, now):
        calls.append(now)
        if len(calls) <= 2:
            raise OSError(f"disk full at attempt {len(calls)}")
        return "fine"
    scheduler = JobScheduler(app, now=pinned(), jobs=[Job("flaky", Every(60), flaky, "fails twice")])
    scheduler.start()
    assert [r.outcome for r in scheduler.tick(START)] == ["failed"]
    assert scheduler.tick(START + timedelta(seconds=59)) == []
    assert [r.outcome for r in scheduler.tick(START + timedelta(seconds=60))] == ["failed"]
    assert "job flaky failed: OSError: disk full at attempt 1" in caplog.text
    assert [(o, d) for o, _, d in rows(app, "flaky")] == [("failed", "OSError: disk full at attempt 1"),
                                                          ("failed", "OSError: disk full at attempt 2")]
    open_ = app.db.execute_sql("SELECT message, seen_count FROM alert WHERE kind = 'job_failed' AND subject = 'flaky'"
                               " AND resolved_at IS NULL").fetchall()
    assert open_ == [("job flaky failed: OSError: disk full at attempt 2", 2)]   # one alert, seen twice

    assert [r.outcome for r in scheduler.tick(START + timedelta(seconds=120))] == ["ok"]
    assert alert(app, "job_failed", "flaky")[1] == clock.to_ts(START + timedelta(seconds=120))
    assert scheduler.run_now("flaky").outcome == "ok"
    assert len(calls) == 4


def test_two_schedulers_on_one_database_never_run_one_job_at_once(db_path, ledger):
    entered, release = threading.Event(), threading.Event()
    inside, overlaps, runs_ = [0], [], []

    def slow(app_, now):
        inside[0] += 1
        overlaps.append(inside[0])
        runs_.append(app_)
        entered.set()
        release.wait(30)
        inside[0] -= 1
        return "slow done"

    def scheduler_for(app: App) -> JobScheduler:
        made = JobScheduler(app, now=pinned(), jobs=[Job("slow", Daily("02:30", BERLIN), slow, "blocks")])
        made.start()
        return made

    first_app = make_app(db_path, ledger)
    other_ledger = open_ledger(db_path)          # a second agent: its own connection, its own lock files
    try:
        second_app = make_app(db_path, other_ledger)
        first, second = scheduler_for(first_app), scheduler_for(second_app)
        slot = berlin(3, 2, 30)
        worker = threading.Thread(target=lambda: first.tick(slot))
        worker.start()
        try:
            assert entered.wait(10)
            assert second.run_now("slow").outcome == "busy"        # the lock, not the database, stops it
            assert second.tick(slot + timedelta(seconds=1)) == []   # and the slot is already taken
        finally:
            release.set()
            worker.join(30)
        assert [r.outcome for r in second.tick(slot + timedelta(seconds=2))] == []
        assert second.run_now("slow").outcome == "ok"             # free again: a manual run goes ahead
    finally:
        other_ledger.db.close()
    assert overlaps == [1, 1]
    assert runs_[0] is first_app and runs_[1] is second_app
    assert [o for o, _, _ in rows(first_app, "slow")] == ["ok", "ok"]


def test_in_the_agent_apscheduler_runs_the_jobs_on_the_real_clock_and_stops_cleanly(db_path, ledger):
    app = make_app(db_path, ledger)
    seen = []

    def quick(app_, now):
        # Runs in an APScheduler thread with a connection of its own.
        seen.append(app_.db.execute_sql("SELECT count(*) FROM job_run WHERE job = 'quick'").fetchone()[0])
        return f"run {len(seen)}"
    scheduler = JobScheduler(app, jobs=[Job("quick", Every(0.2), quick, "often")])
    before = threading.active_count()
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert len(seen) >= 3
    outcomes = [o for o, _, _ in rows(app, "quick")]
    assert outcomes and set(outcomes) == {"ok"}            # nothing left 'running' after stop()
    assert threading.active_count() == before
    status = {s["name"]: s for s in scheduler.status()}
    assert status["quick"]["last_run"]["outcome"] == "ok" and status["quick"]["schedule"] == "every 0.2 s"


def test_an_interval_job_with_nothing_to_do_writes_a_row_only_every_ten_minutes(db_path, ledger):
    app = make_app(db_path, ledger)
    work = [None, None, "sent 1", None, None]

    def poll(app_, now):
        return work.pop(0) if work else None
    scheduler = JobScheduler(app, now=pinned(), jobs=[Job("poll", Every(5), poll, "often")])
    scheduler.start()
    for seconds in range(0, 30, 5):
        assert [r.outcome for r in scheduler.tick(START + timedelta(seconds=seconds))] == ["ok"]
    # The first idle run is written (jobs list has a last run), the rest only when they did something.
    assert [(o, d) for o, _, d in rows(app, "poll")] == [("ok", "nothing to do"), ("ok", "sent 1")]
    scheduler.tick(START + timedelta(seconds=10 + 600))
    assert [d for _, _, d in rows(app, "poll")][-1] == "nothing to do" and len(rows(app, "poll")) == 3
    assert scheduler.tick(START + timedelta(seconds=10 + 601)) == []   # still paced by the in-memory start


@pytest.mark.parametrize("name, message", [
    ("nonsense", "no job 'nonsense'; the jobs are"),
    ("digest", "job 'digest' is off: the daily digest is off ([alerts] digest = false)"),
    ("peer_watch", "job 'peer_watch' is off: sync is off (no [mqtt] section)"),
])
def test_running_an_unknown_or_disabled_job_names_the_reason(db_path, ledger, name, message):
    from appliance.errors import InvalidInput
    with pytest.raises(InvalidInput) as caught:
        JobScheduler(make_app(db_path, ledger), background=False).run_now(name)
    assert message in caught.value.message and caught.value.details == {"field": "name"}


def test_the_catalog_follows_the_config(db_path, ledger):
    from appliance.config.schema import AlertsConfig, MqttConfig, PurchasingConfig
    plain = make_app(db_path, ledger)
    assert [j.name for j in build_jobs(plain.config)] == [
        "reservation_expiry", "alert_delivery", "reorder_sweep", "expiry_alerts", "backup", "nightly_check"]
    config = Config(site=SiteConfig(id=SITE, timezone="Europe/Warsaw"), database=DatabaseConfig(path=db_path),
                    alerts=AlertsConfig(digest=True, digest_at="06:45"), purchasing=PurchasingConfig(sweep_minutes=5),
                    mqtt=MqttConfig(host="broker.example"))
    schedules = {j.name: j.schedule.describe() for j in build_jobs(config)}
    assert schedules["digest"] == "daily at 06:45 Europe/Warsaw"
    assert schedules["reorder_sweep"] == "every 5 min" and schedules["peer_watch"] == "every 1 min"
    assert schedules["reservation_expiry"] == "every 30 s"


def test_a_sync_peer_silent_too_long_raises_peer_offline_until_it_is_heard_again(db_path, ledger):
    from appliance.config.schema import AlertsConfig, MqttConfig
    config = Config(site=SiteConfig(id=SITE, timezone=BERLIN), database=DatabaseConfig(path=db_path),
                    mqtt=MqttConfig(host="broker.example"), alerts=AlertsConfig(peer_offline_minutes=30))
    app = App(config, ledger.db)
    app.ledger = ledger
    ledger.db.execute_sql("INSERT INTO sync_peer (site_id, state, last_heard) VALUES ('WAW', 'online', ?)",
                          (clock.to_ts(START - timedelta(minutes=29)),))
    scheduler = JobScheduler(app, now=pinned(), jobs=catalog(app, "peer_watch"))
    scheduler.start()
    assert [r.detail for r in scheduler.tick(START)] == ["1 peer(s), 0 silent for over 30 min"]
    assert [r.detail for r in scheduler.tick(START + timedelta(minutes=1))] == ["1 peer(s), 0 silent for over 30 min"]
    assert [r.detail for r in scheduler.tick(START + timedelta(minutes=2))] == ["1 peer(s), 1 silent for over 30 min"]
    message, resolved = alert(app, "peer_offline", "WAW")
    assert message == f"sync peer WAW not heard from since {clock.to_ts(START - timedelta(minutes=29))} (over 30 min)"
    assert resolved is None
    ledger.db.execute_sql("UPDATE sync_peer SET last_heard = ?", (clock.to_ts(START + timedelta(minutes=2)),))
    scheduler.tick(START + timedelta(minutes=3))
    assert alert(app, "peer_offline", "WAW")[1] == clock.to_ts(START + timedelta(minutes=3))
