"""The purchase order endpoints' part of the OpenAPI document, added to `PATHS` and `SCHEMAS` when imported."""

from __future__ import annotations

from typing import Any

from appliance.ledger.requests import MAX_QTY
from appliance.purchasing.service import LIST_STATUSES
from appliance.webapp.api.openapi import CODE_PATTERN, OFFSET, PATHS, WRITE_ERRORS, _limit, _op, _path_param, _q, _text
from appliance.webapp.api.openapi_schemas import BOOL, INT, MONEY, OP_ID, SCHEMAS, TS, maybe, obj, page, ref, text
from appliance.webapp.api.payloads import MAX_INT
from appliance.webapp.api.purchase_orders import MAX_LINES

NUMBER = _path_param("number", {"type": "string", "pattern": CODE_PATTERN,
                                "description": "the order's number, e.g. BER-PO-0001"})
STATUS = text(enum=["draft", "sent", "partial", "received", "cancelled"])
DAY = maybe(text("YYYY-MM-DD"))
_QTY = {"type": "integer", "minimum": 1, "maximum": MAX_QTY}
_LINE_REQUEST = {"sku": text(minLength=1, maxLength=500), "qty": _QTY,
                 "unit_cost": {**MONEY, "maximum": MAX_INT,
                               "description": "minor units; default: the variant's cost price"}}
_LINE = {"line": INT, "sku": text(), "name": text("product and variant name"), "qty_ordered": INT,
         "qty_received": INT, "qty_cancelled": INT,
         "qty_outstanding": {**INT, "description": "still to come: ordered − received − cancelled, never below 0"},
         "unit_cost": {**MONEY, "description": "minor units; only for roles that may see costs"}}

SCHEMAS.update({
    "PurchaseOrderSummary": obj({
        "number": text(), "status": STATUS, "supplier": text("the supplier's name"),
        "ship_to": text("location code the goods go to"), "created_at": TS, "sent_at": maybe(TS),
        "expected_on": DAY, "lines": {**INT, "description": "how many lines"}}),
    "PurchaseOrderPage": page("PurchaseOrderSummary"),
    "PurchaseOrderLine": obj(_LINE, required=tuple(k for k in _LINE if k != "unit_cost")),
    "PurchaseOrderEvent": obj({
        "ts": TS, "kind": text("created, sent, received, cancelled, closed"), "user": maybe(text()),
        "detail": {"type": "object", "description": "received: the lines with lot and expiry, and `variances` "
                   "(over-deliveries per line); cancelled: `under_delivered` per line and the reason; sent: to "
                   "whom and the expected date"}}),
    "PurchaseOrder": obj({
        "number": text(), "status": STATUS, "site": text(), "site_name": text(), "supplier": text(),
        "supplier_email": maybe(text()), "supplier_address": text(), "ship_to": text(), "created_at": TS,
        "sent_at": maybe(TS), "expected_on": DAY, "note": text(),
        "lines": {"type": "array", "items": ref("PurchaseOrderLine")},
        "events": {"type": "array", "items": ref("PurchaseOrderEvent"), "description": "oldest first"}}),
    "PurchaseOrderLineRequest": obj(_LINE_REQUEST, required=("sku", "qty"), closed=True),
    "PurchaseOrderCreate": obj({
        "supplier": {"description": "the supplier's name or id", "oneOf": [text(minLength=1, maxLength=200),
                                                                          {"type": "integer", "minimum": 1}]},
        "ship_to": maybe(text("a location of this site; default: [purchasing] receive_location, else the site's "
                              "first dock", maxLength=40)),
        "note": maybe(text(maxLength=2000)),
        "lines": {"type": "array", "maxItems": MAX_LINES, "items": ref("PurchaseOrderLineRequest")}},
        required=("supplier",), closed=True),
    "PurchaseOrderLineAdded": obj({"line": {**INT, "description": "the line it went to: a SKU already on the "
                                            "order adds to its line"}, "order": ref("PurchaseOrder")}),
    "PurchaseOrderSend": obj({
        "to": maybe(text("address to email the PDF to; default: the supplier's", maxLength=254)),
        "email": {**BOOL, "default": True, "description": "false: only mark it sent (it went another way)"}},
        required=(), closed=True),
    "PurchaseOrderReceive": obj({
        "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": obj({
            "line": {"type": "integer", "minimum": 1, "maximum": MAX_INT}, "qty": _QTY,
            "lot": maybe(text(maxLength=64)), "expiry": maybe(text("YYYY-MM-DD", maxLength=10))},
            required=("line", "qty"), closed=True)},
        "location": maybe(text("where it arrived; default: the order's ship-to", maxLength=40)),
        "op_id": maybe(OP_ID),
        "labels": {**BOOL, "default": False, "description": "queue one receiving label per unit received, in the "
                   "same transaction (needs the print permission)"},
        "printer": maybe(text("the printer for the labels; default: the one for po_receiving labels",
                              maxLength=40))}, required=("lines",), closed=True),
    "PurchaseOrderReceived": obj({"order": ref("PurchaseOrder"),
                                  "print_jobs": {"type": "array", "items": INT,
                                                 "description": "receiving labels queued (with labels: true)"},
                                  "movements": {"type": "array", "items": ref("Movement")},
                                  "replayed": {**BOOL, "description": "always false: a replay is a 409 duplicate_op"}}),
    "PurchaseOrderCancel": obj({"reason": maybe(text(maxLength=500))}, required=(), closed=True),
})


