"""`appliance jobs list|run` in real processes on a box made by `appliance init`: the list with last and next
runs, a job run by hand and recorded, the agent's lock respected across processes, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.jobs.locks import JobLock


def appliance(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


@pytest.fixture
def box(tmp_path) -> Path:
    config = tmp_path / "appliance.toml"
    done = appliance(config, "init", "--site", "BER", "--site-name", "Berlin")
    assert done.returncode == 0, done.stderr
    return config


def test_list_shows_every_job_with_its_schedule_last_and_next_run(box):
    done = appliance(box, "jobs", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = {row["name"]: row for row in json.loads(done.stdout)}
    assert list(listed) == ["reservation_expiry", "alert_delivery", "reorder_sweep", "expiry_alerts", "backup",
                            "nightly_check"]
    assert listed["backup"]["schedule"] == "daily at 02:30 Europe/Berlin"
    assert listed["backup"]["last_run"] is None and listed["backup"]["next_run"].endswith("Z")

    done = appliance(box, "jobs", "run", "nightly_check")
    assert (done.returncode, done.stdout) == (
        0, "nightly_check: ok: consistent: stock, sequences, reservations and transfers match the movements\n")
    after = {row["name"]: row for row in json.loads(appliance(box, "jobs", "list", "--json").stdout)}
    last = after["nightly_check"]["last_run"]
    assert last["outcome"] == "ok" and last["scheduled_for"] is None and last["finished_at"] >= last["started_at"]

    table = appliance(box, "jobs", "list").stdout.splitlines()
    assert table[0].split() == ["job", "schedule", "last", "run", "outcome", "next", "run", "detail"]
    [check_line] = [line for line in table if line.startswith("nightly_check")]
    assert " ok " in check_line and "daily at 03:00 Europe/Berlin" in check_line
    [backup_line] = [line for line in table if line.startswith("backup")]
    assert " never " in backup_line


def test_run_backup_by_hand_writes_a_verified_backup_beside_the_database(box):
    db_path = Path(load_config(box).database.path)
    done = appliance(box, "jobs", "run", "backup")
    assert done.returncode == 0, done.stderr
    [made] = (db_path.parent / "backups").iterdir()
    assert made.name.startswith(db_path.stem + "-") and f"{made} (" in done.stdout and "integrity ok" in done.stdout


def test_a_job_the_agent_is_running_is_not_run_again(box):
    db_path = load_config(box).database.path
    agent_holds = JobLock(db_path, "backup")       # as the agent does while its backup runs
    assert agent_holds.acquire()
    try:
        done = appliance(box, "jobs", "run", "backup")
    finally:
        agent_holds.release()
    assert done.returncode == 1
    assert "backup is running already (in the agent or another process on this database)" in done.stderr
    listed = {row["name"]: row for row in json.loads(appliance(box, "jobs", "list", "--json").stdout)}
    assert listed["backup"]["last_run"] is None          # skipped, not recorded as a run


@pytest.mark.parametrize("name, message", [
    ("backups", "error[invalid_input]: no job 'backups'; the jobs are alert_delivery, backup, expiry_alerts,"),
    ("digest", "error[invalid_input]: job 'digest' is off: the daily digest is off ([alerts] digest = false)"),
])
def test_run_names_an_unknown_or_disabled_job(box, name, message):
    done = appliance(box, "jobs", "run", name)
    assert done.returncode == 2 and message in done.stderr
