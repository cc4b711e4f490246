"""What the station desk does for each workflow action, inside the scan's ledger transaction (issue 4).

Every function gets the transaction's `Operations`, does at most one logical post through the ledger's own
rules (so a scan obeys exactly what `appliance move` obeys), and returns `Done`: level, message, the movements
written, the (sku, location) pairs whose stock the person should see, and what CMD-UNDO would take back.
Refusals are the ledger's exceptions; the desk turns them into an error at the dock. A receipt against a
purchase order goes through purchasing/orders.py, so the order's line, variance and status change with the
movement, and CMD-UNDO takes it off the order again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.errors import InvalidInput, TransferClosed, UnknownTransfer, UnknownUser
from appliance.ledger.requests import Move, MovementRecord, digest
from appliance.ledger.service import apply_request, arrive_within_site
from appliance.purchasing import orders, po_document
from appliance.scanning import workflow as wf
from appliance.scanning.workflow import Line

LOOKUP_SHOWN = 4   # locations named in a lookup message; the UI shows all of them from `stock`


class AlreadyReplayed(InvalidInput):
    code = "already_replayed"

    def __init__(self, scan_id: int, replayed_by: int) -> None:
        super().__init__(f"scan {scan_id} was already replayed as scan {replayed_by}", field="scan_id")


@dataclass(frozen=True)
class Done:
    level: str
    message: str
    movement_ids: tuple[int, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()   # (sku, location) whose stock to show
    last: dict[str, Any] | None = None        # None: undo stays as it was; {}: nothing to undo; else what to undo
    took_from: str | None = None              # the location stock left (for the low-stock warning)
    changes: dict[str, Any] = field(default_factory=dict)   # session fields the action settled (an order's lines)


def carry_out(ops, action: wf.Action) -> Done:
    return _HANDLERS[type(action)](ops, action)


def _post(ops, moves: list[Move], then=None) -> list[MovementRecord]:
    """The ledger's post, inside the scan's transaction: validated, idempotent on the scan's op id."""
    for move in moves:
        move.validate()
    return apply_request(ops, moves, then).movements


def _ids(records: list[MovementRecord]) -> tuple[int, ...]:
    return tuple(r.id for r in records)


def _say(ops, action: wf.Say) -> Done:
    return Done(action.level, action.message)


def _receive(ops, a: wf.Receive) -> Done:
    if a.ref_type == "purchase_order":
        return _receive_for_order(ops, a)
    line = a.line
    records = _post(ops, [Move("receive", sku=line.sku, location=a.location, qty=line.qty, lot=line.lot,
                               expiry=line.expiry, ref_type=a.ref_type, ref_id=a.ref_id)])
    text = f"Received {line.text()} into {a.location}"
    return Done("ok", text, _ids(records), ((line.sku, a.location),), last=_undo_post(records, text))


def _ship(ops, a: wf.Ship) -> Done:
    line = a.line
    moves, reserved = [], 0
    if a.ref_id:
        held = ops.conn.execute(
            "SELECT r.id, r.qty - r.qty_consumed - r.qty_released FROM reservation r"
            " JOIN variant v ON v.id = r.variant_id JOIN location l ON l.id = r.location_id"
            " WHERE r.ref = ? AND v.sku = ? AND l.code = ? AND r.status = 'held' AND (? = '' OR r.lot = ?)"
            " ORDER BY r.id", (a.ref_id, line.sku, a.location, line.lot, line.lot)).fetchall()
        for res_id, remaining in held:
            take = min(remaining, line.qty - reserved)
            if take > 0:
                moves.append(Move("ship", reservation_id=res_id, qty=take))
                reserved += take
    if reserved < line.qty:
        moves.append(Move("ship", sku=line.sku, location=a.location, qty=line.qty - reserved, lot=line.lot,
                          ref_type="order" if a.ref_id else None, ref_id=a.ref_id))
    records = _post(ops, moves)
    order = f" for {a.ref_id}" + (" (reserved)" if reserved == line.qty else
                                  f" ({reserved} reserved)" if reserved else "") if a.ref_id else ""
    text = f"Shipped {line.text()} from {a.location}{order}"
    return Done("ok", text, _ids(records), ((line.sku, a.location),), last=_undo_post(records, text),
                took_from=a.location)


