"""The product form: what a manager typed, checked field by field, and saved in one transaction; product photos.

The rules are those of the CSV import (csv_rows: SKU shape, whole numbers, GTIN check digits; money.parse_amount)
so a product typed here and one imported from a spreadsheet meet the same standard. Checks that need the catalog
(a SKU taken, a barcode of another variant, a location of another site) run inside the write transaction, so no
other writer slips in between check and write. Every problem is kept under the name of its form field, the
form is shown again with what was typed, and nothing is written.

Rows of the repeating parts are named `barcodes-<i>-code`, `packs-<i>-qty`, `reorder-<i>-location`, ...: the
page works without JavaScript (it always offers a blank row), and products.js only adds more blank rows.
"""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError, features

from appliance import clock
from appliance.catalog import csv_rows, money

TEXT_FIELDS = ("product_sku", "product_name", "category", "description", "sku", "variant_name", "unit",
               "cost_price", "sale_price", "reorder_point", "reorder_qty")
ROW_FIELDS = {"barcodes": ("code", "pack", "remove"), "packs": ("id", "name", "qty", "remove"),
              "reorder": ("location", "point", "qty")}
MAX_ROWS = 100          # of each repeating part: a form is typed by a person
MAX_SKU = 64
MAX_TEXT = 200
MAX_DESCRIPTION = 4000
MAX_BARCODE = 64
_ROW = re.compile(r"(barcodes|packs|reorder)-(\d{1,3})-([a-z]+)")
_BARCODE = re.compile(r"[\x21-\x7e]+")     # printable ASCII, no spaces: what a scanner types

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000   # a 5 MB PNG can still unpack to gigabytes; refuse before decoding
IMAGE_SIDE = 800
IMAGE_NAME = re.compile(r"[0-9a-f]{24}\.(?:webp|jpg)")


