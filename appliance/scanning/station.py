"""The station desk: one scan in, one transaction, one `Feedback` out (issue 4).

In one BEGIN IMMEDIATE transaction the desk resolves the scan, loads the station's session, asks the workflow
(workflow.py, pure) what to do, does it with the ledger's operations, writes the scan log row and saves the
session. A refusal by the ledger (not enough stock, a closed transfer, a box still recovering) rolls back to a
savepoint taken before the action, so the scan is still logged with the reason and the session stays as it
was. Every movement a scan posts carries the op id `scan:<station>:<scan id>`, and a replayed scan
`scan-replay:<original scan id>`, so a replay can never book twice.

Any process may handle scans (the agent's readers, `appliance scan`, later the web UI): the session lives in
the database, not in the process.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import peewee

from appliance import clock
from appliance.errors import ApplianceError, InsufficientStock, InvalidInput
from appliance.ledger.sites import owner_by_prefix
from appliance.scanning import scan_log, station_actions, workflow
from appliance.scanning.barcodes import interpret
from appliance.scanning.feedback import Feedback, StockLine
from appliance.scanning.resolve import resolve
from appliance.scanning.scan import Scan, visible
from appliance.scanning.workflow import Seen, Session

logger = logging.getLogger(__name__)

ITEM_KINDS = ("gs1", "gtin", "text")


class StationDesk:
    def __init__(self, db: peewee.SqliteDatabase, ledger, *, idle_timeout_s: float = 300.0,
                 today: Callable[[], date] = date.today, config=None) -> None:
        """`config`: the appliance config, for CMD-PRINT's printers (None: the box prints no labels)."""
        self.db = db
        self.config = config
        self.ledger = ledger
        self.site = ledger.site_id
        self.idle_timeout_s = idle_timeout_s
        self.today = today

    def handle(self, scan: Scan, gs_substitutes: tuple[str, ...] = ("<GS>",), user: str | None = None) -> Feedback:
        """Carry out one scan at its station; never raises for anything the scan or the ledger did. `user`: who
        scanned, when the scan says it (a logged-in browser); a badge scanned at the station still wins."""
        return self._run(scan, gs_substitutes, user=user)

    def replay(self, scan_id: int, gs_substitutes: tuple[str, ...] = ("<GS>",)) -> Feedback:
        """Run a logged scan again (after its code was linked), in the session it was scanned in; the station's
        current session is left alone. A scan is replayed at most once."""
        row = self.db.execute_sql("SELECT station, raw, session, replayed_by, outcome FROM scan_log WHERE id = ?",
                                  (scan_id,)).fetchone()
        if row is None:
            raise scan_log.ScanNotFound(scan_id)
        station, raw, snapshot, replayed_by, outcome = row
        if replayed_by is not None:
            raise station_actions.AlreadyReplayed(scan_id, replayed_by)
        if outcome != "unresolved":
            # It did what it could when scanned (or was refused for a reason the person saw): scan it again.
            raise InvalidInput(f"scan {scan_id} was not unresolved (it ended {outcome}); only unknown codes are "
                               "replayed", field="scan_id")
        session = Session.from_json(json.loads(snapshot)) if snapshot else Session()
        scan = Scan(station, f"replay:scan-log#{scan_id}", raw, time.time())
        # The snapshot is old by definition: replay it as if no time had passed since.
        return self._run(scan, gs_substitutes, session=replace(session, touched=scan.at), replay_of=scan_id)

    def _run(self, scan: Scan, gs_substitutes: tuple[str, ...], *, session: Session | None = None,
             replay_of: int | None = None, user: str | None = None) -> Feedback:
        found = interpret(scan.raw, gs_substitutes=gs_substitutes, today=self.today())
        try:
            with self.ledger.write(device=scan.device) as ops:
                return self._in_transaction(ops, scan, found, session, replay_of, user)
        except Exception as exc:   # the database failed (disk full, locked too long), or a bug: say so at the dock
            logger.exception("station %s: scan %s failed", scan.station, visible(scan.raw))
            message = f"Not booked: the box could not carry out this scan ({exc.__class__.__name__})"
            return Feedback(scan.station, "error", message, prompt="Scan again in a moment",
                            scan_id=self._log_failure(scan, found, message))

    def _log_failure(self, scan: Scan, found, message: str) -> int | None:
        """Keep the raw scan in the log even when its transaction rolled back; best effort (the journal has it)."""
        try:
            with self.db.atomic("IMMEDIATE"):
                conn = self.db.connection()
                scan_id = scan_log.insert(conn, scan, kind=found.kind, interpretation=found.to_dict())
                scan_log.finish(conn, scan_id, "error", message)
                return scan_id
        except Exception:
            logger.exception("station %s: scan %s could not be logged either", scan.station, visible(scan.raw))
            return None

    def _in_transaction(self, ops, scan: Scan, found, override: Session | None, replay_of: int | None,
                        user: str | None = None) -> Feedback:
        conn = ops.conn
        info = resolve(conn, found)
        seen = to_seen(conn, info, self.site)
        before = override if override is not None else load_session(conn, scan.station)
        planned = workflow.step(before, seen, scan.at, site=self.site, idle_timeout_s=self.idle_timeout_s)
        # The row first: its id is the op id of whatever the scan posts.
        scan_id = scan_log.insert(conn, scan, kind=found.kind, interpretation=info, session=before.to_json(),
                                  replay_of=replay_of)
        ops.user = planned.session.user or user
        ops.op_id = f"scan-replay:{replay_of}" if replay_of is not None else f"scan:{scan.station}:{scan_id}"
        after = planned.session
        try:
            with self.db.atomic():   # a savepoint: a refusal undoes the action, not the log row
                if isinstance(planned.action, workflow.PrintLabel):
                    done = self._print(ops, planned.action, scan.station)
                else:
                    done = station_actions.carry_out(ops, planned.action)
        except ApplianceError as exc:
            done = station_actions.Done("error", refusal(exc))
            after = replace(before, touched=scan.at) if not planned.notes else replace(Session(), touched=scan.at)
        if done.last is not None:
            after = replace(after, last=done.last or None)
        if done.changes:
            after = replace(after, **done.changes)
        level = "warning" if planned.notes and done.level == "ok" else done.level
        message = ". ".join(planned.notes + (done.message,))
        unresolved = seen.kind == "unknown" and planned.session.ref_id != seen.text
        feedback = Feedback(scan.station, level, message, mode=after.mode, prompt=workflow.prompt(after),
                            stock=tuple(stock_lines(conn, done.pairs)), movement_ids=done.movement_ids,
                            scan_id=scan_id, unresolved=unresolved)
        feedback = with_low_stock(conn, feedback, done)
        scan_log.finish(conn, scan_id, "unresolved" if unresolved else feedback.level, feedback.message,
                        movement_ids=done.movement_ids, feedback=feedback.to_dict())
        if replay_of is None:
            save_session(conn, scan.station, after)
        else:
            conn.execute("UPDATE scan_log SET replayed_by = ?, resolved_at = coalesce(resolved_at, ?) WHERE id = ?",
                         (scan_id, ops.ts, replay_of))
        return feedback


    def _print(self, ops, action: workflow.PrintLabel, station: str) -> station_actions.Done:
        """The label goes into the print queue in the scan's transaction; the agent's spooler prints it."""
        from appliance.printing.service import location_data, queue_label, variant_data
        if self.config is None or not self.config.printers:
            raise InvalidInput("No label printer is configured on this box", field="printer")
        if action.label == "variant":
            data = variant_data(ops.conn, self.config, action.key)
        else:
            data = location_data(ops.conn, action.key)
        job = queue_label(ops.conn, self.config, action.label, data, now=ops.ts, copies=action.copies,
                          station=station, user=ops.user)
        copies = f" × {job.copies}" if job.copies > 1 else ""
        return station_actions.Done("ok", f"Label for {action.key}{copies} queued on {job.printer} (job {job.id})")