def _transfer_in(ops, a: wf.TransferIn) -> Done:
    line = a.line
    records = _post(ops, [Move("transfer_in", transfer=a.transfer, sku=line.sku, qty=line.qty, lot=line.lot)])
    status = _transfer_row(ops, a.transfer)
    over = sum(r.d_on_hand for r in records if r.kind == "discrepancy")
    dest = records[0].location
    text = f"Received {line.text()} of {a.transfer} into {dest}: {_transfer_progress(status)}"
    # A transfer-in is not reversed by a reversal movement (it moved stock out of transit): undo is refused.
    return Done("warning" if over else "ok", text + (f"; {over} more than was sent" if over else ""),
                _ids(records), ((line.sku, dest),), last={})


def _open_transfer(ops, a: wf.OpenTransfer) -> Done:
    status = _transfer_row(ops, a.transfer)
    if status["status"] not in ("in_transit", "partial"):
        raise TransferClosed(f"transfer {a.transfer} is already {status['status']}", transfer=a.transfer)
    if status["to_site"] != ops.site:
        raise InvalidInput(f"transfer {a.transfer} goes to {status['to']} (site {status['to_site']}), "
                           "not to this site", field="transfer")
    return Done("ok", f"Transfer {a.transfer} from {status['origin']}: {status['sku']} into {status['to']}, "
                      f"{_transfer_progress(status)}. Scan the items, then CMD-DONE")


def _transfer_row(ops, code: str) -> dict[str, Any]:
    row = ops.conn.execute(
        "SELECT t.code, t.origin, v.sku, l.code, l.site_id, t.qty_sent, t.qty_received, t.qty_over, t.qty_short,"
        " t.status FROM transfer t JOIN variant v ON v.id = t.variant_id JOIN location l ON l.id = t.to_location_id"
        " WHERE t.code = ?", (code,)).fetchone()
    if row is None:
        raise UnknownTransfer(code)
    return dict(zip(("code", "origin", "sku", "to", "to_site", "sent", "received", "over", "short", "status"), row))


def _transfer_progress(t: dict[str, Any]) -> str:
    left = t["sent"] - t["received"] - t["short"]
    return f"{t['received']} of {t['sent']} received" + (f", {left} still on the way" if left > 0 else "")


# --- receiving against a purchase order ---------------------------------------------------------------------

def _receivable(ops, number: str) -> po_document.Order:
    """The order, if goods may be booked against it at this station; else a refusal that says what to do."""
    order = po_document.load(ops.conn, number)
    if order.site != ops.site:
        raise InvalidInput(f"{number} is an order of site {order.site}: receive it there", field="purchase_order")
    if order.status == "draft":
        raise InvalidInput(f"{number} is a draft, not sent to the supplier yet: send it first (appliance po send "
                           f"{number}), or receive without the order (CMD-RECEIVE)", field="purchase_order")
    if order.status == "received":
        raise InvalidInput(f"{number} is already received in full and closed: receive extra goods without the "
                           "order (CMD-RECEIVE) and tell purchasing", field="purchase_order")
    if order.status == "cancelled":
        raise InvalidInput(f"{number} was cancelled: set the goods aside and ask purchasing, or receive them "
                           "without the order (CMD-RECEIVE)", field="purchase_order")
    return order


def _still_expected(lines: list[po_document.Line]) -> tuple[tuple[str, int], ...]:
    return tuple((line.sku, left) for line in lines
                 if (left := line.qty_ordered - line.qty_cancelled - line.qty_received) > 0)


def _open_order(ops, a: wf.OpenOrder) -> Done:
    order = _receivable(ops, a.number)
    location = a.location or order.ship_to
    owner = ops.conn.execute("SELECT site_id FROM location WHERE code = ?", (location,)).fetchone()
    if owner is None or owner[0] != ops.site:
        raise InvalidInput(f"{a.number} is delivered to {location}, not a location of this site: scan the "
                           "location to receive into", field="location")
    expected = _still_expected(order.lines)
    where = f"into {location}" if a.location else f"into {location}, its delivery location (scan another to change)"
    return Done("ok", f"{a.number} from {order.supplier}, {len(expected)} of {len(order.lines)} line(s) open: "
                      f"receiving {where}", changes={"location": location, "expected": expected})


