"""JobScheduler: runs the agent's jobs (catalog.py), records every run in `job_run`, and makes sure that no job
runs twice at once and no missed run goes unnoticed.

- One run at a time per job: APScheduler's max_instances=1 within this scheduler, and a flock per job
  (locks.py) across schedulers and processes on one database. A run that finds the lock taken is skipped.
- A daily slot runs once: a run first checks, under that lock, that no run started at or after the slot.
- On start, rows a crash left 'running' become 'interrupted', and each daily job whose latest slot has no
  run since is recorded 'missed' (alert 'job_missed') and run now when still within `[jobs] misfire_grace_s`
  (coalesced: after three days off, one catch-up). Slots from before the first start on this database
  (`agent_cursor` 'jobs.since') were never anyone's to run.
- A failed run is logged, recorded, and raises its job's failure alert ('job_failed', the backup's
  'backup_failed'); the next good run resolves it, and any 'job_missed' of that job.
- The frequent jobs (alert delivery every 5 s) write nothing when they had nothing to do: a job returns None
  for that, and such an idle run is recorded only every IDLE_RECORD_S, so `jobs list` stays current without
  two fsync'd commits every few seconds wearing the SD card. Interval runs are written in one commit, after
  the run; a crash mid-run of one leaves no row, and its next run simply does the work.

Time: in the agent APScheduler fires the jobs on the wall clock (`start()`). Given `now=` (a callable that
returns an aware datetime), the scheduler starts no thread: `tick(at)` runs whatever is due at `at`, so tests
drive the clock. Both ask the same schedules (schedules.py) which slot is due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.errors import ApplianceError, InvalidInput, Recovering
from appliance.jobs import runs
from appliance.jobs.catalog import Job, build_jobs, disabled
from appliance.jobs.locks import JobLock
from appliance.notify.alerts import Alert, Recipients, raise_alert, resolve_alert

logger = logging.getLogger(__name__)

IDLE_RECORD_S = 600.0
IDLE_DETAIL = "nothing to do"


@dataclass(frozen=True)
class RunResult:
    job: str
    outcome: str            # ok, failed, busy (running elsewhere), done (the slot already ran)
    detail: str = ""
    run_id: int | None = None


class JobScheduler:
    def __init__(self, app, *, now: Callable[[], datetime] | None = None, jobs: Sequence[Job] | None = None,
                 background: bool | None = None) -> None:
        self.app = app
        self._now = now or clock.utcnow
        self._background = now is None if background is None else background
        self.jobs = {job.name: job for job in (build_jobs(app.config) if jobs is None else jobs)}
        self._locks = {name: JobLock(app.config.database.path, name) for name in self.jobs}
        self._recipients = Recipients(app.config)
        self._grace = timedelta(seconds=app.config.jobs.misfire_grace_s)
        self._since: datetime | None = None
        self._aps = None
        # Interval jobs, in memory: when each last started, and when it last wrote a row (None: not yet, or its
        # last recorded run failed, so the next good run must be written to resolve the failure alert).
        self._started: dict[str, datetime] = {}
        self._recorded: dict[str, datetime | None] = {}

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        now = self._now()
        catch_up = self._recover(now)
        if not self._background:
            for job, slot in catch_up:
                self._execute(job, slot, now)
            return
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler
        # It logs two INFO lines per run: 35,000 a day from the 5 s delivery job. Our own log says what matters.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        zone = ZoneInfo(self.app.config.site.timezone)
        aps = BackgroundScheduler(timezone=zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": int(self._grace.total_seconds())})
        for job in self.jobs.values():
            aps.add_job(self._fire, job.schedule.trigger(zone), args=[job.name], id=job.name, name=job.name)
        for job, slot in catch_up:
            aps.add_job(self._execute_logged, args=[job, slot], id=f"catch-up:{job.name}")
        aps.add_listener(self._aps_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        aps.start()
        self._aps = aps
        logger.info("scheduler started: %s", ", ".join(f"{j.name} ({j.schedule.describe()})"
                                                        for j in self.jobs.values()))

    def stop(self) -> None:
        """Waits for a running job, so that it is recorded as it ended rather than reaped at the next start."""
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
            logger.info("scheduler stopped")

    def _recover(self, now: datetime) -> list[tuple[Job, datetime]]:
        """Reap crash-left runs, note the first start, record missed slots; the daily runs to catch up."""
        now_ts = clock.to_ts(now)
        catch_up = []
        with self.app.ledger.write(device="scheduler") as ops:
            for run_id, name, started in runs.running(ops.conn):
                lock = self._locks.get(name) or JobLock(self.app.config.database.path, name)
                if lock.is_free():   # held: another process is running it right now
                    runs.interrupt(ops.conn, run_id, now_ts)
                    logger.warning("job %s (run %d, started %s) was interrupted by a stop", name, run_id, started)
            self._since = datetime.fromtimestamp(runs.mark_since(ops.conn, int(now.timestamp())), timezone.utc)
            for job in self.jobs.values():
                if not job.daily:
                    continue
                slot = job.schedule.last_due(now)
                slot_ts = clock.to_ts(slot)
                if slot <= self._since or runs.ran_since(ops.conn, job.name, slot_ts, ignore=("interrupted",)):
                    continue
                cut_short = runs.ran_since(ops.conn, job.name, slot_ts)
                in_grace = now - slot <= self._grace
                why = "its run was interrupted by a stop" if cut_short else "the agent was not running"
                self._missed(ops.conn, job, slot, now_ts, why + ("; running it now" if in_grace else
                             f"; over {self.app.config.jobs.misfire_grace_s} s ago, not run"))
                if in_grace:
                    catch_up.append((job, slot))
        return catch_up

    # --- the controllable clock ----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[RunResult]:
        """Run, in this thread, every job due at `now` (default: the scheduler's clock); what ran."""
        if self._since is None:
            raise RuntimeError("start() the scheduler before ticking it")
        now = now or self._now()
        with self._thread_connection():
            return [self._execute(job, slot, now) for job, slot in self._due(now)]

    def _due(self, now: datetime) -> Iterator[tuple[Job, datetime]]:
        for job in self.jobs.values():
            if job.daily:
                slot = job.schedule.last_due(now)
                with self.app.ledger.write(device="scheduler") as ops:
                    if slot < self._since or runs.ran_since(ops.conn, job.name, clock.to_ts(slot)):
                        continue
                    if now - slot > self._grace:   # what APScheduler does with a misfire past its grace
                        self._missed(ops.conn, job, slot, clock.to_ts(now), "it could not start on time")
                        continue
            else:
                slot = job.schedule.next_due(self._last_started(job.name), now)
                if slot > now:
                    continue
            yield job, slot

    # --- running -------------------------------------------------------------------------------------------

    def run_now(self, name: str) -> RunResult:
        """Run one job now in this thread, recorded like a scheduled run (counts as its daily slot's run)."""
        if name not in self.jobs:
            reason = disabled(self.app.config).get(name)
            if reason:
                raise InvalidInput(f"job {name!r} is off: {reason}", field="name")
            raise InvalidInput(f"no job {name!r}; the jobs are {', '.join(sorted(self.jobs))}", field="name")
        return self._execute(self.jobs[name], None, self._now())

    def _fire(self, name: str) -> None:
        """APScheduler's entry: the slot is the latest one at the time it fires."""
        job = self.jobs[name]
        now = self._now()
        self._execute_logged(job, job.schedule.last_due(now) if job.daily else now, now)

    def _execute_logged(self, job: Job, slot: datetime, now: datetime | None = None) -> None:
        try:
            self._execute(job, slot, now or self._now())
        except Exception:   # bookkeeping itself failed (database gone?): the run stays 'running' until a restart
            logger.exception("job %s could not be recorded", job.name)

    def _execute(self, job: Job, slot: datetime | None, now: datetime) -> RunResult:
        lock = self._locks[job.name]
        if not lock.acquire():
            logger.info("job %s is already running (here or in another process on this database); skipped",
                        job.name)
            return RunResult(job.name, "busy", "already running")
        try:
            with self._thread_connection():
                return self._run_recorded(job, slot, now)
        finally:
            lock.release()

    @contextmanager
    def _thread_connection(self) -> Iterator[None]:
        """peewee opens one connection per thread: one opened here for a pool thread must not outlive its use."""
        opened_here = self.app.db.is_closed()
        try:
            yield
        finally:
            if opened_here and not self.app.db.is_closed():
                self.app.db.close()

    def _last_started(self, name: str) -> datetime | None:
        if name in self._started:
            return self._started[name]
        last = runs.last_started(self.app.db.connection(), name)
        return clock.parse_ts(last) if last else None

    def _run_recorded(self, job: Job, slot: datetime | None, now: datetime) -> RunResult:
        now_ts = clock.to_ts(now)
        slot_ts = clock.to_ts(slot) if slot is not None else None
        run_id = None
        if job.daily:
            # A daily run is marked 'running' first: a crash during it must show, and its slot be run again.
            with self.app.ledger.write(device="scheduler") as ops:
                if slot is not None and runs.ran_since(ops.conn, job.name, slot_ts, ignore=("missed", "interrupted")):
                    return RunResult(job.name, "done", f"the {slot_ts} run already happened")
                run_id = runs.begin(ops.conn, job.name, slot_ts, now_ts)
        else:
            self._started[job.name] = now
        outcome = "ok"
        try:
            detail = job.run(self.app, now)
        except Recovering as exc:
            detail = f"skipped: {exc.message}"   # boot recovery refuses writes for a while; not a failure
        except Exception as exc:   # noqa: BLE001 (any failure of a job is recorded, alerted, and survived)
            outcome = "failed"
            detail = exc.message if isinstance(exc, ApplianceError) else f"{type(exc).__name__}: {exc}"
            logger.exception("job %s failed: %s", job.name, detail)
        if detail is None:
            detail = IDLE_DETAIL
            recorded = self._recorded.get(job.name)
            if not job.daily and recorded is not None and (now - recorded).total_seconds() < IDLE_RECORD_S:
                return RunResult(job.name, outcome, detail)
        finished_ts = clock.to_ts(max(self._now(), now))
        with self.app.ledger.write(device="scheduler") as ops:
            if run_id is None:
                run_id = runs.record(ops.conn, job.name, outcome, slot_ts, now_ts, detail, finished=finished_ts)
                runs.prune(ops.conn, job.name)
            else:
                runs.finish(ops.conn, run_id, outcome, detail, finished_ts)
            if outcome == "ok":
                resolve_alert(ops.conn, job.failure_kind, job.name, finished_ts, self._recipients)
                resolve_alert(ops.conn, "job_missed", job.name, finished_ts, self._recipients)
            else:
                raise_alert(ops.conn, Alert(job.failure_kind, job.name, f"job {job.name} failed: {detail}",
                                            site=self.app.config.site.id, detail={"run": run_id, "error": detail}),
                            finished_ts, self._recipients)
        if not job.daily:
            self._recorded[job.name] = now if outcome == "ok" else None
        log = logger.info if job.daily or outcome != "ok" else logger.debug
        log("job %s: %s (%s)", job.name, outcome, detail)
        return RunResult(job.name, outcome, detail, run_id)

    def _missed(self, conn, job: Job, slot: datetime, now_ts: str, why: str) -> None:
        local = slot.astimezone(ZoneInfo(self.app.config.site.timezone)).strftime("%Y-%m-%d %H:%M")
        message = f"job {job.name} did not run at {local}: {why}"
        runs.record(conn, job.name, "missed", clock.to_ts(slot), now_ts, message)
        raise_alert(conn, Alert("job_missed", job.name, message, site=self.app.config.site.id,
                                detail={"scheduled_for": clock.to_ts(slot)}), now_ts, self._recipients)
        logger.warning("%s", message)

    def _aps_event(self, event) -> None:
        from apscheduler.events import EVENT_JOB_MISSED
        job = self.jobs.get(event.job_id)
        if event.code == EVENT_JOB_MISSED and job is not None and job.daily:
            try:
                with self._thread_connection(), self.app.ledger.write(device="scheduler") as ops:
                    self._missed(ops.conn, job, event.scheduled_run_time, clock.to_ts(self._now()),
                                 "it could not start within the misfire grace")
            except Exception:
                logger.exception("could not record the missed run of %s", event.job_id)
        elif event.code == EVENT_JOB_MISSED:
            logger.info("job %s skipped a run that could not start on time", event.job_id)
        elif getattr(event, "exception", None) is not None:
            logger.error("job %s raised outside its bookkeeping: %r", event.job_id, event.exception)
        else:
            logger.warning("job %s is still running from its previous start; this start skipped", event.job_id)

    # --- what `jobs list` shows ----------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self._now()
        conn = self.app.db.connection()
        out = []
        for job in self.jobs.values():
            last = runs.last_run(conn, job.name)
            if job.daily:
                next_run = job.schedule.next_due(now)
            else:
                next_run = max(job.schedule.next_due(self._last_started(job.name), now), now)
            planned = self._aps.get_job(job.name) if self._aps is not None else None
            if planned is not None and planned.next_run_time is not None:
                next_run = planned.next_run_time
            out.append({"name": job.name, "schedule": job.schedule.describe(), "description": job.description,
                        "last_run": last, "next_run": clock.to_ts(next_run)})
        return out
