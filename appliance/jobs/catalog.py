"""The agent's jobs, built from the config: name, schedule, what it runs, and the alert its failure raises.

A job is `run(app, now) -> str | None`: it does its work in short `Ledger.write()` transactions and returns a
line for the `job_run` detail, or None when there was nothing to do (the scheduler then writes no row for
most such runs); raising means failed. The reorder sweep, alert delivery and the digest belong to
other modules and are imported when they run, so the agent starts even while one of them cannot load (its
runs then fail, are recorded and raise 'job_failed').
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from appliance.config import Config
from appliance.jobs.backup import run_backup
from appliance.jobs.expiry_alerts import run_expiry_alerts
from appliance.jobs.nightly_check import run_check
from appliance.jobs.peer_watch import run_peer_watch
from appliance.jobs.reservation_expiry import run_reservation_expiry
from appliance.jobs.schedules import Daily, Every

RESERVATION_EXPIRY_S = 30
ALERT_DELIVERY_S = 5
PEER_WATCH_S = 60


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Every | Daily
    run: Callable[..., str]
    description: str
    failure_kind: str = "job_failed"   # the alert a failed run raises (subject: the job's name)

    @property
    def daily(self) -> bool:
        return isinstance(self.schedule, Daily)


def _summary(result) -> str:
    return result if isinstance(result, str) else json.dumps(result, sort_keys=True, default=str)


def run_reorder_sweep(app, now: datetime) -> str:
    from appliance.purchasing.reorder import sweep
    return _summary(sweep(app, now))


def run_alert_delivery(app, now: datetime) -> str | None:
    from appliance.notify.delivery import deliver_due
    counts = deliver_due(app, now)
    return _summary(counts) if any(counts.values()) else None


def run_digest(app, now: datetime) -> str:
    from appliance.notify.digest import send_digest
    return f"{send_digest(app, now)} digest email(s) queued or sent"


def build_jobs(config: Config) -> list[Job]:
    tz = config.site.timezone
    jobs = [
        Job("reservation_expiry", Every(RESERVATION_EXPIRY_S), run_reservation_expiry,
            "release reservations past their expiry; one info alert each"),
        Job("alert_delivery", Every(ALERT_DELIVERY_S), run_alert_delivery,
            "send the alert emails and webhooks that are due, with retries"),
        Job("reorder_sweep", Every(config.purchasing.sweep_minutes * 60), run_reorder_sweep,
            "check every reorder rule again (the trigger also runs after each movement)"),
        Job("expiry_alerts", Daily(config.jobs.expiry_check_at, tz), run_expiry_alerts,
            f"alert on lots expiring within {config.alerts.expiry_days} days"),
        Job("backup", Daily(config.jobs.backup_at, tz), run_backup,
            f"online backup of the database, verified, kept {config.jobs.backup_keep_days} days",
            failure_kind="backup_failed"),
        Job("nightly_check", Daily(config.jobs.check_at, tz), run_check,
            "recompute stock from the movements; alert on any difference"),
    ]
    if config.alerts.digest:
        jobs.append(Job("digest", Daily(config.alerts.digest_at, tz), run_digest,
                        "email the list of open alerts"))
    if config.mqtt is not None:
        jobs.append(Job("peer_watch", Every(PEER_WATCH_S), run_peer_watch,
                        f"alert on sync peers silent for {config.alerts.peer_offline_minutes} min"))
    return jobs


def disabled(config: Config) -> dict[str, str]:
    """Jobs that exist but are off in this config, with the reason (for a clear error from `jobs run`)."""
    off = {}
    if not config.alerts.digest:
        off["digest"] = "the daily digest is off ([alerts] digest = false)"
    if config.mqtt is None:
        off["peer_watch"] = "sync is off (no [mqtt] section), so there are no peers to watch"
    return off