def _receive_for_order(ops, a: wf.Receive) -> Done:
    """One scan booked against the order's line of that SKU, with the line's received quantity, the variance and
    the order's status, in the scan's transaction (orders.receive)."""
    item, number = a.line, a.ref_id
    order = _receivable(ops, number)
    line = next((x for x in order.lines if x.sku == item.sku), None)
    if line is None:
        raise InvalidInput(f"{item.sku} is not on {number}: nothing booked. Set it aside, or receive it without the "
                           "order (CMD-RECEIVE)", field="sku")
    pairs = ((item.sku, a.location),)
    if ops.op_id is not None:
        # As the ledger's own posts: a scan's op id books once, whatever runs it again.
        request = Move("receive", sku=item.sku, location=a.location, qty=item.qty, lot=item.lot, expiry=item.expiry,
                       ref_type=orders.REF_TYPE, ref_id=f"{number}/{line.line_no}")
        earlier = ops.claim_op(ops.op_id, digest([request]))
        if earlier is not None:
            return Done("ok", f"Already booked: {item.text()} for {number}", _ids(earlier), pairs)
    records = orders.receive(ops, number, [orders.Receipt(line.line_no, item.qty, item.lot, item.expiry)],
                             location=a.location)
    due, before = line.qty_ordered - line.qty_cancelled, line.qty_received
    after = before + item.qty
    over = max(after - due, 0) - max(before - due, 0)
    head = f"Received {item.text()} into {a.location} for {number} line {line.line_no}"
    if over:
        text = f"{head}: over-delivery of {over} ({after} received, {due} ordered)"
    elif after == due:
        text = f"{head}: line complete"
    else:
        text = f"{head}: {after} of {due}"
    lines = [x if x is not line else po_document.Line(x.line_no, x.sku, x.name, x.qty_ordered, x.unit_cost, after,
                                                        x.qty_cancelled) for x in order.lines]
    expected = _still_expected(lines)
    if not expected:
        text += f". {number} received in full"
    undo = {"type": "po_receipt", "what": head, "movement_ids": [r.id for r in records],
            "order": number, "line": line.line_no, "qty": item.qty}
    return Done("warning" if over else "ok", text, _ids(records), pairs, last=undo, changes={"expected": expected})


def _undo_order_receipt(ops, a: wf.Undo) -> Done:
    """Reverse the receipt's movements and take it off the order's line, so the order waits for those units again
    (orders.undo_receipt); one savepoint, so either both happen or neither."""
    last = a.last
    records = []
    for movement_id in last["movement_ids"]:
        records.extend(ops.reverse(movement_id, f"undo at station ({last['what']})"[:500]))
    orders.undo_receipt(ops.conn, last["order"], last["line"], last["qty"], ts=ops.ts, user=ops.user,
                        movement_ids=_ids(records))
    changes = {}
    if a.order == last["order"]:
        changes["expected"] = _still_expected(po_document.load(ops.conn, a.order).lines)
    return Done("ok", f"Undone: {last['what']}; {last['order']} waits for {last['qty']} more",
                _ids(records), tuple((r.sku, r.location) for r in records), last={}, changes=changes)


def _order_progress(ops, number: str) -> Done:
    order = po_document.load(ops.conn, number)
    expected = _still_expected(order.lines)
    if order.status == "cancelled":
        return Done("ok", f"{number} is cancelled")
    if not expected:
        short = any(line.qty_cancelled for line in order.lines)
        return Done("ok", f"{number} is closed, the rest cancelled" if short else f"{number} received in full")
    return Done("ok", f"{number} stays open ({order.status}): {wf.still_expected(expected)}")


