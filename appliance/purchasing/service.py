"""What `appliance po ...` and `/api/v1/purchase-orders` do, written once: list, create (with the ship-to
resolved), add a line by SKU, send (email the PDF, then mark it sent), receive, cancel.

The callers only parse their input and show the result; every rule and every error lives here or in
`orders.py`, so the command line and the API cannot drift apart. Errors name the field as the API spells it
(`lines[1].qty`); the CLI shows the message, which reads the same either way.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.errors import InvalidInput
from appliance.ledger.requests import MAX_QTY, Move, MovementRecord
from appliance.purchasing import orders
from appliance.purchasing.po_document import load, render_pdf

# "open" is every status that still waits for goods.
LIST_STATUSES = ("draft", "sent", "partial", "received", "cancelled", "open")
SUMMARY = ("number", "status", "supplier", "ship_to", "created_at", "sent_at", "expected_on", "lines")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


@dataclass(frozen=True)
class NewLine:
    sku: str
    qty: int
    unit_cost: int | None = None    # None: the variant's cost price


@dataclass(frozen=True)
class Received:
    movements: list[MovementRecord]
    status: str
    replayed: bool = False    # the op_id was posted before: nothing new was written
    print_jobs: tuple[int, ...] = ()   # receiving labels queued with the receipt


def list_orders(conn: sqlite3.Connection, *, status: str | None = None, supplier: str | None = None,
                limit: int = -1, offset: int = 0) -> list[dict]:
    """Newest first, as dicts of SUMMARY; `limit` -1 means all."""
    where: list[str] = []
    params: list = []
    if status == "open":
        where.append(f"po.status IN ({', '.join('?' * len(orders.OPEN))})")
        params.extend(orders.OPEN)
    elif status:
        where.append("po.status = ?")
        params.append(status)
    if supplier:
        where.append("s.name = ?")
        params.append(supplier)
    rows = conn.execute(
        "SELECT po.number, po.status, s.name, l.code, po.created_at, po.sent_at, po.expected_on,"
        " (SELECT count(*) FROM purchase_order_line WHERE po_id = po.id) FROM purchase_order po"
        " JOIN supplier s ON s.id = po.supplier_id JOIN location l ON l.id = po.ship_to_id"
        f" WHERE {' AND '.join(where) or '1'} ORDER BY po.id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
    return [dict(zip(SUMMARY, row)) for row in rows]


def create(app, *, supplier: str | int, ship_to: str | None = None, note: str = "", lines: list[NewLine] = (),
           user: str | None = None) -> str:
    """A new draft (with its first lines, all or nothing); its number. `supplier` is a name or an id; without
    `ship_to` the goods go to the site's receiving location ([purchasing] receive_location)."""
    _check_lines(lines, "lines")
    site = app.config.site.id
    with app.ledger.write(user=user) as ops:
        supplier_id = _supplier(ops.conn, supplier)
        ship_to_id = _ship_to(app, ops.conn, ship_to)
        po_id, number = orders.create(ops.conn, site=site, prefix=app.config.purchasing.po_prefix,
                                      supplier_id=supplier_id, ship_to_id=ship_to_id, ts=ops.ts, user=user,
                                      note=note)
        for index, line in enumerate(lines):
            _add(ops.conn, po_id, line, ops.ts, f"lines[{index}].")
    return number


def add_line(app, number: str, line: NewLine, *, user: str | None = None) -> int:
    """Add to a draft: the line number it went to (a SKU already on the order grows its line)."""
    _check_lines([line], "")
    with app.ledger.write(user=user) as ops:
        return _add(ops.conn, orders.find(ops.conn, number)[0], line, ops.ts, "")


