"""The nightly check job: a stock row changed behind the ledger's back (plain SQL) raises one 'check_failed'
alert naming the difference, queued for delivery; a clean run resolves it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from workers import SITE, FakeClock

from appliance.app import App
from appliance.config.schema import Config, DatabaseConfig, SiteConfig, WebhookConfig
from appliance.jobs.catalog import build_jobs
from appliance.jobs.scheduler import JobScheduler
from appliance.ledger.requests import Move

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def test_tampered_stock_raises_check_failed_and_a_clean_run_resolves_it(db_path, ledger):
    ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=10),
                 Move("receive", sku="CAT-2", location="BER-A-02", qty=4)])
    config = Config(site=SiteConfig(id=SITE), database=DatabaseConfig(path=db_path),
                    webhooks=(WebhookConfig(name="ops", url="http://127.0.0.1:9/hook", severity="critical"),))
    app = App(config, ledger.db)
    app.ledger = ledger
    clock_ = FakeClock(START, step=timedelta(0))
    scheduler = JobScheduler(app, now=clock_, jobs=[j for j in build_jobs(config) if j.name == "nightly_check"])
    scheduler.start()

    first = scheduler.run_now("nightly_check")
    assert (first.outcome, first.detail) == (
        "ok", "consistent: stock, sequences, reservations and transfers match the movements")

    ledger.db.execute_sql("UPDATE stock SET on_hand = 13 WHERE on_hand = 10")     # someone "fixed" it by hand
    tampered = scheduler.run_now("nightly_check")
    assert tampered.outcome == "ok"                    # the check ran; what it found is the alert
    assert tampered.detail.startswith("1 difference(s); first: DOG-5 at BER-A-01: stored on_hand/reserved/in_transit"
                                      " 13/0/0, movements say 10/0/0")
    [(alert_id, severity, message, detail)] = ledger.db.execute_sql(
        "SELECT id, severity, message, detail FROM alert WHERE kind = 'check_failed' AND resolved_at IS NULL")
    assert severity == "critical" and "check found 1 difference(s)" in message
    detail = json.loads(detail)
    assert detail["count"] == 1
    assert detail["differences"][0]["sku"] == "DOG-5" and detail["differences"][0]["stored"] == [13, 0, 0]
    queued = ledger.db.execute_sql("SELECT event, channel, target FROM alert_delivery WHERE alert_id = ?",
                                   (alert_id,)).fetchall()
    assert queued == [("raised", "webhook", "ops")]

    clock_.advance(days=1)
    again = scheduler.run_now("nightly_check")        # still wrong: the same alert, seen again, not a second one
    assert again.detail.startswith("1 difference(s)")
    assert ledger.db.execute_sql("SELECT count(*), max(seen_count) FROM alert WHERE kind = 'check_failed'"
                                 ).fetchone() == (1, 2)

    ledger.db.execute_sql("UPDATE stock SET on_hand = 10 WHERE on_hand = 13")
    clock_.advance(days=1)
    assert scheduler.run_now("nightly_check").detail.startswith("consistent")
    assert ledger.db.execute_sql("SELECT resolved_at IS NOT NULL FROM alert WHERE kind = 'check_failed'"
                                 ).fetchall() == [(1,)]
    assert ledger.db.execute_sql("SELECT event FROM alert_delivery WHERE alert_id = ? ORDER BY id",
                                 (alert_id,)).fetchall() == [("raised",), ("resolved",)]
