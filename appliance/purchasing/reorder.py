"""The reorder trigger: after each committed movement (and in a periodic sweep) every rule the movement touched
is checked, stock alerts are raised or resolved, and a purchase order line is drafted when the position fell to
the reorder point.

It reads committed rows only (STYLE habit 8): `ReorderWatcher`, a thread of the agent, notices commits by any
process through `PRAGMA data_version`, reads the movements after its cursor, and writes the alerts, the draft
lines and the new cursor in one transaction, so a crash neither loses nor repeats a trigger. A ship post pays
nothing for it in its own transaction.

Most movements change nothing: the alert is already open, the line already drafted. The watcher therefore first
checks a batch with the connection read-only (`PRAGMA query_only`) and the alert calls skipped where the book
already says so; only a batch that must write is checked again inside a write transaction. The cursor of the
batches that wrote nothing is kept in memory and saved every CURSOR_SAVE_S: after a crash the trigger reads
those movements again, which is harmless, since every check compares state with state. So on a busy dock the
trigger does not take the write lock, nor fsync, once per post.

Once per crossing: a rule's low-stock alert stays open while available ≤ reorder point, and the draft line
counts as stock on order, so the next ship neither alerts nor orders again unless the position is still short.
A receipt that lifts available above the point resolves the alert; the next crossing fires anew.

Across sites (`company.py`): a variant with a company rule is also checked when another site's movement
arrives by sync, since it moves the company total; the box of the rule's buyer site checks the company rule
and orders for it. And before a site rule of such a variant drafts, the other sites' surplus is looked at: a
site that can spare the quantity gets a `transfer_suggested` alert instead of a purchase order line, open
until the low condition clears like the low-stock alert. Without company rules all this costs one indexed
lookup per batch of movements.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import peewee

from appliance import clock
from appliance.notify.alerts import Alert, Recipients, open_subjects, raise_alert, resolve_alert
from appliance.purchasing import company, orders
from appliance.purchasing.rules import Rule, order_quantity, position, rules_for

logger = logging.getLogger(__name__)

CURSOR = "reorder"
POLL_S = 0.02
BATCH = 2000
CURSOR_SAVE_S = 30.0
STOCK_KINDS = ("out_of_stock", "low_stock", "over_stock", "transfer_suggested")


@dataclass
class Report:
    rules: int = 0
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    drafted: list[tuple[str, str, int]] = field(default_factory=list)   # (po number, sku, qty)
    suggested: list[tuple[str, str, int]] = field(default_factory=list)  # (subject, from site, qty), new ones

    def as_dict(self) -> dict:
        return {"rules": self.rules, "raised": self.raised, "resolved": self.resolved,
                "drafted": [{"po": po, "sku": sku, "qty": qty} for po, sku, qty in self.drafted],
                "suggested": [{"subject": subject, "from_site": source, "qty": qty}
                              for subject, source, qty in self.suggested]}


class Trigger:
    """Checks rules inside a write transaction (`conn`). Built once per process from the app."""

    def __init__(self, app, *, touch: bool = True) -> None:
        """`touch`: an alert that is already open is raised again (last seen, count, message brought up to date)
        — what the sweep does; the watcher leaves it as it is, so a movement that changes nothing writes nothing."""
        self.app = app
        self.site = app.config.site.id
        self.purchasing = app.config.purchasing
        self.recipients = Recipients(app.config)
        self.touch = touch
        self._open: set[tuple[str, str]] = set()
        self.cursor: int | None = None          # the watcher's, in memory: ahead of the saved one
        self.saved_cursor: int | None = None
        self.saved_at = 0.0

    def _raise(self, conn, alert: Alert, ts: str, report: Report) -> bool:
        """Raise unless already open (and not touching); whether it is new."""
        key = (alert.kind, alert.subject)
        if key in self._open and not self.touch:
            return False
        new = raise_alert(conn, alert, ts, self.recipients)[1]
        self._open.add(key)
        if new:
            report.raised.append(f"{alert.kind}:{alert.subject}")
        return new

    def _resolve(self, conn, kind: str, subject: str, ts: str, report: Report) -> bool:
        if (kind, subject) not in self._open:
            return False   # not open: no UPDATE, which would take the write lock even matching no row
        self._open.discard((kind, subject))
        if resolve_alert(conn, kind, subject, ts, self.recipients) is None:
            return False
        report.resolved.append(f"{kind}:{subject}")
        return True

    def rules(self, conn, variant_ids: list[int] | None = None,
              buyers: dict[int, str] | None = None) -> list[Rule]:
        """This site's rules (of the given variants, or all), then the company rules it buys for: a site's
        draft is then already on order when the company position is read."""
        site_rules = rules_for(conn, self.site, variant_ids)
        if variant_ids is None:
            return site_rules + company.company_rules(conn, self.site)
        bought_here = [v for v in variant_ids if (buyers or {}).get(v) == self.site]
        return site_rules + company.company_rules(conn, self.site, bought_here)

    def check(self, conn, rules: Iterable[Rule], ts: str, report: Report,
              buyers: dict[int, str] | None = None) -> None:
        """`buyers`: {variant: buyer site} of the variants with a company rule, when the caller looked it up."""
        rules = list(rules)
        if not rules:
            return
        if buyers is None:
            buyers = company.buyers(conn, {rule.variant_id for rule in rules})
        marks = ", ".join("?" * len(STOCK_KINDS))
        self._open = set(conn.execute(f"SELECT kind, subject FROM alert WHERE resolved_at IS NULL AND kind IN ({marks})",
                                      STOCK_KINDS).fetchall())
        for rule in rules:
            report.rules += 1
            pos = position(conn, rule)
            sideways = rule.scope != "company" and rule.variant_id in buyers
            # Stock on its way from one site to another is still the company's: counted, a transfer between
            # sites would raise and clear a company alert around every shipment.
            held = pos.available + pos.inbound if rule.scope == "company" else pos.available
            unsupplied = pos.total <= rule.reorder_point and rule.supplier_id is None and self.purchasing.auto_draft
            self._alerts(conn, rule, held, ts, report, sideways, unsupplied)
            if pos.total > rule.reorder_point:
                continue
            partial = None
            if sideways:
                suggested, partial = self._suggest_transfer(conn, rule, pos, ts, report)
                if suggested:
                    continue
            if self.purchasing.auto_draft:
                self._draft(conn, rule, pos, ts, report, partial)

    def _alerts(self, conn, rule: Rule, available: int, ts: str, report: Report, sideways: bool = False,
                unsupplied: bool = False) -> None:
        where = {"location": rule.location_code, "site": f"site {rule.site}", "company": "all sites"}[rule.scope]
        # No supplier: nothing can be drafted, and the stock alert says so (no second alert of its own).
        missing = "; it needs reordering but has no supplier: set one to have purchase orders drafted" \
            if unsupplied else ""
        wanted: dict[str, Alert] = {}
        if available <= 0:
            wanted["out_of_stock"] = Alert("out_of_stock", rule.subject,
                                           f"{rule.sku} is out of stock at {where}{missing}", site=rule.site,
                                           detail={"available": available, "no_supplier": unsupplied})
        elif available <= rule.reorder_point:
            wanted["low_stock"] = Alert(
                "low_stock", rule.subject, f"{rule.sku} is low at {where}: {available} available, reorder point "
                f"{rule.reorder_point}{missing}", site=rule.site,
                detail={"available": available, "reorder_point": rule.reorder_point, "no_supplier": unsupplied})
        if rule.max_qty is not None and available > rule.max_qty:
            wanted["over_stock"] = Alert("over_stock", rule.subject, f"{rule.sku} is over-stocked at {where}: "
                                         f"{available} available, maximum {rule.max_qty}", site=rule.site,
                                         detail={"available": available, "max_qty": rule.max_qty})
        for kind in ("out_of_stock", "low_stock", "over_stock"):
            if kind in wanted:
                self._raise(conn, wanted[kind], ts, report)
            else:
                self._resolve(conn, kind, rule.subject, ts, report)
        if available > rule.reorder_point:
            self._resolve(conn, "transfer_suggested", rule.subject, ts, report)

    def _suggest_transfer(self, conn, rule: Rule, pos, ts: str,
                          report: Report) -> tuple[bool, company.Surplus | None]:
        """Suggest moving the order quantity from a site that can spare it: (True, None), and no purchase.
        Otherwise (False, the largest surplus short of it), and a suggestion still open for this rule is
        withdrawn: the purchase order line replaces it."""
        qty = order_quantity(rule, pos)
        candidates = company.surpluses(conn, rule.variant_id, rule.site)
        source = company.source_for(candidates, qty)
        if source is None:
            self._resolve(conn, "transfer_suggested", rule.subject, ts, report)
            return False, company.largest(candidates)
        alert = Alert("transfer_suggested", rule.subject,
                      f"move {qty} × {rule.sku} from {source.site} (surplus {source.qty}) to {rule.place} instead "
                      f"of buying", site=rule.site,
                      detail={"from_site": source.site, "to": rule.place, "qty": qty, "surplus": source.qty,
                              "from_available": source.available, "from_reorder_point": source.reorder_point,
                              "available": pos.available, "position": pos.total,
                              "reorder_point": rule.reorder_point})
        if self._raise(conn, alert, ts, report):
            report.suggested.append((rule.subject, source.site, qty))
            logger.info("suggested moving %d x %s from %s to %s", qty, rule.sku, source.site, rule.place)
        return True, None

    def _draft(self, conn, rule: Rule, pos, ts: str, report: Report,
               partial: company.Surplus | None = None) -> None:
        if rule.supplier_id is None:
            return   # the stock alert says so
        ship_to = rule.location_id if rule.scope == "location" else self.receiving_location(conn)
        if ship_to is None:
            logger.warning("no location of %s to order %s to", self.site, rule.sku)
            return
        qty = order_quantity(rule, pos)
        po_id, number = orders.auto_draft(conn, site=self.site, prefix=self.purchasing.po_prefix,
                                          supplier_id=rule.supplier_id, ship_to_id=ship_to, ts=ts)
        scope = " (company)" if rule.scope == "company" else ""
        note = f"reorder{scope}: position {pos.total} <= point {rule.reorder_point}"
        if partial is not None:
            note += f"; {partial.site} could spare only {partial.qty}"
        orders.add_line(conn, po_id, rule.variant_id, qty, rule.cost_price, ts, note=note)
        report.drafted.append((number, rule.sku, qty))
        logger.info("drafted %d x %s on %s (position %d, point %d)", qty, rule.sku, number, pos.total,
                    rule.reorder_point)

    def resolve_orphans(self, conn, live: set[str], ts: str, report: Report) -> None:
        """Close the company stock alerts of rules this box no longer buys for (removed, or the buyer moved to
        another site): nothing else would ever check them again."""
        for kind in ("out_of_stock", "low_stock", "over_stock"):
            for subject in open_subjects(conn, kind):
                if subject.endswith("@company") and subject not in live:
                    resolve_alert(conn, kind, subject, ts, self.recipients)
                    report.resolved.append(f"{kind}:{subject}")

    def receiving_location(self, conn) -> int | None:
        code = self.purchasing.receive_location
        if code:
            found = conn.execute("SELECT id FROM location WHERE code = ? AND site_id = ?", (code, self.site)).fetchone()
            if found:
                return found[0]
            logger.warning("[purchasing] receive_location %s is not a location of %s", code, self.site)
        found = conn.execute("SELECT id FROM location WHERE site_id = ? AND active ORDER BY kind != 'dock', code"
                             " LIMIT 1", (self.site,)).fetchone()
        return found[0] if found else None

    def after_movements(self, conn, after: int, ts: str, report: Report, limit: int = BATCH) -> int:
        """Check the rules of the variants the movements after id `after` touched at this site, and of those
        with a company rule touched anywhere; the last id read."""
        rows = conn.execute(
            "SELECT m.id, m.variant_id, m.kind, m.d_on_hand, v.sku, l.code, m.lot, l.site_id = ? OR f.site_id = ?"
            " FROM movement m JOIN location l ON l.id = coalesce(m.to_location_id, m.location_id)"
            " JOIN location f ON f.id = m.location_id"   # a transfer to another site lowers the sender's stock
            " JOIN variant v ON v.id = m.variant_id"
            " WHERE m.id > ? ORDER BY m.id LIMIT ?", (self.site, self.site, after, limit)).fetchall()
        if not rows:
            return after
        # Another site's movement changes the company total and that site's surplus: for a variant with a
        # company rule it is checked here as well (the buyer's company rule; this site's rules, whose transfer
        # suggestion may no longer hold).
        buyers = company.buyers(conn, {variant for _id, variant, *_rest in rows})
        variants = sorted({variant for _id, variant, _k, _d, _s, _c, _l, local in rows
                           if local or variant in buyers})
        self.check(conn, self.rules(conn, variants, buyers), ts, report, buyers)
        threshold = self.app.config.alerts.count_variance
        for movement_id, _variant, kind, delta, sku, code, lot, local in rows:
            if kind == "count" and local and abs(delta) > threshold:
                subject = f"{sku}@{code}" + (f"/{lot}" if lot else "") + f"#{movement_id}"
                raise_alert(conn, Alert("count_variance", subject, f"count of {sku} at {code} changed stock by "
                                        f"{delta:+d} (threshold {threshold})", site=self.site,
                                        detail={"movement_id": movement_id, "delta": delta}), ts, self.recipients)
                report.raised.append(f"count_variance:{subject}")
        return rows[-1][0]


def _cursor(conn) -> int | None:
    found = conn.execute("SELECT value FROM agent_cursor WHERE name = ?", (CURSOR,)).fetchone()
    return found[0] if found else None


def _set_cursor(conn, value: int) -> None:
    conn.execute("INSERT INTO agent_cursor (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET"
                 " value = excluded.value", (CURSOR, value))


def sweep(app, now: datetime | None = None) -> dict:
    """Check every rule of this site (the periodic job): catches what the watcher could not see, such as a
    reorder point lowered below the stock, a new supplier, or a PO cancelled."""
    report = Report()
    trigger = Trigger(app)
    ts = clock.to_ts(now or clock.utcnow())
    with app.ledger.write() as ops:
        rules = trigger.rules(ops.conn)
        trigger.check(ops.conn, rules, ts, report)
        trigger.resolve_orphans(ops.conn, {rule.subject for rule in rules if rule.scope == "company"}, ts, report)
    return report.as_dict()


def catch_up(app, trigger: Trigger | None = None, now: datetime | None = None) -> tuple[Report, bool]:
    """Process the next batch of movements committed since the cursor; (report, more to do).
    A box that never ran the trigger starts at its newest movement: the sweep covers the stock it has."""
    trigger = trigger or Trigger(app, touch=False)
    report = Report()
    if trigger.cursor is None:
        saved = _cursor(app.db.connection())
        if saved is None:
            with app.ledger.write() as ops:
                saved = _cursor(ops.conn)
                if saved is None:
                    saved = ops.conn.execute("SELECT coalesce(max(id), 0) FROM movement").fetchone()[0]
                    _set_cursor(ops.conn, saved)
            trigger.cursor = trigger.saved_cursor = saved
            trigger.saved_at = time.monotonic()
            return report, False
        trigger.cursor = trigger.saved_cursor = saved
        trigger.saved_at = time.monotonic()
    after = trigger.cursor
    ts = clock.to_ts(now or clock.utcnow())
    last = _read_only_pass(app, trigger, after, ts)
    if last is None:   # something to write: the same batch again, under the write lock
        with app.ledger.write() as ops:
            last = trigger.after_movements(ops.conn, after, ts, report)
            _set_cursor(ops.conn, last)
        trigger.saved_cursor, trigger.saved_at = last, time.monotonic()
    trigger.cursor = last
    if last != trigger.saved_cursor and time.monotonic() - trigger.saved_at >= CURSOR_SAVE_S:
        save_cursor(app, trigger)
    return report, last - after >= BATCH


def save_cursor(app, trigger: Trigger) -> None:
    """Write the in-memory cursor (batches that needed no write move it only in memory)."""
    if trigger.cursor is None or trigger.cursor == trigger.saved_cursor:
        return
    with app.ledger.write() as ops:
        _set_cursor(ops.conn, trigger.cursor)
    trigger.saved_cursor, trigger.saved_at = trigger.cursor, time.monotonic()


_READ_ONLY_ERRORS = (sqlite3.OperationalError, peewee.OperationalError)


def _read_only_pass(app, trigger: Trigger, after: int, ts: str) -> int | None:
    """Check the batch after `after` on a read-only connection in one read transaction: the last id read when
    nothing needed writing, None when something did (SQLite refused the first write)."""
    conn = app.db.connection()
    conn.execute("PRAGMA query_only = ON")
    try:
        with app.db.atomic():   # deferred: one snapshot, no write lock
            return trigger.after_movements(conn, after, ts, Report())
    except _READ_ONLY_ERRORS as error:
        if "readonly" not in str(error):
            raise
        return None
    finally:
        conn.execute("PRAGMA query_only = OFF")


class ReorderWatcher:
    """The agent's thread that runs the trigger within ~`poll_s` of any commit, by any process."""

    def __init__(self, app, poll_s: float = POLL_S) -> None:
        self.app = app
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trigger = Trigger(app, touch=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reorder-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        conn = self.app.db.connection()   # this thread's own: data_version counts the other connections' commits
        seen = None
        while not self._stop.is_set():
            try:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    seen = version
                    more = True
                    while more and not self._stop.is_set():
                        report, more = catch_up(self.app, self.trigger)
                        if report.raised or report.drafted:
                            logger.info("reorder trigger: %s", report.as_dict())
            except Exception:   # noqa: BLE001 - the thread must outlive a bad moment; the sweep repairs
                logger.exception("reorder trigger failed; retrying")
                time.sleep(1.0)
            self._stop.wait(self.poll_s)
        try:
            save_cursor(self.app, self.trigger)
        except Exception:   # noqa: BLE001 - at worst the next start reads a few movements again
            logger.exception("could not save the reorder cursor")
        self.app.db.close()