def to_seen(conn, info: dict[str, Any], site: str) -> Seen:
    """The resolved interpretation (resolve.resolve) as the workflow's input."""
    text = info.get("raw") or ""
    kind = info["kind"]
    if kind == "invalid" or info.get("errors"):
        return Seen("invalid", text, error="; ".join(info.get("errors") or ()) or f"Cannot read {text}")
    if info.get("sku"):
        return Seen("item", text, sku=info["sku"], units=info.get("units") or 1, lot=info.get("lot") or "",
                    expiry=info.get("expiry") or info.get("best_before"))
    if kind == "location":
        code = info["location"]
        owner = info.get("location_site") or owner_by_prefix(
            conn.execute("SELECT id, location_prefix FROM site"), code)
        if owner is None:
            return Seen("unknown", code)   # free text that looks like a code, e.g. an order number ORDER-77
        if owner == site and not info.get("location_site"):
            # A bin of ours that this box does not know (a new label, a typo): never an order number.
            return Seen("unknown", code, code_like=True)
        # Another site's location seen for the first time is still a destination (TransferOps.destination).
        return Seen("location", text, location=code, site=owner)
    if kind in ("document", "command", "quantity", "badge"):
        return Seen(kind, text, document=info.get("document"), document_type=info.get("document_type"),
                    command=info.get("command"), quantity=info.get("quantity"), login=info.get("login"))
    if kind == "gs1" and info.get("sscc") and not info.get("gtin"):
        return Seen("invalid", text, error=f"Pallet label {info['sscc']} (SSCC): pallets are not tracked; "
                                           "scan the items' codes")
    return Seen("unknown", info.get("text") or text, code_like=bool(info.get("gtin")))


