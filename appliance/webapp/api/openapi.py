"""GET /api/v1/openapi.json (the OpenAPI 3.0 document, public) and GET /api/v1/ (the endpoints, listed).

Each operation names the permission it needs as `x-permission` (the roles are in access/roles.py); the
movement post needs the permission of each kind it carries (`x-permission: per kind`).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from appliance import __version__
from appliance.webapp.api import bp
from appliance.webapp.api.openapi_schemas import SCHEMAS, ref
from appliance.webapp.api.payloads import MAX_INT

_STATUS_TEXT = {"400": "invalid input: `details.fields` names every bad field",
                "401": "no session, or no valid API token",
                "403": "the role may not do this",
                "404": "no such thing (the code says what: unknown_sku, unknown_location, ...)",
                "409": "refused by the ledger's rules: insufficient_stock (`details.available`), duplicate_op "
                       "(`details.movements`), op_id_reused, not_reversible, ...",
                "503": "the box is recovering its own movements from its peers; try again shortly"}
_ERROR = {"application/json": {"schema": ref("Error")}}
SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"   # generated examples; longer SKUs and ones with '/' work too
CODE_PATTERN = r"^[A-Z0-9][A-Z0-9.-]{0,39}$"


def _q(name: str, schema: dict[str, Any], description: str = "", where: str = "query") -> dict[str, Any]:
    param = {"name": name, "in": where, "required": where == "path", "schema": schema}
    if description:
        param["description"] = description
    return param


def _text(name: str, description: str = "", max_len: int = 200) -> dict[str, Any]:
    return _q(name, {"type": "string", "maxLength": max_len}, description)


def _flag(name: str, description: str = "") -> dict[str, Any]:
    return _q(name, {"type": "boolean", "default": False}, description)


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return _q("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default})


OFFSET = _q("offset", {"type": "integer", "minimum": 0, "maximum": 10 ** 9, "default": 0})
_TIME = r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
AS_TS = {"type": "string", "maxLength": 40, "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}" + _TIME + "$",
         "description": "YYYY-MM-DD (the end of that day, UTC) or an ISO timestamp; without a zone, UTC"}


def _op(summary: str, permission: str | None, ok: tuple[str, str, str], *, params=(), body: str | None = None,
        errors=("400",), public: bool = False) -> dict[str, Any]:
    status, schema, description = ok
    operation: dict[str, Any] = {"summary": summary, "parameters": list(params), "responses": {
        status: {"description": description, "content": {"application/json": {"schema": ref(schema)}}}}}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    if public:
        operation["security"] = []
    else:
        operation["x-permission"] = permission
        errors = (*errors, "401", "403")
    for code in sorted(set(errors)):
        operation["responses"][code] = {"description": _STATUS_TEXT[code], "content": _ERROR}
    return operation


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _q(name, schema, where="path")


SKU = _path_param("sku", {"type": "string", "pattern": SKU_PATTERN})
CODE = _path_param("code", {"type": "string", "pattern": CODE_PATTERN})
MOVEMENT_ID = _path_param("movement_id", {"type": "integer", "minimum": 1, "maximum": MAX_INT})
RESERVATION_ID = _path_param("reservation_id", {"type": "integer", "minimum": 1, "maximum": MAX_INT})
CATALOG_QUERY = (_text("q", "SKU, barcode or any part of a name"), _limit(50, 200), OFFSET,
                 _flag("include_inactive"))
WRITE_ERRORS = ("400", "404", "409", "503")

PATHS: dict[str, dict[str, Any]] = {
    "/": {"get": _op("The endpoints of this API", None, ("200", "Index", "the endpoints"), errors=(),
                     public=True)},
    "/openapi.json": {"get": {"summary": "This document", "security": [], "parameters": [], "responses": {
        "200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/variants": {
        "get": _op("List or search variants", "view", ("200", "VariantPage", "a page of variants"),
                   params=CATALOG_QUERY),
        "post": _op("Create a variant (and its product when the product SKU is new)", "edit_products",
                    ("201", "Variant", "created"), body="VariantCreate", errors=("400", "409"))},
    "/variants/{sku}": {
        "get": _op("One variant: product, barcodes, packs, reorder overrides, stock per site", "view",
                   ("200", "Variant", "the variant"), params=(SKU,), errors=("400", "404")),
        "patch": _op("Change a variant's name, prices, unit, reorder levels, active flag or barcodes",
                     "edit_products", ("200", "Variant", "the variant as it is now"), params=(SKU,),
                     body="VariantPatch", errors=("400", "404"))},
    "/products": {"get": _op("List or search products", "view", ("200", "ProductPage", "a page of products"),
                             params=CATALOG_QUERY)},
    "/products/{sku}": {"get": _op("One product with its variants", "view", ("200", "ProductDetail", "the product"),
                                   params=(SKU,), errors=("400", "404"))},
    "/locations": {"get": _op("List locations", "view", ("200", "LocationPage", "a page of locations"), params=(
        _text("site", max_len=8), _q("kind", {"type": "string", "enum": ["warehouse", "zone", "bin", "dock",
                                                                          "in-transit"]}),
        _flag("include_inactive"), _limit(200, 1000), OFFSET))},
    "/locations/{code}": {"get": _op("One location with its stock lines", "view",
                                     ("200", "LocationDetail", "the location"),
                                     params=(CODE, _flag("by_lot"), _limit(200, 1000), OFFSET), errors=("400", "404"))},
    "/stock": {"get": _op("Stock per variant and location, now or as of a moment", "view",
                          ("200", "StockPage", "a page of stock lines"), params=(
        _text("sku"), _text("location"), _text("site"), _text("q", "SKU prefix or part of the name"),
        _q("as_of", AS_TS, "replay the ledger up to this moment"), _flag("by_lot"), _flag("include_empty"),
        _q("sort", {"type": "string", "enum": ["sku", "location", "on_hand", "available"]}),
        _limit(100, 1000), OFFSET))},
    "/movements": {
        "get": _op("Movements, newest first (by time, then id)", "view", ("200", "MovementPage", "a page of movements"),
                   params=(_text("sku"), _text("location", "as source or destination"),
                           _q("kind", {"type": "string", "enum": list(SCHEMAS["Movement"]["properties"]["kind"]
                                                                     ["enum"])}),
                           _text("user"), _text("ref", "TYPE:ID or the id alone"), _q("since", AS_TS),
                           _q("until", AS_TS), _text("origin", "the site that wrote it"), _limit(50, 500),
                           _q("after_id", {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                              "the cursor from `next`: the movements listed after this one"))),
        "post": _op("Post one movement or a batch, all or nothing", "per kind", ("201", "Posted", "written"),
                    body="MovementPost", errors=WRITE_ERRORS)},
    "/movements/{movement_id}": {"get": _op("One movement", "view", ("200", "MovementDetail", "the movement"),
                                            params=(MOVEMENT_ID,), errors=("400", "404"))},
    "/movements/{movement_id}/reverse": {"post": _op(
        "Post the opposite of a movement", "reverse", ("201", "Posted", "the reversal"), params=(MOVEMENT_ID,),
        body="ReverseRequest", errors=WRITE_ERRORS)},
    "/transfers": {"get": _op("Transfers, newest first", "view", ("200", "TransferPage", "a page of transfers"),
                              params=(_q("status", {"type": "string", "enum": ["open", "in_transit", "partial",
                                                                               "received", "closed"]}),
                                      _text("sku"), _text("location"), _limit(50, 200), OFFSET))},
    "/transfers/{code}": {"get": _op("One transfer with its movements", "view",
                                     ("200", "TransferDetail", "the transfer"), params=(CODE,),
                                     errors=("400", "404"))},
    "/reservations": {
        "get": _op("Reservations, newest first", "view", ("200", "ReservationPage", "a page of reservations"),
                   params=(_q("status", {"type": "string", "enum": ["held", "consumed", "released", "expired"]}),
                           _text("ref"), _text("sku"), _text("location"), _limit(50, 200), OFFSET)),
        "post": _op("Reserve stock for an order", "reserve", ("201", "ReservationPosted", "reserved"),
                    body="ReserveRequest", errors=WRITE_ERRORS)},
    "/reservations/{reservation_id}": {"get": _op("One reservation", "view", ("200", "Reservation", "it"),
                                                  params=(RESERVATION_ID,), errors=("400", "404"))},
    "/reservations/{reservation_id}/release": {"post": _op(
        "Release a reservation, or part of it", "reserve", ("201", "ReservationPosted", "released"),
        params=(RESERVATION_ID,), body="ReleaseRequest", errors=WRITE_ERRORS)},
    "/scans": {
        "get": _op("The scan log, newest first", "view", ("200", "ScanLog", "recent scans"),
                   params=(_text("station", max_len=32), _flag("unresolved", "only codes waiting to be linked"),
                           _limit(50, 500))),
        "post": _op("A scan at a station, as if a gun had read it", "scan",
                    ("200", "Feedback", "what the station answers (level error when the ledger refused)"),
                    body="ScanRequest")},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Warehouse appliance API", "version": __version__,
                 "description": "Stock, movements and the catalog of this box. Send `Authorization: Bearer "
                                "wh_…` (an API token; no CSRF header needed) or use the UI's session cookie "
                                "with the X-CSRF-Token header on writes. Money is in minor units; cost fields "
                                "are left out for roles without the see_costs permission."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "wh_ token"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "appliance_session"}},
            "schemas": SCHEMAS},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/")
def index():
    endpoints = [{"method": method.upper(), "path": "/api/v1" + path, "summary": operation["summary"]}
                 for path, operations in PATHS.items() for method, operation in operations.items()]
    return jsonify({"name": "Warehouse appliance API", "version": __version__,
                    "openapi": url_for("api.openapi_json"), "endpoints": endpoints})