class FormErrors(Exception):
    """Problems by form field name; raised inside the transaction so that nothing is written."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass
class ProductForm:
    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(TEXT_FIELDS, ""))
    active: bool = True
    barcodes: list[dict[str, str]] = field(default_factory=list)
    packs: list[dict[str, str]] = field(default_factory=list)
    reorder: list[dict[str, str]] = field(default_factory=list)
    image_url: str | None = None      # the product's current image
    image_pending: str = ""           # a checked upload waiting for the save (survives a form with errors)
    image_remove: bool = False
    variant_id: int | None = None     # None: a new variant
    errors: dict[str, str] = field(default_factory=dict)

    def rows(self, part: str, blank: int = 1) -> list[dict[str, str]]:
        """The rows of a part to show, with `blank` empty rows to type into."""
        return getattr(self, part) + [dict.fromkeys(ROW_FIELDS[part], "") for _row in range(blank)]


@dataclass
class Cleaned:
    product: dict[str, Any]
    variant: dict[str, Any]
    barcodes: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # (field, code, kind, pack)
    packs: list[tuple[str, int | None, str, int]] = field(default_factory=list)       # (prefix, id, name, qty)
    removed_packs: list[tuple[str, int]] = field(default_factory=list)
    reorder: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)


def load(conn: sqlite3.Connection, sku: str, digits: int) -> ProductForm | None:
    """The form filled in from a saved variant (amounts with `digits` decimals); None when there is no such SKU."""
    row = conn.execute(
        "SELECT v.id, p.sku, p.name, p.category, p.description, v.sku, v.name, v.unit, v.cost_price, v.sale_price,"
        " v.reorder_point, v.reorder_qty, v.active, p.image_url"
        " FROM variant v JOIN product p ON p.id = v.product_id WHERE v.sku = ?", (sku,)).fetchone()
    if row is None:
        return None
    variant_id, *texts, active, image_url = row
    form = ProductForm(variant_id=variant_id, active=bool(active), image_url=image_url)
    for name, value in zip(TEXT_FIELDS, texts):
        form.values[name] = "" if value is None else str(value)
    form.values["cost_price"] = _amount_text(row[8], digits)
    form.values["sale_price"] = _amount_text(row[9], digits)
    form.packs = [{"id": str(id_), "name": name, "qty": str(qty), "remove": ""} for id_, name, qty in conn.execute(
        "SELECT id, name, qty FROM pack WHERE variant_id = ? ORDER BY qty, name", (variant_id,))]
    form.barcodes = [{"code": code, "pack": pack or "", "remove": ""} for code, pack in conn.execute(
        "SELECT b.code, k.name FROM barcode b LEFT JOIN pack k ON k.id = b.pack_id WHERE b.variant_id = ?"
        " ORDER BY k.qty IS NOT NULL, k.qty, b.code", (variant_id,))]
    form.reorder = [{"location": code, "point": _text(point), "qty": _text(qty)} for code, point, qty in conn.execute(
        "SELECT l.code, ro.reorder_point, ro.reorder_qty FROM reorder_override ro"
        " JOIN location l ON l.id = ro.location_id WHERE ro.variant_id = ? ORDER BY l.code", (variant_id,))]
    return form


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount_text(minor: int | None, digits: int) -> str:
    return "" if minor is None else money.format_amount(minor, digits)


def read(posted, saved: ProductForm | None) -> ProductForm:
    """The form as posted. Editing keeps the saved SKUs: other sites and signed movements name a variant by SKU."""
    form = ProductForm(variant_id=saved.variant_id if saved else None, image_url=saved.image_url if saved else None)
    for name in TEXT_FIELDS:
        form.values[name] = (posted.get(name) or "").replace("\r\n", "\n").strip()
    if saved is not None:
        form.values["sku"] = saved.values["sku"]
        form.values["product_sku"] = saved.values["product_sku"]
    form.active = posted.get("active") == "1"
    form.image_pending = (posted.get("image_pending") or "").strip()
    form.image_remove = posted.get("image_remove") == "1"
    rows: dict[str, dict[int, dict[str, str]]] = {part: {} for part in ROW_FIELDS}
    for key in posted:
        match = _ROW.fullmatch(key)
        if match and match.group(3) in ROW_FIELDS[match.group(1)]:
            part, index, name = match.group(1), int(match.group(2)), match.group(3)
            rows[part].setdefault(index, dict.fromkeys(ROW_FIELDS[part], ""))[name] = (posted.get(key) or "").strip()
    for part, by_index in rows.items():
        # Blank rows are dropped and the rest numbered again, so errors name the rows as shown next time.
        kept = [row for _index, row in sorted(by_index.items())
                if any(row[name] for name in ROW_FIELDS[part] if name not in ("remove", "id")) or row.get("id")]
        setattr(form, part, kept[:MAX_ROWS])
    return form


def check(form: ProductForm, digits: int) -> Cleaned:
    """The typed values, or FormErrors naming every bad field. No database here."""
    v, errors = form.values, {}

    def text(name: str, limit: int = MAX_TEXT, required: bool = False) -> str:
        value = v[name]
        if required and not value:
            errors[name] = _("This field is required.")
        elif len(value) > limit:
            errors[name] = _("At most %(limit)s characters.", limit=limit)
        return value

    def sku(name: str) -> str:
        value = v[name]
        if not value:
            errors[name] = _("This field is required.")
        elif len(value) > MAX_SKU or not csv_rows.SKU.fullmatch(value):
            errors[name] = _("Use at most %(limit)s letters, digits and - _ . / (no spaces).", limit=MAX_SKU)
        return value

    def whole(name: str, minimum: int, key: str | None = None, value: str | None = None) -> int | None:
        value = v[name] if value is None else value
        if not value:
            return None
        if not csv_rows.WHOLE.fullmatch(value) or int(value) > csv_rows.MAX_INT:
            errors[key or name] = _("Type a whole number, like 12.")
            return None
        if int(value) < minimum:
            errors[key or name] = _("Must be at least %(minimum)s.", minimum=minimum)
            return None
        return int(value)

    def amount(name: str) -> int | None:
        if not v[name]:
            return None
        try:
            value = money.parse_amount(v[name], digits)
        except ValueError as exc:
            errors[name] = _("Not an amount (%(reason)s). Type it like 12.99.", reason=str(exc))
            return None
        if value < 0 or value > csv_rows.MAX_INT:
            errors[name] = _("Must not be negative.") if value < 0 else _("Too large.")
            return None
        return value

    if not v["product_sku"]:
        v["product_sku"] = v["sku"]
    cleaned = Cleaned(
        product={"sku": sku("product_sku"), "name": text("product_name", required=True),
                 "category": text("category"), "description": text("description", MAX_DESCRIPTION)},
        variant={"sku": sku("sku"), "name": text("variant_name"), "unit": text("unit", 20) or "each",
                 "cost_price": amount("cost_price"), "sale_price": amount("sale_price"),
                 "reorder_point": whole("reorder_point", 0), "reorder_qty": whole("reorder_qty", 1),
                 "active": form.active})
    pack_names = set()
    for i, row in enumerate(form.packs):
        prefix = f"packs-{i}"
        pack_id = int(row["id"]) if row["id"].isdigit() else None
        if row["remove"]:
            if pack_id is not None:
                cleaned.removed_packs.append((prefix, pack_id))
            continue
        qty = whole("qty", 1, f"{prefix}-qty", row["qty"])
        if not row["qty"]:
            errors[f"{prefix}-qty"] = _("How many units are in this pack?")
        if not row["name"]:
            errors[f"{prefix}-name"] = _("Name the pack, e.g. case or pallet.")
        elif len(row["name"]) > 40:
            errors[f"{prefix}-name"] = _("At most %(limit)s characters.", limit=40)
        elif row["name"] in pack_names:
            errors[f"{prefix}-name"] = _("Another pack of this variant has this name.")
        pack_names.add(row["name"])
        if qty is not None:
            cleaned.packs.append((prefix, pack_id, row["name"], qty))
    codes = set()
    for i, row in enumerate(form.barcodes):
        key, code = f"barcodes-{i}-code", row["code"]
        if row["remove"]:
            continue
        if not code:
            errors[key] = _("Type or scan the barcode.")
            continue
        if len(code) > MAX_BARCODE or not _BARCODE.fullmatch(code):
            errors[key] = _("A barcode is 1 to %(limit)s letters, digits or signs, without spaces.", limit=MAX_BARCODE)
            continue
        try:
            kind = csv_rows.barcode_kind(code)
        except csv_rows.BadValue as exc:
            errors[key] = _("Barcode %(code)s is not valid: %(reason)s.", code=code, reason=str(exc))
            continue
        if code in codes:
            errors[key] = _("This barcode is listed twice.")
        codes.add(code)
        if row["pack"] and row["pack"] not in pack_names:
            errors[f"barcodes-{i}-pack"] = _("There is no pack %(name)s among the packs above.", name=row["pack"])
        cleaned.barcodes.append((key, code, kind, row["pack"] or None))
    places = set()
    for i, row in enumerate(form.reorder):
        prefix = f"reorder-{i}"
        code = row["location"] = row["location"].upper()
        if not code:
            errors[f"{prefix}-location"] = _("Which location is this reorder point for?")
            continue
        if code in places:
            errors[f"{prefix}-location"] = _("This location is listed twice.")
        places.add(code)
        point = whole("point", 0, f"{prefix}-point", row["point"])
        qty = whole("qty", 1, f"{prefix}-qty", row["qty"])
        cleaned.reorder.append((prefix, code, point, qty))
    if form.image_pending and not IMAGE_NAME.fullmatch(form.image_pending):
        form.image_pending = ""
    if errors:
        raise FormErrors(errors)
    return cleaned


KEEP = object()   # `save(image_url=KEEP)`: leave the product's image as it is


def save(db: peewee.SqliteDatabase, form: ProductForm, cleaned: Cleaned, site: str,
         image_url: str | None | object = KEEP) -> str | None:
    """Write the product, variant, packs, barcodes and reorder overrides in one transaction; return the product's
    previous image URL when it changed (for the caller to tidy up after the commit). `image_url` is the image
    the product should show from now on (None: none; KEEP: unchanged)."""
    product, variant = cleaned.product, cleaned.variant
    now = clock.now_ts()
    with db.atomic("IMMEDIATE"):
        conn = db.connection()
        errors = {}
        variant_id = form.variant_id
        row = conn.execute("SELECT id, name, image_url FROM product WHERE sku = ?", (product["sku"],)).fetchone()
        if variant_id is None:
            if conn.execute("SELECT 1 FROM variant WHERE sku = ?", (variant["sku"],)).fetchone():
                errors["sku"] = _("SKU %(sku)s exists already.", sku=variant["sku"])
            if row is not None and row[1] != product["name"]:
                errors["product_name"] = _(
                    "Product %(sku)s is called “%(name)s”: use that name to add a variant to it, or choose "
                    "another product SKU.", sku=product["sku"], name=row[1])
        elif conn.execute("SELECT 1 FROM variant WHERE id = ?", (variant_id,)).fetchone() is None:
            errors["sku"] = _("This variant no longer exists.")
        for key, code, _kind, _pack in cleaned.barcodes:
            owner = conn.execute("SELECT v.id, v.sku FROM barcode b JOIN variant v ON v.id = b.variant_id"
                                 " WHERE b.code = ?", (code,)).fetchone()
            if owner is not None and owner[0] != variant_id:
                errors[key] = _("Barcode %(code)s already belongs to SKU %(sku)s.", code=code, sku=owner[1])
        saved_packs = {id_ for (id_,) in conn.execute("SELECT id FROM pack WHERE variant_id = ?", (variant_id,))}
        for prefix, pack_id, _name, _qty in cleaned.packs:
            if pack_id is not None and pack_id not in saved_packs:
                errors[f"{prefix}-name"] = _("This pack no longer exists; remove the row and add it again.")
        locations = {}
        for prefix, code, _point, _qty in cleaned.reorder:
            found = conn.execute("SELECT id, site_id FROM location WHERE code = ?", (code,)).fetchone()
            if found is None:
                errors[f"{prefix}-location"] = _("There is no location %(code)s.", code=code)
            elif found[1] != site:
                errors[f"{prefix}-location"] = _("Location %(code)s belongs to site %(site)s; set reorder points "
                                                 "only for locations of this site.", code=code, site=found[1])
            else:
                locations[code] = found[0]
        if errors:
            raise FormErrors(errors)

        previous_image = row[2] if row is not None else None
        if image_url is KEEP:
            image_url = previous_image
        values = (product["name"], product["category"], product["description"], image_url, now)
        if row is None:
            product_id = conn.execute(
                "INSERT INTO product (sku, name, category, description, image_url, updated_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", (product["sku"], *values, now)).lastrowid
        else:
            product_id = row[0]
            conn.execute("UPDATE product SET name = ?, category = ?, description = ?, image_url = ?, updated_at = ?"
                         " WHERE id = ?", (*values, product_id))
        columns = ("name", "unit", "cost_price", "sale_price", "reorder_point", "reorder_qty", "active")
        if variant_id is None:
            variant_id = conn.execute(
                f"INSERT INTO variant (product_id, sku, {', '.join(columns)}, created_at, updated_at)"
                f" VALUES (?, ?, {', '.join('?' * len(columns))}, ?, ?)",
                (product_id, variant["sku"], *(variant[c] for c in columns), now, now)).lastrowid
        else:
            conn.execute(f"UPDATE variant SET {', '.join(f'{c} = ?' for c in columns)}, updated_at = ? WHERE id = ?",
                         (*(variant[c] for c in columns), now, variant_id))
        _write_packs_and_barcodes(conn, variant_id, cleaned)
        conn.execute("DELETE FROM reorder_override WHERE variant_id = ? AND location_id IN"
                     " (SELECT id FROM location WHERE site_id = ?)", (variant_id, site))
        conn.executemany(
            "INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty) VALUES (?, ?, ?, ?)",
            [(variant_id, locations[code], point, qty) for _prefix, code, point, qty in cleaned.reorder
             if point is not None or qty is not None])   # both numbers cleared: the location follows the variant
    return previous_image if previous_image != image_url else None


def _write_packs_and_barcodes(conn: sqlite3.Connection, variant_id: int, cleaned: Cleaned) -> None:
    # Barcodes first: a removed pack may still be named by a barcode row that is being removed or moved.
    conn.execute("DELETE FROM barcode WHERE variant_id = ?", (variant_id,))
    for _prefix, pack_id in cleaned.removed_packs:
        conn.execute("DELETE FROM pack WHERE id = ? AND variant_id = ?", (pack_id, variant_id))
    # Names are unique per variant: park the kept packs under their ids first, so that swapping two names works.
    conn.executemany("UPDATE pack SET name = '#' || id WHERE id = ? AND variant_id = ?",
                     [(pack_id, variant_id) for _prefix, pack_id, _name, _qty in cleaned.packs if pack_id is not None])
    pack_ids = {}
    for _prefix, pack_id, name, qty in cleaned.packs:
        if pack_id is None:
            pack_id = conn.execute("INSERT INTO pack (variant_id, name, qty) VALUES (?, ?, ?)",
                                   (variant_id, name, qty)).lastrowid
        else:
            conn.execute("UPDATE pack SET name = ?, qty = ? WHERE id = ?", (name, qty, pack_id))
        pack_ids[name] = pack_id
    conn.executemany("INSERT INTO barcode (code, variant_id, pack_id, kind) VALUES (?, ?, ?, ?)",
                     [(code, variant_id, pack_ids.get(pack) if pack else None, kind)
                      for _key, code, kind, pack in cleaned.barcodes])


def store_image(data: bytes, directory: Path) -> str:
    """Check an upload is a PNG, JPEG or WebP picture, shrink it to at most 800 px and store it (WebP, or JPEG where
    Pillow lacks WebP) under a name made of its content. Returns the file name; raises FormErrors({"image": ...})."""
    if len(data) > MAX_IMAGE_BYTES:
        raise FormErrors({"image": _("The image is larger than %(mb)s MB.", mb=MAX_IMAGE_BYTES // (1024 * 1024))})
    refused = FormErrors({"image": _("This file is not a PNG, JPEG or WebP image.")})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in IMAGE_FORMATS:
                    raise refused
                if probe.width * probe.height > MAX_IMAGE_PIXELS:
                    raise FormErrors({"image": _("The image has too many pixels.")})
                probe.verify()   # reads the whole file: a truncated or forged one fails here
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                picture = ImageOps.exif_transpose(image)
                body, suffix = _encode(picture)
    except FormErrors:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise refused from None
    name = hashlib.sha256(body).hexdigest()[:24] + suffix
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if not target.exists():
        temp = target.with_suffix(".tmp")
        temp.write_bytes(body)
        temp.replace(target)   # a half-written file is never served
    return name


def _encode(picture: Image.Image) -> tuple[bytes, str]:
    webp = features.check("webp")
    keep_alpha = webp and ("A" in picture.getbands() or "transparency" in picture.info)
    picture = picture.convert("RGBA" if keep_alpha else "RGB")
    picture.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    out = io.BytesIO()
    if webp:
        picture.save(out, "WEBP", quality=82, method=4)
        return out.getvalue(), ".webp"
    picture.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), ".jpg"
