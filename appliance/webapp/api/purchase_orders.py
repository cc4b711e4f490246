"""Purchase orders: the `appliance po` commands over HTTP, through the same functions (purchasing/service.py).

Who may do what, as a warehouse runs it:
- every role that may view stock reads orders (what is coming, when, what is still outstanding), but unit
  costs only reach roles with `see_costs` (manager, purchasing), left out of the object as everywhere else;
- drafting, adding lines, sending and cancelling need `purchase_orders` (manager, purchasing), and so does the
  PDF, which prints the prices;
- receiving needs `receive` (manager, staff, purchasing), the permission of any `receive` movement: the people
  at the dock book the delivery. It is idempotent on `op_id` like every movement post.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify, url_for

from appliance.ledger.requests import MAX_QTY, PostResult
from appliance.purchasing import service
from appliance.purchasing.orders import Receipt
from appliance.purchasing.po_document import Order, load, render_pdf
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import MAX_INT, MISSING, Fields, Query, json_body, offset_page, paging, raise_if
from appliance.webapp.api.shapes import costs_visible, posted
from appliance.webapp.context import can, parts, principal, requires

MAX_LINES = 500


def order_json(order: Order, costs: bool) -> dict[str, Any]:
    out = {key: value for key, value in order.__dict__.items() if key not in ("lines", "events")}
    out["lines"] = []
    for line in order.lines:
        item = {"line": line.line_no, "sku": line.sku, "name": line.name, "qty_ordered": line.qty_ordered,
                "qty_received": line.qty_received, "qty_cancelled": line.qty_cancelled,
                "qty_outstanding": max(line.qty_ordered - line.qty_received - line.qty_cancelled, 0)}
        if costs:
            item["unit_cost"] = line.unit_cost
        out["lines"].append(item)
    out["events"] = [{"ts": ts, "kind": kind, "user": user, "detail": json.loads(detail or "{}")}
                     for ts, kind, user, detail in order.events]
    return out


def _order(number: str) -> dict[str, Any]:
    return order_json(load(parts().db.connection(), number), costs_visible())


def _user() -> str:
    return principal().login


@bp.get("/purchase-orders")
@requires("view")
def list_purchase_orders():
    query = Query("status", "supplier", "limit", "offset")
    status = query.choice("status", service.LIST_STATUSES)
    supplier = query.text("supplier")
    limit, offset = paging(query)
    query.done()
    items = service.list_orders(parts().db.connection(), status=status, supplier=supplier, limit=limit + 1,
                                offset=offset)
    return jsonify(offset_page(items, limit, offset, "api.list_purchase_orders", status=status, supplier=supplier))


@bp.get("/purchase-orders/<number>")
@requires("view")
def get_purchase_order(number: str):
    Query().done()
    return jsonify(_order(number))


@bp.get("/purchase-orders/<number>/pdf")
@requires("purchase_orders")
def purchase_order_pdf(number: str):
    Query().done()
    order = load(parts().db.connection(), number)
    return Response(render_pdf(order, parts().config.site.currency), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{order.number}.pdf"'})


def _new_line(fields: Fields) -> service.NewLine | None:
    fields.only(("sku", "qty", "unit_cost"))
    sku = fields.text("sku", required=True)
    qty = fields.integer("qty", required=True, minimum=1, maximum=MAX_QTY)
    unit_cost = fields.integer("unit_cost", nullable=True, default=None, minimum=0, maximum=MAX_INT)
    if any(value is MISSING for value in (sku, qty, unit_cost)):
        return None
    return service.NewLine(sku, qty, unit_cost)


def _items(fields: Fields, name: str, required: bool) -> list[Fields]:
    """The objects of a list field, each read under its path (`lines[2]`); [] when absent or not a list.
    An error stops the request before it is used, so the list may leave out the items that are not objects."""
    if name not in fields.data:
        if required:
            fields.text(name, required=True)   # records the usual "required"
        return []
    value = fields.data[name]
    if not isinstance(value, list) or not (1 if required else 0) <= len(value) <= MAX_LINES:
        fields.fail(name, f"must be a list of {1 if required else 0}-{MAX_LINES} objects")
        return []
    items = [(item, Fields(item, fields.path(f"{name}[{index}]"), fields.errors)) for index, item in enumerate(value)]
    return [read for item, read in items if isinstance(item, dict)]   # the others are reported as "not an object"


def _supplier(fields: Fields) -> Any:
    value = fields.data.get("supplier")
    if isinstance(value, int) and not isinstance(value, bool):
        return fields.integer("supplier", minimum=1)
    return fields.text("supplier", required=True, max_len=200)


@bp.post("/purchase-orders")
@requires("purchase_orders")
def create_purchase_order():
    fields = Fields(json_body())
    fields.only(("supplier", "ship_to", "note", "lines"))
    supplier = _supplier(fields)
    ship_to = fields.text("ship_to", nullable=True, default=None, max_len=40)
    note = fields.text("note", nullable=True, default=None, max_len=2000) or ""
    lines = [_new_line(item) for item in _items(fields, "lines", required=False)]
    raise_if(fields.errors)
    number = service.create(parts(), supplier=supplier, ship_to=ship_to, note=note, lines=lines, user=_user())
    response = jsonify(_order(number))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_purchase_order", number=number)
    return response


@bp.post("/purchase-orders/<number>/lines")
@requires("purchase_orders")
def add_purchase_order_line(number: str):
    fields = Fields(json_body())
    line = _new_line(fields)
    raise_if(fields.errors)
    line_no = service.add_line(parts(), number, line, user=_user())
    return jsonify({"line": line_no, "order": _order(number)})


@bp.post("/purchase-orders/<number>/send")
@requires("purchase_orders")
def send_purchase_order(number: str):
    fields = Fields(json_body(empty_ok=True))
    fields.only(("to", "email"))
    to = fields.text("to", nullable=True, default=None, max_len=254)
    if to and service.address_error(to):
        fields.fail("to", service.address_error(to))
    email = fields.boolean("email", default=True)
    raise_if(fields.errors)
    service.send(parts(), number, to=to, email=email, user=_user())
    return jsonify(_order(number))


@bp.post("/purchase-orders/<number>/receive")
@requires("receive")
def receive_purchase_order(number: str):
    fields = Fields(json_body())
    fields.only(("lines", "location", "op_id", "labels", "printer"))
    location = fields.text("location", nullable=True, default=None, max_len=40)
    op_id = fields.op_id()
    labels = fields.boolean("labels", default=False)
    printer = fields.text("printer", nullable=True, default=None, max_len=40)
    if labels is True and not can("print"):
        fields.fail("labels", _("your role may not print labels"))
    receipts = []
    for item in _items(fields, "lines", required=True):
        item.only(("line", "qty", "lot", "expiry"))
        line = item.integer("line", required=True, minimum=1, maximum=MAX_INT)
        qty = item.integer("qty", required=True, minimum=1, maximum=MAX_QTY)
        lot = item.text("lot", nullable=True, default=None, max_len=64) or ""
        expiry = item.text("expiry", nullable=True, default=None, max_len=10)
        if not any(value is MISSING for value in (line, qty, lot, expiry)):
            receipts.append(Receipt(line, qty, lot, expiry))
            for name, message in service.receipt_errors(receipts[-1]).items():
                item.fail(name, message)
    raise_if(fields.errors)
    received = service.receive(parts(), number, receipts, location=location, user=_user(), device="api",
                               op_id=op_id, labels=labels is True, printer=printer)
    return posted(PostResult(received.movements, received.replayed), op_id, order=_order(number),
                  print_jobs=list(received.print_jobs))


@bp.post("/purchase-orders/<number>/cancel")
@requires("purchase_orders")
def cancel_purchase_order(number: str):
    fields = Fields(json_body(empty_ok=True))
    fields.only(("reason",))
    reason = fields.text("reason", nullable=True, default=None, max_len=500) or ""
    raise_if(fields.errors)
    service.cancel(parts(), number, reason=reason, user=_user())
    return jsonify(_order(number))