def refusal(exc: ApplianceError) -> str:
    if isinstance(exc, InsufficientStock):
        available = exc.available
        where = exc.details.get("location")
        return f"Only {available} left at {where}" if available else f"None left at {where}"
    return f"Refused: {exc.message}"


def load_session(conn, station: str) -> Session:
    row = conn.execute("SELECT state FROM station_session WHERE station = ?", (station,)).fetchone()
    if row is None:
        return Session()
    try:
        return Session.from_json(json.loads(row[0]))
    except (ValueError, TypeError) as exc:
        # Written by another version of the appliance: start clean rather than refuse every scan.
        logger.warning("station %s: unreadable session dropped (%s)", station, exc)
        return Session()


def save_session(conn, station: str, session: Session) -> None:
    conn.execute("INSERT INTO station_session (station, state, updated_at) VALUES (?, ?, ?)"
                 " ON CONFLICT (station) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                 (station, json.dumps(session.to_json(), ensure_ascii=False), clock.now_ts()))


def stock_lines(conn, pairs) -> list[StockLine]:
    out = []
    for sku, location in dict.fromkeys(pairs):
        row = conn.execute(
            "SELECT coalesce(sum(s.on_hand), 0), coalesce(sum(s.on_hand - s.reserved), 0) FROM variant v"
            " JOIN location l ON l.code = ? LEFT JOIN stock s ON s.variant_id = v.id AND s.location_id = l.id"
            " WHERE v.sku = ?", (location, sku)).fetchone()
        if row is not None:
            out.append(StockLine(sku, location, row[0], row[1]))
    return out


def with_low_stock(conn, feedback: Feedback, done: station_actions.Done) -> Feedback:
    """A ship or move that leaves a location at or below its reorder point says so (a warning, not an error)."""
    if feedback.level != "ok" or not done.took_from:
        return feedback
    for line in feedback.stock:
        if line.location != done.took_from:
            continue
        point = conn.execute(
            "SELECT coalesce(o.reorder_point, v.reorder_point) FROM variant v JOIN location l ON l.code = ?"
            " LEFT JOIN reorder_override o ON o.variant_id = v.id AND o.location_id = l.id WHERE v.sku = ?",
            (line.location, line.sku)).fetchone()
        if line.available == 0 or (point and point[0] is not None and line.available <= point[0]):
            left = f"Only {line.available} left" if line.available else "None left"
            return replace(feedback, level="warning", message=f"{feedback.message}. {left} at {line.location}")
    return feedback