def _pdf(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["200"]["content"] = {"application/pdf": {"schema": {"type": "string",
                                                                               "format": "binary"}}}
    return operation


def _mail_errors(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["502"] = {"description": "the SMTP server refused or could not be reached "
                                                    "(mail_failed); the order is not marked sent",
                                     "content": {"application/json": {"schema": ref("Error")}}}
    return operation


PATHS.update({
    "/purchase-orders": {
        "get": _op("Purchase orders, newest first", "view", ("200", "PurchaseOrderPage", "a page of orders"), params=(
            _q("status", {"type": "string", "enum": list(LIST_STATUSES)}, "open: draft, sent or partial"),
            _text("supplier", "the supplier's name"), _limit(50, 200), OFFSET)),
        "post": _op("Start a draft purchase order, with its first lines (all or nothing)", "purchase_orders",
                    ("201", "PurchaseOrder", "the draft"), body="PurchaseOrderCreate", errors=("400",))},
    "/purchase-orders/{number}": {"get": _op(
        "One purchase order: lines with ordered, received, cancelled and outstanding quantities, and its history",
        "view", ("200", "PurchaseOrder", "the order"), params=(NUMBER,), errors=("400", "404"))},
    "/purchase-orders/{number}/pdf": {"get": _pdf(_op(
        "The order as the PDF the supplier gets", "purchase_orders", ("200", "PurchaseOrder", "the PDF"),
        params=(NUMBER,), errors=("400", "404")))},
    "/purchase-orders/{number}/lines": {"post": _op(
        "Add a line to a draft", "purchase_orders", ("200", "PurchaseOrderLineAdded", "the line and the order"),
        params=(NUMBER,), body="PurchaseOrderLineRequest", errors=("400", "404", "409"))},
    "/purchase-orders/{number}/send": {"post": _mail_errors(_op(
        "Email the PDF to the supplier, then mark the order sent (or only mark it, with email false)",
        "purchase_orders", ("200", "PurchaseOrder", "the order, sent"), params=(NUMBER,), body="PurchaseOrderSend",
        errors=("400", "404", "409")))},
    "/purchase-orders/{number}/receive": {"post": _op(
        "Book a delivery against the order: receive movements referencing each line (BER-PO-0001/1)", "receive",
        ("201", "PurchaseOrderReceived", "booked"), params=(NUMBER,), body="PurchaseOrderReceive",
        errors=WRITE_ERRORS)},
    "/purchase-orders/{number}/cancel": {"post": _op(
        "Cancel what has not arrived: the order is cancelled, or closed as received when some goods came",
        "purchase_orders", ("200", "PurchaseOrder", "the order"), params=(NUMBER,), body="PurchaseOrderCancel",
        errors=("400", "404", "409"))},
})
