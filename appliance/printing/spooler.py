"""The spooler: sends queued print jobs, one thread per configured printer, in the agent only.

Each job: ask a ZPL printer's status first (paper out, head open and pause hold the queue instead of filling the
printer's buffer), mark the job `sending` and commit, render it for this printer, send it, mark it `done`.
- Nothing listening, or the connection refused: nothing left the box; the job is retried with a backoff
  (`retry_base_s` doubling up to `retry_max_s`) and after `give_up_hours` is `failed`.
- The connection dropped part-way: a ZPL job is one `^XA…^XZ` format, which the printer only prints once its
  `^XZ` arrives, so the retry starts with `~JX` (cancel the partially received format) and prints it once. Part
  of an ESC/POS job may already be on paper: it becomes `uncertain`, for a person to reprint or dismiss.
- A job found `sending` when the agent starts is `uncertain` for the same reason (queue.recover).
A printer in trouble raises one `printer_error` alert (subject: the printer's name) with the reason and the
number of jobs waiting; the next job that goes through resolves it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from appliance import clock
from appliance.config.printers import PrinterConfig
from appliance.errors import ApplianceError
from appliance.notify.alerts import Alert, Recipients, raise_alert, resolve_alert
from appliance.printing import queue, status, transport
from appliance.printing.media import Media
from appliance.printing.render import render

logger = logging.getLogger(__name__)

KIND = "printer_error"
POLL_S = 0.2
CANCEL_PARTIAL_FORMAT = b"~JX"


class Spooler:
    """Build with the app, start() and stop(); or drive `pass_once(printer, now)` in tests."""

    def __init__(self, app, *, poll_s: float = POLL_S, retry_base_s: float = 5.0, retry_max_s: float = 300.0,
                 give_up_hours: float = 24.0, now: Callable[[], datetime] = clock.utcnow) -> None:
        self.app = app
        self.printers = {p.name: p for p in app.config.printers}
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.give_up = timedelta(hours=give_up_hours)
        self._now = now
        self._recipients = Recipients(app.config)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: dict[str, int] = {}            # consecutive failures per printer
        self._resume_at: dict[str, datetime] = {}       # a printer in trouble is left alone until then
        self._succeeded: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("spooler already started")
        self.recover()
        for printer in self.printers.values():
            thread = threading.Thread(target=self._run, args=(printer,), name=f"spool-{printer.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop after the job being sent (a send is bounded by the printer's timeout_s)."""
        self._stop.set()
        limit = timeout_s if timeout_s is not None else max([p.timeout_s for p in self.printers.values()] or [0]) * 2 + 1
        alive = []
        for thread in self._threads:
            thread.join(limit)
            if thread.is_alive():
                alive.append(thread.name)
        self._threads = []
        if alive:
            logger.warning("spooler threads still running after stop: %s", ", ".join(alive))
        return not alive

    def recover(self) -> list[int]:
        """Jobs left `sending` by the previous run become `uncertain`; jobs for printers no longer configured
        are failed with the reason (they would otherwise wait for ever)."""
        now = clock.to_ts(self._now())
        with self.app.ledger.write(device="spooler") as ops:
            uncertain = queue.recover(ops.conn, now)
            known = list(self.printers)
            marks = ", ".join("?" * len(known))
            orphans = ops.conn.execute(
                f"UPDATE print_job SET state = 'failed', updated_at = ?, last_error = 'printer ' || printer || "
                f"' is not configured any more: reprint the job on another printer' WHERE state = 'queued'"
                f"{f' AND printer NOT IN ({marks})' if known else ''} RETURNING id", (now, *known)).fetchall()
        for job_id in uncertain:
            logger.warning("print job %d was being sent when the agent stopped: marked uncertain (reprint or cancel "
                           "it: appliance print queue retry|cancel %d)", job_id, job_id)
        if orphans:
            logger.warning("print jobs for printers no longer configured failed: %s", sorted(r[0] for r in orphans))
        return uncertain

    def _run(self, printer: PrinterConfig) -> None:
        try:
            while not self._stop.is_set():
                try:
                    busy = self.pass_once(printer, self._now())
                except Exception:   # noqa: BLE001 - a bug or a locked database must not end the printer's queue
                    logger.exception("spooler pass for %s failed; next in %.1fs", printer.name, self.poll_s)
                    busy = False
                if not busy and self._stop.wait(self.poll_s):
                    return
        finally:
            self.app.db.close()   # this thread's connection

    # -- one pass --------------------------------------------------------------------------------------

    def pass_once(self, printer: PrinterConfig, now: datetime) -> bool:
        """Send the oldest due job of `printer`; True if one went out (look again at once)."""
        if now < self._resume_at.get(printer.name, now):
            return False   # backing off a printer in trouble
        due = queue.due(self.app.db.connection(), printer.name, clock.to_ts(now), limit=1)
        if not due:
            return False
        job = due[0]
        problem = self._printer_problem(printer)
        if problem is not None:
            self._trouble(printer, job, now, problem)
            return False
        media = Media.from_printer(printer)
        try:
            data = render(job.label, job.data, media, job.copies)
        except ApplianceError as exc:   # the data was checked when queued; a renderer change may still refuse it
            ts = clock.to_ts(now)
            with self.app.ledger.write(device="spooler") as ops:
                if queue.claim(ops.conn, job.id, ts):
                    queue.settle(ops.conn, job.id, "failed", ts, f"cannot render for {printer.name}: {exc.message}")
            logger.error("print job %d cannot be rendered for %s: %s", job.id, printer.name, exc.message)
            return True
        if job.partial and media.language == "zpl":
            data = CANCEL_PARTIAL_FORMAT + data
        with self.app.ledger.write(device="spooler") as ops:
            if not queue.claim(ops.conn, job.id, clock.to_ts(now)):
                return True   # cancelled in between
        try:
            transport.send(printer, data)
        except transport.SendError as exc:
            self._failed_send(printer, job, exc, media.language, now)
            return False
        self._sent(printer, job, now)
        return True

    def _sent(self, printer: PrinterConfig, job: queue.Job, now: datetime) -> None:
        done = clock.to_ts(now)
        # After trouble, or the first job of this run (an alert the previous run left open): resolve.
        recovered = printer.name in self._failures or printer.name not in self._succeeded
        with self.app.ledger.write(device="spooler") as ops:
            queue.finish(ops.conn, job.id, done)
            if recovered and resolve_alert(ops.conn, KIND, printer.name, done, self._recipients) is not None:
                logger.info("printer %s is printing again", printer.name)
        self._failures.pop(printer.name, None)
        self._resume_at.pop(printer.name, None)
        self._succeeded.add(printer.name)
        logger.info("print job %d (%s x%d) sent to %s", job.id, job.label, job.copies, printer.name)

    def _printer_problem(self, printer: PrinterConfig) -> str | None:
        if printer.kind != "zpl_tcp" or not printer.status:
            return None
        try:
            found = status.query(printer)
        except (OSError, ValueError, transport.SendError) as exc:
            return f"not reachable ({exc})"
        return ", ".join(found.problems) or None

    def _failed_send(self, printer: PrinterConfig, job: queue.Job, exc: transport.SendError, language: str,
                     now: datetime) -> None:
        ts = clock.to_ts(now)
        reason = str(exc)

        def settle(conn) -> None:
            if exc.sent and language != "zpl":
                queue.settle(conn, job.id, "uncertain", ts, f"{reason} after {exc.sent} of {exc.total} bytes: "
                             "part of the label may have printed; reprint or cancel it")
            else:
                # The job keeps its place at the head of the queue; the printer is backed off instead.
                queue.retry_later(conn, job.id, ts, ts, reason, partial=bool(exc.sent))
        self._trouble(printer, job, now, reason, settle)

    def _trouble(self, printer: PrinterConfig, job: queue.Job, now: datetime, problem: str,
                 settle: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Back the printer off (doubling, capped), fail jobs that waited past `give_up_hours`, say why on the
        job at the head of the queue, and raise (or refresh) the printer's alert; in one transaction with
        `settle`, what a failed send does to its job."""
        failures = self._failures.get(printer.name, 0) + 1
        self._failures[printer.name] = failures
        delay = min(self.retry_base_s * 2 ** (failures - 1), self.retry_max_s)
        self._resume_at[printer.name] = now + timedelta(seconds=delay)
        ts = clock.to_ts(now)
        cutoff = clock.to_ts(now - self.give_up)
        with self.app.ledger.write(device="spooler") as ops:
            if settle is not None:
                settle(ops.conn)
            gave_up = ops.conn.execute(
                "UPDATE print_job SET state = 'failed', updated_at = ?, last_error = ? WHERE printer = ?"
                " AND state = 'queued' AND created_at < ? RETURNING id",
                (ts, f"gave up after {self.give_up.total_seconds() / 3600:g} h: {printer.name} {problem}",
                 printer.name, cutoff)).fetchall()
            ops.conn.execute("UPDATE print_job SET last_error = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                             (f"{printer.name} {problem}", ts, job.id))
            waiting = queue.waiting(ops.conn, printer.name)
            message = f"printer {printer.name}: {problem}; {waiting} job{'s' if waiting != 1 else ''} waiting"
            raise_alert(ops.conn, Alert(KIND, printer.name, message, site=self.app.config.site.id,
                                        detail={"printer": printer.name, "kind": printer.kind, "problem": problem,
                                                "waiting": waiting}), ts, self._recipients)
        if gave_up:
            logger.error("print jobs %s to %s failed: waited longer than %s", sorted(r[0] for r in gave_up),
                         printer.name, self.give_up)
        if failures == 1:
            logger.warning("printer %s: %s; retrying in %.0fs", printer.name, problem, delay)
