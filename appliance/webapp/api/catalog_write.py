"""POST /variants and PATCH /variants/<sku>: catalog rows, checked with the product import's own rules.

SKUs, names, whole numbers and barcodes (GTIN check digit, Excel-shortened numbers) are validated by the
functions of `catalog/csv_rows.py`, so a SKU the import refuses is refused here too. Each write is one
`BEGIN IMMEDIATE` transaction; the checks that depend on the catalog (SKU taken, barcode owned by another
variant, product fields that disagree) run inside it, with every problem reported at once.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for
from flask_babel import gettext as _

from appliance import clock
from appliance.catalog import csv_rows
from appliance.errors import RuleViolation, UnknownSku
from appliance.webapp.api import bp
from appliance.webapp.api.catalog import variant_detail
from appliance.webapp.api.payloads import MISSING, Fields, invalid, json_body, raise_if
from appliance.webapp.context import parts, requires

MAX_BARCODES = 50
# field -> minimum (all nullable); prices in minor units, reorder limits as the import has them (point >= 0, qty >= 1).
NUMBERS = {"cost_price": 0, "sale_price": 0, "reorder_point": 0, "reorder_qty": 1}
PATCHABLE = ("name", "unit", "active", "barcodes", *NUMBERS)
CREATABLE = ("sku", "product_sku", "product", "category", "description", *PATCHABLE)


class VariantExists(RuleViolation):
    code = "already_exists"

    def __init__(self, sku: str) -> None:
        super().__init__(_("variant '%(sku)s' exists already; change it with PATCH /api/v1/variants/%(sku)s",
                           sku=sku), sku=sku)


def _checked(fields: Fields, name: str, check, value: Any) -> Any:
    """A value through one of the import's cell checks, its ValueError as this field's message."""
    if not isinstance(value, str):
        return value
    try:
        return check(value)
    except ValueError as exc:
        return fields.fail(name, str(exc))


def _barcodes(fields: Fields) -> Any:
    if not fields.has("barcodes"):
        return MISSING
    codes = fields.data["barcodes"]
    if not isinstance(codes, list) or len(codes) > MAX_BARCODES:
        return fields.fail("barcodes", _("must be a list of at most %(count)d barcodes", count=MAX_BARCODES))
    out: dict[str, str] = {}
    for index, code in enumerate(codes):
        name = f"barcodes[{index}]"
        if not isinstance(code, str) or not code.strip() or len(code) > 64:
            fields.fail(name, _("must be a barcode of 1-64 characters"))
            continue
        code = code.strip()
        try:
            out[code] = csv_rows.barcode_kind(code)
        except ValueError as exc:
            fields.fail(name, str(exc))
    return out


def _variant_values(fields: Fields) -> dict[str, Any]:
    """The variant's own fields present in the body, checked; absent ones are left out."""
    values = {"name": fields.text("name", max_len=200), "unit": fields.text("unit", max_len=32),
              "active": fields.boolean("active")}
    for name, minimum in NUMBERS.items():
        values[name] = fields.integer(name, nullable=True, minimum=minimum, maximum=csv_rows.MAX_INT)
    if isinstance(values["unit"], str):
        values["unit"] = values["unit"].strip() or "each"   # as the import reads an empty unit cell
    return {name: value for name, value in values.items() if value is not MISSING}


def _claim_barcodes(conn, fields: Fields, sku: str, codes: dict[str, str]) -> None:
    if not codes:
        return
    owners = dict(conn.execute(
        f"SELECT b.code, v.sku FROM barcode b JOIN variant v ON v.id = b.variant_id"
        f" WHERE b.code IN ({', '.join('?' * len(codes))})", list(codes)))
    for index, code in enumerate(fields.data["barcodes"]):
        owner = owners.get(code.strip() if isinstance(code, str) else None)
        if owner is not None and owner != sku:
            fields.fail(f"barcodes[{index}]", _("%(code)s already belongs to SKU %(owner)s",
                                                code=code.strip(), owner=owner))


