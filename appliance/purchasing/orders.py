"""Purchase orders: draft → sent → partial → received, or cancelled; numbered per site (`BER-PO-0001`).

Every function here runs inside a ledger write (`Ledger.write()`, its `ops`), so a receipt's movements, the
lines' received quantities, the order's status and its history row commit together. Receipts are `receive`
movements with `ref_type = 'purchase_order'` and `ref_id = '<number>/<line>'`: the ledger, replicated to every
site, says which order each unit came in on.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from appliance.errors import ApplianceError, InvalidInput
from appliance.ledger.operations import Operations
from appliance.ledger.requests import Move, MovementRecord

REF_TYPE = "purchase_order"
OPEN = ("draft", "sent", "partial")


class UnknownPurchaseOrder(ApplianceError):
    code = "unknown_purchase_order"
    http_status = 404

    def __init__(self, number: str) -> None:
        super().__init__(f"no purchase order {number!r}", number=number)


class PurchaseOrderState(ApplianceError):
    code = "purchase_order_state"
    http_status = 409

    def __init__(self, number: str, status: str, wanted: str) -> None:
        super().__init__(f"purchase order {number} is {status}: it cannot be {wanted}", number=number,
                         status=status)


@dataclass(frozen=True)
class Receipt:
    line_no: int
    qty: int
    lot: str = ""
    expiry: str | None = None


def next_number(conn: sqlite3.Connection, site: str, prefix: str) -> str:
    last = conn.execute("INSERT INTO doc_counter (site_id, kind, last) VALUES (?, ?, 1)"
                        " ON CONFLICT (site_id, kind) DO UPDATE SET last = last + 1 RETURNING last",
                        (site, prefix)).fetchone()[0]
    return f"{site}-{prefix}-{last:04d}"


def _event(conn: sqlite3.Connection, po_id: int, kind: str, ts: str, user: str | None, **detail) -> None:
    conn.execute("INSERT INTO purchase_order_event (po_id, ts, kind, user, detail) VALUES (?, ?, ?, ?, ?)",
                 (po_id, ts, kind, user, json.dumps(detail, sort_keys=True)))


def create(conn: sqlite3.Connection, *, site: str, prefix: str, supplier_id: int, ship_to_id: int, ts: str,
           user: str | None, auto: bool = False, note: str = "") -> tuple[int, str]:
    number = next_number(conn, site, prefix)
    po_id = conn.execute(
        "INSERT INTO purchase_order (number, site_id, supplier_id, ship_to_id, auto, note, created_at, created_by,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (number, site, supplier_id, ship_to_id, int(auto), note, ts, user, ts)).lastrowid
    _event(conn, po_id, "created", ts, user, auto=auto)
    return po_id, number


def auto_draft(conn: sqlite3.Connection, *, site: str, prefix: str, supplier_id: int, ship_to_id: int,
               ts: str) -> tuple[int, str]:
    """The trigger's open draft for this supplier and destination, made when there is none."""
    found = conn.execute("SELECT id, number FROM purchase_order WHERE site_id = ? AND supplier_id = ? AND"
                         " ship_to_id = ? AND status = 'draft' AND auto = 1", (site, supplier_id, ship_to_id)).fetchone()
    if found:
        return found[0], found[1]
    return create(conn, site=site, prefix=prefix, supplier_id=supplier_id, ship_to_id=ship_to_id, ts=ts,
                  user=None, auto=True, note="drafted by the reorder trigger")