def send(app, number: str, *, to: str | None = None, email: bool = True, user: str | None = None) -> str | None:
    """Email the PDF to `to` (default: the supplier's address), then mark the order sent; the address emailed.
    `email=False` only marks it sent (it went by post, fax or the supplier's portal)."""
    if to is not None and address_error(to):
        raise InvalidInput(address_error(to), field="to")
    order = load(app.db.connection(), number)
    # Checked before the email goes out too: mark_sent would refuse afterwards, with the email already sent.
    if order.status not in ("draft", "sent"):
        raise orders.PurchaseOrderState(order.number, order.status, "sent")
    if not order.lines:
        raise InvalidInput(f"purchase order {order.number} has no lines", field="lines")
    address = to or order.supplier_email
    if email:
        if app.config.smtp is None:
            raise InvalidInput("no [smtp] section in the configuration: configure one, or send the order another "
                               "way and mark it sent without email", field="email")
        if not address:
            raise InvalidInput(f"supplier {order.supplier} has no email address: give one to send to", field="to")
        from appliance.notify.mailer import send_email
        # Sent first, recorded after, and never while holding the write lock: a crash in between means one
        # more email, never an order marked sent that the supplier never got.
        send_email(app.config.smtp, [address], f"Purchase order {order.number} from {order.site_name}",
                   f"Please find purchase order {order.number} attached.\n\n{order.site_name}\n",
                   [(f"{order.number}.pdf", render_pdf(order, app.config.site.currency), "application/pdf")])
    with app.ledger.write(user=user) as ops:
        orders.mark_sent(ops.conn, order.number, ts=ops.ts, user=user, sent_to=address or "",
                         today=_today(app))
    return address if email else None


def receive(app, number: str, receipts: list[orders.Receipt], *, location: str | None = None,
            user: str | None = None, device: str | None = None, op_id: str | None = None,
            labels: bool = False, printer: str | None = None) -> Received:
    """Book a delivery against the order (orders.receive). With an `op_id` a retry of the same request
    returns the movements booked the first time and books nothing; another request under it is op_id_reused.
    `labels`: queue one receiving label per unit received, in the same transaction (`printer`: where)."""
    _check_receipts(receipts)
    with app.ledger.write(user=user, device=device, op_id=op_id) as ops:
        if op_id is not None:
            earlier = ops.claim_op(op_id, _receipt_digest(number, receipts, location))
            if earlier is not None:
                return Received(earlier, orders.find(ops.conn, number)[1], replayed=True)
        po_id, status, _site = orders.find(ops.conn, number)
        if status in orders.OPEN:   # otherwise orders.receive says why it cannot be received against
            _check_receipt_lines(ops.conn, po_id, number, receipts)
            if location is not None and not ops.conn.execute("SELECT 1 FROM location WHERE code = ?",
                                                              (location,)).fetchone():
                raise InvalidInput(f"unknown location {location!r}", field="location")
        records = orders.receive(ops, number, receipts, location=location)
        jobs = ()
        if labels:
            from appliance.printing.service import queue_receipt_labels
            jobs = tuple(job.id for job in queue_receipt_labels(ops.conn, app.config, records, now=ops.ts,
                                                                 printer=printer, user=user))
        return Received(records, orders.find(ops.conn, number)[1], print_jobs=jobs)


def cancel(app, number: str, *, reason: str = "", user: str | None = None) -> str:
    """Cancel what has not arrived; the status it ends in (cancelled, or received when some goods came)."""
    with app.ledger.write(user=user) as ops:
        return orders.cancel(ops.conn, number, ts=ops.ts, user=user, reason=reason)


def _today(app) -> date:
    """The site's calendar day: the expected date is lead time after the day the supplier got the order."""
    return clock.utcnow().astimezone(ZoneInfo(app.config.site.timezone)).date()


def _supplier(conn: sqlite3.Connection, supplier: str | int) -> int:
    column = "id" if isinstance(supplier, int) else "name"
    found = conn.execute(f"SELECT id FROM supplier WHERE {column} = ?", (supplier,)).fetchone()
    if found is None:
        raise InvalidInput(f"no supplier {supplier!r} (appliance supplier list)", field="supplier")
    return found[0]