def _hold(ops, a: wf.Hold) -> Done:
    line = a.line
    v, loc = ops.own_pair(line.sku, a.location)
    if a.mode == "count":
        if not line.lot:
            lots = [r[0] for r in ops.conn.execute(
                "SELECT lot FROM stock WHERE variant_id = ? AND location_id = ? AND lot != '' AND on_hand > 0"
                " ORDER BY lot", (v.id, loc.id))]
            if lots:
                raise InvalidInput(f"{line.sku} at {a.location} is held in lots {', '.join(lots)}: scan the "
                                   "label that carries the lot", field="lot")
        counted = sum(x.qty for x in a.held + (line,) if (x.sku, x.lot) == (line.sku, line.lot))
        return Done("ok", f"Counted {line.text()} (total {counted})", pairs=((line.sku, a.location),))
    wanted = sum(x.qty for x in a.held + (line,) if x.sku == line.sku and (not line.lot or x.lot == line.lot))
    if line.lot:
        ops.allocate(v, loc, wanted, line.lot)
    else:
        ops.require_available(v, loc, wanted)
    return Done("ok", f"Took {line.text()} from {a.location} ({len(a.held) + 1} held)",
                pairs=((line.sku, a.location),))


def _relocate(ops, a: wf.Relocate) -> Done:
    records = _post(ops, [Move("transfer_out", sku=line.sku, location=a.source, to_location=a.destination,
                               qty=line.qty, lot=line.lot) for line in a.lines],
                    None if a.foreign else arrive_within_site(ops))
    codes = list(dict.fromkeys(r.ref_id for r in records if r.kind == "transfer_out"))
    count = sum(line.qty for line in a.lines)
    pairs = tuple((line.sku, a.source) for line in a.lines) + tuple((line.sku, a.destination) for line in a.lines)
    if a.foreign:
        return Done("ok", f"Sent {count} unit(s) to {a.destination} as {', '.join(codes) or 'a transfer'}; "
                          "they arrive when the other site receives them", _ids(records), pairs, last={},
                    took_from=a.source)
    text = f"Moved {_lines_text(a.lines)} from {a.source} to {a.destination}"
    # No low-stock warning: emptying the dock into the shelves is the point of a move.
    return Done("ok", text, _ids(records), pairs,
                last={"type": "move", "what": text, "source": a.source, "destination": a.destination,
                      "lines": [[line.sku, line.qty, line.lot] for line in a.lines]})


def _lines_text(lines: tuple[Line, ...]) -> str:
    return lines[0].text() if len(lines) == 1 else f"{sum(x.qty for x in lines)} units of {len(lines)} item(s)"


def _post_count(ops, a: wf.PostCount) -> Done:
    loc = ops.own(ops.location(a.location))
    moves = [Move("count", sku=line.sku, location=a.location, qty=line.qty, lot=line.lot, expiry=line.expiry,
                  ref_type="count", reason="cycle_count") for line in a.lines]
    counted = {(line.sku, line.lot) for line in a.lines}
    # What is not scanned is not there: everything else on hand at the location is counted as zero.
    for sku, lot in ops.conn.execute(
            "SELECT v.sku, s.lot FROM stock s JOIN variant v ON v.id = s.variant_id WHERE s.location_id = ?"
            " AND s.on_hand > 0 ORDER BY v.sku, s.lot", (loc.id,)):
        if (sku, lot) not in counted:
            moves.append(Move("count", sku=sku, location=a.location, qty=0, lot=lot, ref_type="count",
                              reason="cycle_count"))
    if not moves:
        return Done("ok", f"Count of {a.location}: empty, as the books say", last={})
    records = _post(ops, moves)
    diffs = [r for r in records if r.d_on_hand]
    detail = ", ".join(f"{r.sku}{' lot ' + r.lot if r.lot else ''} {r.d_on_hand:+d}" for r in diffs[:LOOKUP_SHOWN])
    more = f" and {len(diffs) - LOOKUP_SHOWN} more" if len(diffs) > LOOKUP_SHOWN else ""
    text = (f"Count of {a.location} posted: {len(diffs)} difference(s): {detail}{more}" if diffs
            else f"Count of {a.location} posted: no differences")
    return Done("warning" if diffs else "ok", text, _ids(records), tuple((r.sku, a.location) for r in records),
                last=_undo_post(records, f"count of {a.location}"))