def _write_barcodes(conn, variant_id: int, codes: dict[str, str]) -> None:
    """The variant's own (unit) barcodes become exactly `codes`; barcodes printed on its packs stay."""
    conn.execute(f"DELETE FROM barcode WHERE variant_id = ? AND pack_id IS NULL"
                 f" AND code NOT IN ({', '.join('?' * len(codes)) or 'NULL'})", (variant_id, *codes))
    conn.executemany("INSERT OR IGNORE INTO barcode (code, variant_id, kind) VALUES (?, ?, ?)",
                     [(code, variant_id, kind) for code, kind in codes.items()])


@bp.post("/variants")
@requires("edit_products")
def create_variant():
    fields = Fields(json_body())
    fields.only(CREATABLE)
    sku = _checked(fields, "sku", csv_rows._sku, fields.text("sku", required=True))
    product_sku = _checked(fields, "product_sku", csv_rows._sku, fields.text("product_sku"))
    product = {"name": _checked(fields, "product", csv_rows._name, fields.text("product", max_len=200)),
               "category": fields.text("category", max_len=200),
               "description": fields.text("description", max_len=2000)}
    values = _variant_values(fields)
    codes = _barcodes(fields)
    raise_if(fields.errors)
    product_sku = sku if product_sku is MISSING else product_sku
    given = {name: value for name, value in product.items() if value is not MISSING}
    db = parts().db
    now = clock.now_ts()
    with db.atomic("IMMEDIATE"):
        conn = db.connection()
        if conn.execute("SELECT 1 FROM variant WHERE sku = ?", (sku,)).fetchone():
            raise VariantExists(sku)
        found = conn.execute("SELECT id, name, category, description FROM product WHERE sku = ?",
                             (product_sku,)).fetchone()
        if found is None:
            if "name" not in given:
                fields.fail("product", _("required: product %(sku)s is new and needs a name", sku=product_sku))
        else:
            # A new variant does not rename its product behind the other variants' backs.
            for name, value in given.items():
                have = dict(zip(("name", "category", "description"), found[1:]))[name]
                if value != have:
                    field = "product" if name == "name" else name
                    fields.fail(field, _("product %(sku)s has %(field)s %(value)r; leave it out or send that",
                                         sku=product_sku, field=field, value=have))
        _claim_barcodes(conn, fields, sku, codes or {})
        if fields.errors:
            raise invalid(fields.errors)
        if found is None:
            product_id = conn.execute(
                "INSERT INTO product (sku, name, category, description, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (product_sku, given["name"], given.get("category", ""),
                                               given.get("description", ""), now, now)).lastrowid
        else:
            product_id = found[0]
        columns = ["sku", "product_id", "created_at", "updated_at", *values]
        variant_id = conn.execute(
            f"INSERT INTO variant ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            (sku, product_id, now, now, *values.values())).lastrowid
        if codes:
            _write_barcodes(conn, variant_id, codes)
    response = jsonify(variant_detail(sku))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_variant", sku=sku)
    return response


@bp.patch("/variants/<path:sku>")
@requires("edit_products")
def update_variant(sku: str):
    fields = Fields(json_body())
    fields.only(PATCHABLE)
    values = _variant_values(fields)
    codes = _barcodes(fields)
    raise_if(fields.errors)
    db = parts().db
    with db.atomic("IMMEDIATE"):
        conn = db.connection()
        found = conn.execute("SELECT id FROM variant WHERE sku = ?", (sku,)).fetchone()
        if found is None:
            raise UnknownSku(sku)
        variant_id = found[0]
        if codes is not MISSING:
            _claim_barcodes(conn, fields, sku, codes)
            raise_if(fields.errors)
            _write_barcodes(conn, variant_id, codes)
        if values or codes is not MISSING:
            values["updated_at"] = clock.now_ts()
            conn.execute(f"UPDATE variant SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?",
                         (*values.values(), variant_id))
    return jsonify(variant_detail(sku))
