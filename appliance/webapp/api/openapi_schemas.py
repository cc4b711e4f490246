"""The `components/schemas` of the OpenAPI document: every object the API reads or answers with.

Written by hand next to the code that produces the objects; tests/test_api_openapi.py runs schemathesis
against the live app, so a field renamed here or there fails a test instead of a client.
"""

from __future__ import annotations

from typing import Any

from appliance.ledger.requests import ALL_KINDS, POSTABLE_KINDS


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: tuple[str, ...] | None = None, *, closed: bool = False,
        description: str = "") -> dict[str, Any]:
    """An object schema; `required` defaults to every property; `closed` refuses unknown properties."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties if required is None else required)}
    if not schema["required"]:
        del schema["required"]
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def text(description: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


INT = {"type": "integer"}
BOOL = {"type": "boolean"}
MONEY = {"type": "integer", "minimum": 0, "nullable": True, "description": "minor units (cents)"}
TS = text("UTC timestamp, e.g. 2026-03-02T08:00:00.000000Z")
NEXT = maybe(text("the next page: this list's URL with the cursor; null on the last page"))


def page(item: str, *, total: bool = False, offset: bool = True, extra: dict[str, Any] | None = None):
    properties = {"items": {"type": "array", "items": ref(item)}, "limit": INT}
    if offset:
        properties["offset"] = INT
    if total:
        properties["total"] = maybe({"type": "integer", "description": "null when counting would need a full "
                                     "scan; follow `next`"})
    properties["next"] = NEXT
    return obj({**properties, **(extra or {})})


_SUMMARY = {
    "sku": text(), "product_sku": text(), "product": text("the product's name"), "name": text("the variant's name"),
    "category": text(), "unit": text(), "active": BOOL,
    "cost_price": {**MONEY, "description": "minor units; only for roles that may see costs"},
    "sale_price": MONEY, "reorder_point": maybe(INT), "reorder_qty": maybe(INT)}
_STOCK_TOTALS = obj({"on_hand": INT, "reserved": INT, "available": INT, "in_transit": INT})
_MOVEMENT = {
    "id": INT, "origin": text("site that wrote it"), "epoch": INT, "seq": INT, "op_id": maybe(text()),
    "kind": text(enum=list(ALL_KINDS)), "sku": text(), "location": text(), "to_location": maybe(text()),
    "lot": text(), "expiry": maybe(text()), "d_on_hand": INT, "d_reserved": INT, "d_in_transit": INT,
    "unit_cost": {**MONEY, "description": "minor units; only for roles that may see costs"},
    "ref_type": maybe(text()), "ref_id": maybe(text()), "reverses_id": maybe(INT), "reason": maybe(text()),
    "note": maybe(text()), "user": maybe(text()), "device": maybe(text()), "ts": TS}
_MOVE_REQUEST = {
    "kind": text("a ledger kind, or `move`: a move within this site (transfer out, received and closed at once)",
                 enum=[*POSTABLE_KINDS, "move"]),
    "sku": text(maxLength=500), "location": text(maxLength=40), "qty": {"type": "integer",
                                                                       "minimum": -10 ** 9, "maximum": 10 ** 9},
    "lot": maybe(text(maxLength=64)), "expiry": maybe(text("YYYY-MM-DD", maxLength=10)),
    "to_location": maybe(text("transfer_out and move: the destination", maxLength=40)),
    "transfer": {"description": "transfer_in: the transfer's code or id", "oneOf": [text(), INT]},
    "close": {**BOOL, "description": "transfer_in: close the transfer, booking any shortfall"},
    "reservation_id": maybe({"type": "integer", "minimum": 1}),
    "expires_at": maybe(text("reserve: when the reservation lapses")),
    "unit_cost": {**MONEY, "description": "minor units; receive defaults to the variant's cost price"},
    "ref_type": maybe(text(maxLength=500)), "ref_id": maybe(text(maxLength=500)),
    "reason": maybe(text(maxLength=500)), "note": maybe(text(maxLength=500))}
OP_ID = text("idempotency key: the same request again returns 409 duplicate_op with the earlier movements; "
             "another request under it 409 op_id_reused", minLength=1, maxLength=128)
_STOCK_LINE = {"sku": text(), "name": text(), "location": text(), "site": text(), "lot": maybe(text()),
               "expiry": maybe(text()), "on_hand": INT, "reserved": INT, "available": INT, "in_transit": INT}
_VARIANT_WRITE = {
    "name": text(maxLength=200), "unit": text(maxLength=32), "active": BOOL, "cost_price": MONEY,
    "sale_price": MONEY, "reorder_point": maybe({"type": "integer", "minimum": 0}),
    "reorder_qty": maybe({"type": "integer", "minimum": 1}),
    "barcodes": {"type": "array", "maxItems": 50, "items": text(maxLength=64),
                 "description": "the variant's own barcodes (not its packs'), replacing those it had"}}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({
        "code": text("stable: clients branch on it (invalid_input, insufficient_stock, duplicate_op, ...)"),
        "message": text("for people"),
        "details": obj({"field": text("the first bad field"),
                        "fields": {"type": "object", "additionalProperties": text(),
                                   "description": "every bad field: path -> message, e.g. movements[2].qty"},
                        "available": INT, "movements": {"type": "array", "items": ref("Movement")}},
                       required=())})}),
    "VariantSummary": obj(_SUMMARY, required=tuple(k for k in _SUMMARY if k != "cost_price")),
    "Variant": {"allOf": [ref("VariantSummary"), obj({
        "description": text(), "created_at": TS, "updated_at": TS,
        "barcodes": {"type": "array", "items": obj({"code": text(), "kind": text(enum=["gtin", "supplier",
                                                                                        "internal"]),
                                                    "pack": maybe(text("the pack it is printed on"))})},
        "packs": {"type": "array", "items": obj({"name": text(), "qty": INT})},
        "reorder_overrides": {"type": "array", "items": obj({"location": text(), "reorder_point": maybe(INT),
                                                              "reorder_qty": maybe(INT)})},
        "stock_by_site": {"type": "object", "additionalProperties": _STOCK_TOTALS}})]},
    "VariantCreate": obj({"sku": text(pattern=r"^[A-Za-z0-9._/-]+$", maxLength=500),
                          "product_sku": text("default: the variant's SKU", pattern=r"^[A-Za-z0-9._/-]+$",
                                              maxLength=500),
                          "product": text("product name; required when the product is new", maxLength=200),
                          "category": text(maxLength=200), "description": text(maxLength=2000), **_VARIANT_WRITE},
                         required=("sku",), closed=True),
    "VariantPatch": obj(_VARIANT_WRITE, required=(), closed=True),
    "VariantPage": page("VariantSummary", total=True),
    "Product": obj({"sku": text(), "name": text(), "category": text(), "description": text(),
                    "supplier": maybe(text()), "image_url": maybe(text()), "active": BOOL, "variant_count": INT}),
    "ProductDetail": {"allOf": [ref("Product"), obj({"variants": {"type": "array",
                                                                  "items": ref("VariantSummary")}})]},
    "ProductPage": page("Product", total=True),
    "Location": obj({"code": text(), "site": text(), "name": text(), "kind": text(), "parent": maybe(text()),
                     "active": BOOL, "local": {**BOOL, "description": "owned by this box's site"}}),
    "LocationDetail": {"allOf": [ref("Location"), obj({"stock": {"type": "array", "items": ref("StockLine")},
                                                       "next": NEXT})]},
    "LocationPage": page("Location", total=True),
    "StockLine": obj(_STOCK_LINE),
    "StockPage": page("StockLine", extra={"as_of": maybe(TS)}),
    "Movement": obj(_MOVEMENT, required=tuple(k for k in _MOVEMENT if k != "unit_cost")),
    "MovementDetail": {"allOf": [ref("Movement"), obj({"reversed_by": maybe(INT)})]},
    "MovementPage": page("Movement", offset=False),
    "MovementRequest": obj({"op_id": maybe(OP_ID), **_MOVE_REQUEST}, required=("kind",), closed=True),
    "MovementBatch": obj({"op_id": maybe(OP_ID), "movements": {
        "type": "array", "minItems": 1, "maxItems": 500, "items": obj(_MOVE_REQUEST, required=("kind",),
                                                                      closed=True)}},
        required=("movements",), closed=True),
    "MovementPost": {"oneOf": [ref("MovementRequest"), ref("MovementBatch")]},
    "Posted": obj({"movements": {"type": "array", "items": ref("Movement")},
                   "replayed": {**BOOL, "description": "always false: a replay is a 409 duplicate_op"}}),
    "ReverseRequest": obj({"reason": text(minLength=1, maxLength=500), "op_id": maybe(OP_ID)},
                          required=("reason",), closed=True),
    "Transfer": obj({"code": text(), "origin": text(), "sku": text(), "from_location": text(),
                     "to_location": text(), "from_site": text(), "to_site": text(), "qty_sent": INT,
                     "qty_received": INT, "qty_short": INT, "qty_over": INT,
                     "qty_open": {**INT, "description": "still on the way"},
                     "status": text(enum=["in_transit", "partial", "received", "closed"]),
                     "created_at": TS, "closed_at": maybe(TS)}),
    "TransferDetail": {"allOf": [ref("Transfer"), obj({"movements": {"type": "array", "items": ref("Movement")}})]},
    "TransferPage": page("Transfer"),
    "Reservation": obj({"id": INT, "sku": text(), "location": text(), "lot": text(), "qty": INT,
                        "qty_consumed": INT, "qty_released": INT, "qty_open": INT, "ref": maybe(text()),
                        "status": text(enum=["held", "consumed", "released", "expired"]),
                        "expires_at": maybe(TS), "created_at": TS, "closed_at": maybe(TS)}),
    "ReservationPage": page("Reservation"),
    "ReserveRequest": obj({"sku": text(maxLength=500), "location": text(maxLength=40),
                           "qty": {"type": "integer", "minimum": 1, "maximum": 10 ** 9},
                           "ref": maybe(text("the order it is for", maxLength=500)),
                           "lot": maybe(text(maxLength=64)), "expires_at": maybe(text(maxLength=40)),
                           "op_id": maybe(OP_ID)}, required=("sku", "location", "qty"), closed=True),
    "ReleaseRequest": obj({"qty": maybe({"type": "integer", "minimum": 1,
                                         "description": "default: all that is left"}),
                           "op_id": maybe(OP_ID)}, required=(), closed=True),
    "ReservationPosted": obj({"reservation": ref("Reservation"), "movements": {"type": "array",
                                                                                "items": ref("Movement")},
                              "replayed": BOOL}),
    "ScanRequest": obj({"station": text("e.g. dock-1", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$"),
                        "code": text("the code as a gun reads it; GS as the character 0x1D or as `gs`",
                                     minLength=1, maxLength=4000),
                        "gs": maybe(text("what stands for GS in `code`; default: the station's scanner setting, "
                                         "else <GS>", maxLength=16))}, required=("station", "code"), closed=True),
    "Feedback": obj({"station": text(), "level": text(enum=["ok", "warning", "error"]), "message": text(),
                     "mode": text(), "prompt": text(),
                     "stock": {"type": "array", "items": obj({"sku": text(), "location": text(), "on_hand": INT,
                                                              "available": INT})},
                     "movement_ids": {"type": "array", "items": INT}, "scan_id": maybe(INT),
                     "unresolved": BOOL}),
    "ScanLogEntry": obj({"id": INT, "at": TS, "station": text(), "device": text(), "raw": text(),
                         "raw_visible": text(), "kind": maybe(text()),
                         "outcome": text(enum=["ok", "warning", "error", "unresolved"]), "message": text(),
                         "movement_ids": {"type": "array", "items": INT}, "resolved_at": maybe(TS)}),
    "ScanLog": obj({"items": {"type": "array", "items": ref("ScanLogEntry")}, "limit": INT}),
    "Index": obj({"name": text(), "version": text(), "openapi": text(),
                  "endpoints": {"type": "array", "items": obj({"method": text(), "path": text(),
                                                               "summary": text()})}}),
}