def _undo_post(records: list[MovementRecord], what: str) -> dict[str, Any]:
    return {"type": "post", "what": what, "movement_ids": [r.id for r in records]}


def _undo(ops, a: wf.Undo) -> Done:
    last = a.last
    if last.get("type") == "po_receipt":
        return _undo_order_receipt(ops, a)
    if last.get("type") == "move":
        lines = tuple(Line(sku, qty, lot) for sku, qty, lot in last["lines"])
        back = _relocate(ops, wf.Relocate(lines, last["destination"], last["source"], foreign=False))
        return Done("ok", f"Undone: {last['what']}", back.movement_ids, back.pairs, last={})
    records = []
    for movement_id in last.get("movement_ids", ()):
        records.extend(ops.reverse(movement_id, f"undo at station ({last.get('what', '')})"[:500]))
    return Done("ok", f"Undone: {last.get('what', 'the last step')}", _ids(records),
                tuple((r.sku, r.location) for r in records), last={})


def _lookup(ops, a: wf.Lookup) -> Done:
    conn = ops.conn
    if a.what == "purchase_order":
        return _order_progress(ops, a.key)
    if a.what == "transfer":
        t = _transfer_row(ops, a.key)
        return Done("ok", f"Transfer {a.key}: {_transfer_progress(t)}", pairs=((t["sku"], t["to"]),))
    if a.what == "sku":
        rows = conn.execute(
            "SELECT l.code, l.site_id, sum(s.on_hand) AS n FROM stock s JOIN location l ON l.id = s.location_id"
            " JOIN variant v ON v.id = s.variant_id WHERE v.sku = ? GROUP BY l.id HAVING n > 0"
            " ORDER BY l.site_id != ?, n DESC, l.code", (a.key, ops.site)).fetchall()
        name = conn.execute("SELECT name FROM variant WHERE sku = ?", (a.key,)).fetchone()
        title = f"{a.key}" + (f" {name[0]}" if name and name[0] else "")
        if not rows:
            return Done("warning", f"{title}: none in stock anywhere", pairs=())
        here = sum(n for _, site, n in rows if site == ops.site)
        shown = ", ".join(f"{n} at {code}" for code, _, n in rows[:LOOKUP_SHOWN])
        more = f" and {len(rows) - LOOKUP_SHOWN} more location(s)" if len(rows) > LOOKUP_SHOWN else ""
        return Done("ok", f"{title}: {shown}{more} ({here} on this site)",
                    pairs=tuple((a.key, code) for code, _, _ in rows))
    rows = conn.execute(
        "SELECT v.sku, sum(s.on_hand) AS n FROM stock s JOIN location l ON l.id = s.location_id"
        " JOIN variant v ON v.id = s.variant_id WHERE l.code = ? GROUP BY v.id HAVING n > 0 ORDER BY n DESC, v.sku",
        (a.key,)).fetchall()
    if not rows:
        return Done("ok", f"{a.key} is empty")
    shown = ", ".join(f"{n} × {sku}" for sku, n in rows[:LOOKUP_SHOWN])
    more = f" and {len(rows) - LOOKUP_SHOWN} more item(s)" if len(rows) > LOOKUP_SHOWN else ""
    return Done("ok", f"{a.key}: {shown}{more}", pairs=tuple((sku, a.key) for sku, _ in rows))


def _login(ops, a: wf.Login) -> Done:
    row = ops.conn.execute("SELECT name, active FROM app_user WHERE login = ?", (a.login,)).fetchone()
    if row is None:
        raise UnknownUser(a.login)
    if not row[1]:
        raise InvalidInput(f"user {a.login!r} is disabled", field="user")
    return Done("ok", f"Hello {row[0] or a.login}: your scans are booked as {a.login}")


_HANDLERS = {wf.Say: _say, wf.Receive: _receive, wf.Ship: _ship, wf.TransferIn: _transfer_in,
             wf.OpenTransfer: _open_transfer, wf.OpenOrder: _open_order, wf.Hold: _hold, wf.Relocate: _relocate,
             wf.PostCount: _post_count, wf.Undo: _undo, wf.Lookup: _lookup, wf.Login: _login}
