"""Expiry-date alerts: one 'expiring_lot' per stocked lot of this site expiring within `[alerts] expiry_days`
(critical once expired), raised once, resolved when the lot no longer qualifies; and the reservation-expiry
job's alerts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from workers import SITE, FakeClock

from appliance import clock
from appliance.app import App
from appliance.config.schema import AlertsConfig, Config, DatabaseConfig, JobsConfig, SiteConfig
from appliance.jobs.catalog import build_jobs
from appliance.jobs.scheduler import JobScheduler
from appliance.ledger.requests import Move

# 06:00 in Berlin on 2 March 2026: the expiry check's default time.
START = datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)


def make(db_path, ledger, *names, **alerts):
    config = Config(site=SiteConfig(id=SITE, timezone="Europe/Berlin"), database=DatabaseConfig(path=db_path),
                    alerts=AlertsConfig(**alerts), jobs=JobsConfig(expiry_check_at="06:00"))
    app = App(config, ledger.db)
    app.ledger = ledger
    scheduler = JobScheduler(app, now=FakeClock(START - timedelta(hours=12), step=timedelta(0)),
                             jobs=[j for j in build_jobs(config) if j.name in names])
    scheduler.start()
    return app, scheduler


def alerts(app: App, kind: str) -> dict[str, tuple]:
    return {subject: (severity, message, resolved is not None, seen) for subject, severity, message, resolved, seen in
            app.db.execute_sql("SELECT subject, severity, message, resolved_at, seen_count FROM alert WHERE kind = ?",
                                (kind,))}


def test_lots_expiring_within_the_window_raise_one_alert_each_until_they_are_gone(db_path, ledger):
    ledger.post([
        Move("receive", sku="DOG-5", location="BER-A-01", qty=6, lot="SOON", expiry="2026-03-10"),
        Move("receive", sku="DOG-5", location="BER-A-01", qty=2, lot="LATE", expiry="2026-05-01"),
        Move("receive", sku="DOG-5", location="BER-A-02", qty=1, lot="GONE", expiry="2026-03-01"),
        Move("receive", sku="CAT-2", location="BER-A-02", qty=5, lot="EDGE", expiry="2026-03-16"),
        Move("receive", sku="CAT-2", location="BER-A-02", qty=5, lot="NEXT", expiry="2026-03-17"),
        Move("receive", sku="DOG-15", location="BER-A-01", qty=4),                 # no lot, no expiry
    ])
    ledger.post(Move("ship", sku="CAT-2", location="BER-A-02", qty=5, lot="EDGE"))  # sold out: nothing to alert
    ledger.post(Move("receive", sku="CAT-2", location="BER-A-01", qty=1, lot="EDGE", expiry="2026-03-16"))
    app, scheduler = make(db_path, ledger, "expiry_alerts", expiry_days=14)

    ran = scheduler.tick(START)
    assert [(r.outcome, r.detail) for r in ran] == [("ok", "3 lot(s) expiring within 14 days (3 new); 0 resolved")]
    assert alerts(app, "expiring_lot") == {
        "DOG-5@BER-A-02/GONE": ("critical", "1 × DOG-5 at BER-A-02, lot GONE, expired on 2026-03-01", False, 1),
        "DOG-5@BER-A-01/SOON": ("warning", "6 × DOG-5 at BER-A-01, lot SOON, expires on 2026-03-10", False, 1),
        "CAT-2@BER-A-01/EDGE": ("warning", "1 × CAT-2 at BER-A-01, lot EDGE, expires on 2026-03-16", False, 1),
    }

    # The next morning: SOON was shipped, NEXT has come within 14 days; the others are seen again, not re-raised.
    ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=6, lot="SOON"))
    assert [r.detail for r in scheduler.tick(START + timedelta(days=1))] == [
        "3 lot(s) expiring within 14 days (1 new); 1 resolved"]
    state = alerts(app, "expiring_lot")
    assert state["DOG-5@BER-A-01/SOON"][2] is True
    assert state["CAT-2@BER-A-02/NEXT"] == (
        "warning", "5 × CAT-2 at BER-A-02, lot NEXT, expires on 2026-03-17", False, 1)
    assert state["DOG-5@BER-A-02/GONE"][2:] == (False, 2)
    assert "DOG-5@BER-A-01/LATE" not in state
    assert scheduler.tick(START + timedelta(days=1, hours=1)) == []      # once a day


def test_an_expired_reservation_is_released_and_leaves_one_info_alert(db_path, ledger):
    ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    kept = ledger.reserve("DOG-5", "BER-A-01", 2, ref="SO-1", expires_at=clock.to_ts(START + timedelta(hours=1)))
    lapsing = ledger.reserve("DOG-5", "BER-A-01", 3, ref="SO-2", expires_at=clock.to_ts(START - timedelta(minutes=1)))
    app, scheduler = make(db_path, ledger, "reservation_expiry")
    lapsing_id = app.db.execute_sql("SELECT id FROM reservation WHERE ref = 'SO-2'").fetchone()[0]
    assert kept.ids and lapsing.ids

    [result] = scheduler.tick(START)
    assert (result.outcome, result.detail) == ("ok", f"1 expired: {lapsing_id}")
    assert app.db.execute_sql("SELECT ref, status FROM reservation ORDER BY id").fetchall() == [
        ("SO-1", "held"), ("SO-2", "expired")]
    assert alerts(app, "reservation_expired") == {f"reservation:{lapsing_id}": (
        "info", f"reservation {lapsing_id} of 3 × DOG-5 at BER-A-01 for SO-2 expired and was released", True, 1)}
    assert [r.detail for r in scheduler.tick(START + timedelta(seconds=30))] == ["nothing to do"]