def _ship_to(app, conn: sqlite3.Connection, code: str | None) -> int:
    site = app.config.site.id
    if code:
        found = conn.execute("SELECT id FROM location WHERE code = ? AND site_id = ?", (code, site)).fetchone()
        if found is None:
            raise InvalidInput(f"{code!r} is not a location of {site}", field="ship_to")
        return found[0]
    from appliance.purchasing.reorder import Trigger
    found = Trigger(app).receiving_location(conn)
    if found is None:
        raise InvalidInput(f"site {site} has no active location to receive at: give one", field="ship_to")
    return found


def _check_lines(lines: list[NewLine], prefix: str) -> None:
    """Quantities and costs before the write lock is taken, every problem at once."""
    errors: dict[str, str] = {}
    for index, line in enumerate(lines):
        path = f"{prefix}[{index}]." if prefix else ""
        if not 1 <= line.qty <= MAX_QTY:
            errors[f"{path}qty"] = f"an order line needs a quantity of 1 to {MAX_QTY}, not {line.qty}"
        if line.unit_cost is not None and line.unit_cost < 0:
            errors[f"{path}unit_cost"] = f"a unit cost cannot be negative ({line.unit_cost})"
    _raise_if(errors)


def _add(conn: sqlite3.Connection, po_id: int, line: NewLine, ts: str, path: str) -> int:
    found = conn.execute("SELECT id, cost_price FROM variant WHERE sku = ?", (line.sku,)).fetchone()
    if found is None:
        raise InvalidInput(f"unknown SKU {line.sku!r}", field=f"{path}sku")
    cost = line.unit_cost if line.unit_cost is not None else found[1]
    return orders.add_line(conn, po_id, found[0], line.qty, cost, ts)


def _check_receipts(receipts: list[orders.Receipt]) -> None:
    if not receipts:
        raise InvalidInput("a receipt needs at least one line", field="lines")
    _raise_if({f"lines[{index}].{name}": message for index, receipt in enumerate(receipts)
               for name, message in receipt_errors(receipt).items()})


def receipt_errors(receipt: orders.Receipt) -> dict[str, str]:
    """{field: problem} of one receipt line's quantity, lot and expiry, checked as the ledger will check them,
    so that every bad line is reported at once and before the write lock is taken."""
    if not 1 <= receipt.qty <= MAX_QTY:
        return {"qty": f"line {receipt.line_no}: the received quantity must be 1 to {MAX_QTY}, not {receipt.qty}"}
    errors = {}
    for name, value in (("lot", {"lot": receipt.lot}), ("expiry", {"expiry": receipt.expiry})):
        try:
            Move("receive", sku="-", location="-", qty=receipt.qty, **value).validate()
        except InvalidInput as error:
            errors[name] = f"line {receipt.line_no}: {error.message}"
    return errors


def address_error(address: str) -> str | None:
    """Why `address` cannot be emailed to, or None. The check [smtp] sender passes: a typo is refused here
    rather than bouncing at the server."""
    return None if _EMAIL.fullmatch(address) else f"{address!r} is not an email address"


def _check_receipt_lines(conn: sqlite3.Connection, po_id: int, number: str,
                         receipts: list[orders.Receipt]) -> None:
    known = {line_no for (line_no,) in conn.execute("SELECT line_no FROM purchase_order_line WHERE po_id = ?",
                                                    (po_id,))}
    _raise_if({f"lines[{index}].line": f"purchase order {number} has no line {receipt.line_no}"
               for index, receipt in enumerate(receipts) if receipt.line_no not in known})


def _receipt_digest(number: str, receipts: list[orders.Receipt], location: str | None) -> str:
    """Tells a retry from another request under the same op_id; never equal to a movement post's digest."""
    canonical = repr(("purchase_order_receipt", number, location,
                      [(r.line_no, r.qty, r.lot, r.expiry) for r in receipts]))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _raise_if(errors: dict[str, str]) -> None:
    if errors:
        shown = "; ".join(f"{field}: {message}" for field, message in list(errors.items())[:5])
        raise InvalidInput(shown if len(errors) > 1 else next(iter(errors.values())), field=next(iter(errors)),
                           fields=errors)