def add_line(conn: sqlite3.Connection, po_id: int, variant_id: int, qty: int, unit_cost: int | None, ts: str,
             note: str = "") -> int:
    """Add to the draft's line for this variant (one line per variant), or a new line; the line number."""
    status, number = conn.execute("SELECT status, number FROM purchase_order WHERE id = ?", (po_id,)).fetchone()
    if status != "draft":
        raise PurchaseOrderState(number, status, "changed")
    if qty <= 0:
        raise InvalidInput("an order line needs a quantity of at least 1", field="qty")
    found = conn.execute("SELECT line_no FROM purchase_order_line WHERE po_id = ? AND variant_id = ?",
                         (po_id, variant_id)).fetchone()
    if found:
        conn.execute("UPDATE purchase_order_line SET qty_ordered = qty_ordered + ? WHERE po_id = ? AND line_no = ?",
                     (qty, po_id, found[0]))
        line_no = found[0]
    else:
        line_no = conn.execute("SELECT coalesce(max(line_no), 0) + 1 FROM purchase_order_line WHERE po_id = ?",
                               (po_id,)).fetchone()[0]
        conn.execute("INSERT INTO purchase_order_line (po_id, line_no, variant_id, qty_ordered, unit_cost, note)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (po_id, line_no, variant_id, qty, unit_cost, note))
    conn.execute("UPDATE purchase_order SET updated_at = ? WHERE id = ?", (ts, po_id))
    return line_no


def find(conn: sqlite3.Connection, number: str) -> tuple[int, str, str]:
    """(id, status, site) of the order, or UnknownPurchaseOrder."""
    found = conn.execute("SELECT id, status, site_id FROM purchase_order WHERE number = ?", (number,)).fetchone()
    if found is None:
        raise UnknownPurchaseOrder(number)
    return found


def mark_sent(conn: sqlite3.Connection, number: str, *, ts: str, user: str | None, sent_to: str,
              today: date) -> None:
    po_id, status, _site = find(conn, number)
    if status not in ("draft", "sent"):
        raise PurchaseOrderState(number, status, "sent")
    if not conn.execute("SELECT 1 FROM purchase_order_line WHERE po_id = ?", (po_id,)).fetchone():
        raise InvalidInput(f"purchase order {number} has no lines", field="lines")
    lead = conn.execute("SELECT s.lead_time_days FROM purchase_order po JOIN supplier s ON s.id = po.supplier_id"
                        " WHERE po.id = ?", (po_id,)).fetchone()[0]
    expected = (today + timedelta(days=lead)).isoformat() if lead is not None else None
    conn.execute("UPDATE purchase_order SET status = 'sent', sent_at = ?, sent_to = ?,"
                 " expected_on = coalesce(expected_on, ?), updated_at = ? WHERE id = ?",
                 (ts, sent_to, expected, ts, po_id))
    _event(conn, po_id, "sent", ts, user, to=sent_to, expected_on=expected)


def receive(ops: Operations, number: str, receipts: list[Receipt], *, location: str | None = None) -> list[MovementRecord]:
    """Book a delivery against the order: one `receive` movement per receipt at the ship-to location (or
    `location`), the lines' received quantities, the status, and a history row with every variance."""
    conn = ops.conn
    po_id, status, site = find(conn, number)
    if status not in ("sent", "partial", "draft"):
        raise PurchaseOrderState(number, status, "received against")
    if not receipts:
        raise InvalidInput("a receipt needs at least one line", field="lines")
    if location is None:
        location = conn.execute("SELECT l.code FROM purchase_order po JOIN location l ON l.id = po.ship_to_id"
                                " WHERE po.id = ?", (po_id,)).fetchone()[0]
    records: list[MovementRecord] = []
    variances = []
    for receipt in receipts:
        line = conn.execute(
            "SELECT l.id, v.sku, l.qty_ordered, l.qty_received, l.qty_cancelled, l.unit_cost"
            " FROM purchase_order_line l JOIN variant v ON v.id = l.variant_id WHERE l.po_id = ? AND l.line_no = ?",
            (po_id, receipt.line_no)).fetchone()
        if line is None:
            raise InvalidInput(f"purchase order {number} has no line {receipt.line_no}", field="line")
        line_id, sku, ordered, received, cancelled, unit_cost = line
        if receipt.qty <= 0:
            raise InvalidInput(f"line {receipt.line_no}: the received quantity must be at least 1", field="qty")
        move = Move("receive", sku=sku, location=location, qty=receipt.qty, lot=receipt.lot, expiry=receipt.expiry,
                    unit_cost=unit_cost, ref_type=REF_TYPE, ref_id=f"{number}/{receipt.line_no}")
        move.validate()
        records.extend(ops.apply(move))
        conn.execute("UPDATE purchase_order_line SET qty_received = qty_received + ? WHERE id = ?",
                     (receipt.qty, line_id))
        outstanding = ordered - cancelled
        if received + receipt.qty > outstanding:
            variances.append({"line": receipt.line_no, "sku": sku, "over": received + receipt.qty - outstanding})
    # The receipt first, then the closing it caused: the history reads in the order things happened.
    _event(conn, po_id, "received", ops.ts, ops.user, location=location,
           lines=[{"line": r.line_no, "qty": r.qty, "lot": r.lot, "expiry": r.expiry} for r in receipts],
           variances=variances)
    _settle(conn, po_id, ops.ts)
    return records


def cancel(conn: sqlite3.Connection, number: str, *, ts: str, user: str | None, reason: str = "") -> str:
    """Cancel what has not arrived. Nothing received yet: the order is cancelled. Some received: the rest of
    each line is cancelled (the under-delivery, recorded per line) and the order is closed as received."""
    po_id, status, _site = find(conn, number)
    if status not in OPEN:
        raise PurchaseOrderState(number, status, "cancelled")
    short = [{"line": line_no, "short": ordered - received - cancelled}
             for line_no, ordered, received, cancelled in conn.execute(
                 "SELECT line_no, qty_ordered, qty_received, qty_cancelled FROM purchase_order_line WHERE po_id = ?"
                 " ORDER BY line_no", (po_id,)) if ordered - received - cancelled > 0]
    conn.execute("UPDATE purchase_order_line SET qty_cancelled = max(qty_ordered - qty_received, 0)"
                 " WHERE po_id = ?", (po_id,))
    anything = conn.execute("SELECT coalesce(sum(qty_received), 0) FROM purchase_order_line WHERE po_id = ?",
                            (po_id,)).fetchone()[0]
    new = "received" if anything else "cancelled"
    conn.execute("UPDATE purchase_order SET status = ?, closed_at = ?, updated_at = ? WHERE id = ?",
                 (new, ts, ts, po_id))
    _event(conn, po_id, "cancelled", ts, user, reason=reason, under_delivered=short, status=new)
    return new


def _settle(conn: sqlite3.Connection, po_id: int, ts: str) -> None:
    """partial while any line still waits for goods, received (closed) when every line is complete."""
    waiting = conn.execute("SELECT count(*) FROM purchase_order_line WHERE po_id = ? AND"
                           " qty_received + qty_cancelled < qty_ordered", (po_id,)).fetchone()[0]
    if waiting:
        conn.execute("UPDATE purchase_order SET status = 'partial', updated_at = ? WHERE id = ?", (ts, po_id))
    else:
        conn.execute("UPDATE purchase_order SET status = 'received', closed_at = ?, updated_at = ? WHERE id = ?",
                     (ts, ts, po_id))
        _event(conn, po_id, "closed", ts, None)


def undo_receipt(conn: sqlite3.Connection, number: str, line_no: int, qty: int, *, ts: str, user: str | None,
                 movement_ids: tuple[int, ...] = ()) -> str:
    """Take `qty` back off a line's received quantity once the receipt's movements were reversed (a scanning
    station's CMD-UNDO), in the same transaction; the status follows (received reopens as partial, partial
    falls back to sent when nothing is left received). Refused once the rest of the order was cancelled: that
    closed it for good. The new status."""
    po_id, status, _site = find(conn, number)
    if status not in ("sent", "partial", "received"):
        raise PurchaseOrderState(number, status, "changed")
    if conn.execute("SELECT 1 FROM purchase_order_line WHERE po_id = ? AND qty_cancelled > 0", (po_id,)).fetchone():
        raise PurchaseOrderState(number, "closed with its rest cancelled", "changed")
    line = conn.execute("SELECT id, qty_received FROM purchase_order_line WHERE po_id = ? AND line_no = ?",
                        (po_id, line_no)).fetchone()
    if line is None:
        raise InvalidInput(f"purchase order {number} has no line {line_no}", field="line")
    if not 0 < qty <= line[1]:
        raise InvalidInput(f"line {line_no} of {number} has {line[1]} received: {qty} cannot be taken back",
                           field="qty")
    conn.execute("UPDATE purchase_order_line SET qty_received = qty_received - ? WHERE id = ?", (qty, line[0]))
    waiting, anything = conn.execute(
        "SELECT count(*) FILTER (WHERE qty_received + qty_cancelled < qty_ordered), coalesce(sum(qty_received), 0)"
        " FROM purchase_order_line WHERE po_id = ?", (po_id,)).fetchone()
    new = "received" if not waiting else "partial" if anything else "sent"
    conn.execute("UPDATE purchase_order SET status = ?, closed_at = CASE WHEN ? = 'received' THEN closed_at END,"
                 " updated_at = ? WHERE id = ?", (new, new, ts, po_id))
    _event(conn, po_id, "receipt_undone", ts, user, line=line_no, qty=qty, movements=list(movement_ids),
           status=new)
    return new
