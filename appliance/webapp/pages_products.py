"""The product pages: the list with instant search, a variant's details, the create/edit form, product photos.

The list renders its first page on the server; web/static/products.js then asks `/products/search.json` as the
user types and swaps in rows rendered by the same template (`products/_rows.html`), so both ways look alike.
Search is `catalog.search.search_variants` (index lookups only); the on-hand column costs one more query per
page, for all of its rows at once. Prices show only to roles that may see costs.
"""

from __future__ import annotations

import logging
import sqlite3

import peewee
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _

from appliance.catalog import money
from appliance.catalog.search import search_variants
from appliance.config import currency_digits
from appliance.errors import UnknownSku
from appliance.ledger import queries
from appliance.webapp import catalog_forms, events
from appliance.webapp.catalog_forms import FormErrors
from appliance.webapp.context import can, parts, requires
from appliance.webapp.pages_stock import chart, find_variant, located

logger = logging.getLogger(__name__)

bp = Blueprint("products", __name__)

PAGE = 50


def _digits() -> int:
    return currency_digits(parts().config.site.currency)


def images_dir():
    return parts().config.database.path.parent / "images"


def _money(minor: int | None) -> str:
    return "" if minor is None else money.format_amount(minor, _digits())


def _search(text: str, offset: int, inactive: bool) -> dict:
    conn = parts().db.connection()
    hits, total = search_variants(conn, text, limit=PAGE, offset=offset, include_inactive=inactive)
    more = total is None or total > offset + len(hits)
    on_hand = {}
    if hits:
        ids = [hit.id for hit in hits]
        on_hand = dict(conn.execute(
            "SELECT s.variant_id, sum(s.on_hand) FROM stock s JOIN location l ON l.id = s.location_id"
            f" WHERE l.site_id = ? AND s.variant_id IN ({', '.join('?' * len(ids))}) GROUP BY s.variant_id",
            (parts().config.site.id, *ids)))
    # `total` is None when counting would cost a full scan (long text, more than a page found).
    more = more and len(hits) == PAGE
    args = {"q": text or None, "inactive": "1" if inactive else None}
    return {"hits": hits, "on_hand": on_hand, "total": total, "more": more, "offset": offset,
            "next": url_for("products.index", offset=offset + PAGE, **args) if more else None,
            "prev": url_for("products.index", offset=max(0, offset - PAGE), **args) if offset else None}


def _query_args() -> tuple[str, int, bool]:
    text = request.args.get("q", "").strip()[:200]
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    return text, offset, request.args.get("inactive") == "1"


@bp.route("/products")
@requires("view")
def index():
    text, offset, inactive = _query_args()
    return render_template("products/index.html", q=text, inactive=inactive, money=_money, page=PAGE,
                           **_search(text, offset, inactive))


@bp.route("/products/search.json")
@requires("view")
def search_json():
    text, offset, inactive = _query_args()
    found = _search(text, offset, inactive)
    see_costs = can("see_costs")
    items = []
    for hit in found["hits"]:
        item = {"sku": hit.sku, "product_sku": hit.product_sku, "product": hit.product, "name": hit.name,
                "category": hit.category, "unit": hit.unit, "active": hit.active,
                "on_hand": found["on_hand"].get(hit.id, 0), "url": url_for("products.show", sku=hit.sku)}
        if see_costs:
            item.update(cost_price=hit.cost_price, sale_price=hit.sale_price)
        items.append(item)
    html = render_template("products/_rows.html", money=_money, **found)
    return jsonify({"q": text, "items": items, "total": found["total"], "more": found["more"],
                    "next": found["next"], "prev": found["prev"], "html": html,
                    "summary": render_template("products/_summary.html", **found)})


def _form_page(saved: catalog_forms.ProductForm | None):
    """GET shows the form; POST checks and saves it, or shows it again with every problem at its field."""
    conn = parts().db.connection()
    site = parts().config.site.id
    if request.method == "GET":
        form = saved or _blank_form(conn)
        return _render_form(conn, form)
    form = catalog_forms.read(request.form, saved)
    errors = {}
    upload = request.files.get("image")
    if upload is not None and upload.filename:
        try:
            form.image_pending = catalog_forms.store_image(upload.read(catalog_forms.MAX_IMAGE_BYTES + 1),
                                                           images_dir())
        except FormErrors as problem:
            errors.update(problem.errors)
    if form.image_pending and not (catalog_forms.IMAGE_NAME.fullmatch(form.image_pending)
                                   and (images_dir() / form.image_pending).is_file()):
        form.image_pending = ""
    try:
        cleaned = catalog_forms.check(form, _digits())
    except FormErrors as problem:
        errors.update(problem.errors)
    if errors:
        form.errors = errors
        return _render_form(conn, form, 400)
    if form.image_pending:
        image_url = url_for("products.image", name=form.image_pending)
    elif form.image_remove:
        image_url = None
    else:
        image_url = catalog_forms.KEEP
    try:
        previous = catalog_forms.save(parts().db, form, cleaned, site, image_url)
    except FormErrors as problem:
        form.errors = problem.errors
        return _render_form(conn, form, 400)
    except (sqlite3.IntegrityError, peewee.IntegrityError) as error:
        # Another writer changed the catalog between our checks and the write (they run in one transaction,
        # so this is a rule the checks do not know about yet).
        logger.warning("product form refused by the database: %s", error)
        form.errors = {"form": _("The catalog refused this change (%(reason)s).", reason=str(error))}
        return _render_form(conn, form, 409)
    _forget_image(previous)
    sku = cleaned.variant["sku"]
    flash(_("Saved %(sku)s.", sku=sku), "success")
    return redirect(url_for("products.show", sku=sku))


def _blank_form(conn: sqlite3.Connection) -> catalog_forms.ProductForm:
    """A new variant; `?product=DOG` fills in that product, to add a variant to it."""
    form = catalog_forms.ProductForm()
    product = request.args.get("product", "").strip()
    if product:
        row = conn.execute("SELECT sku, name, category, description FROM product WHERE sku = ?",
                           (product,)).fetchone()
        if row is not None:
            form.values.update(product_sku=row[0], product_name=row[1], category=row[2], description=row[3])
    return form


def _render_form(conn: sqlite3.Connection, form: catalog_forms.ProductForm, status: int = 200):
    codes = [code for (code,) in conn.execute(
        "SELECT code FROM location WHERE site_id = ? AND active ORDER BY code LIMIT 2000",
        (parts().config.site.id,))]
    pending_url = url_for("products.image", name=form.image_pending) if form.image_pending else None
    return render_template("products/form.html", form=form, location_codes=codes, pending_url=pending_url,
                           currency=parts().config.site.currency), status


def _forget_image(url: str | None) -> None:
    """Delete a replaced photo of ours once no product shows it (names are content hashes, so two can share)."""
    if not url:
        return
    prefix = url_for("products.image", name="")
    name = url[len(prefix):] if url.startswith(prefix) else ""
    if not catalog_forms.IMAGE_NAME.fullmatch(name):
        return
    if parts().db.execute_sql("SELECT 1 FROM product WHERE image_url = ?", (url,)).fetchone() is None:
        (images_dir() / name).unlink(missing_ok=True)


@bp.route("/products/new", methods=["GET", "POST"])
@requires("edit_products")
def new():
    return _form_page(None)


@bp.route("/products/<path:sku>/edit", methods=["GET", "POST"])
@requires("edit_products")
def edit(sku: str):
    saved = catalog_forms.load(parts().db.connection(), sku, _digits())
    if saved is None:
        raise UnknownSku(sku)
    return _form_page(saved)


@bp.route("/products/images/<name>")
@requires("view")
def image(name: str):
    if not catalog_forms.IMAGE_NAME.fullmatch(name):
        abort(404)
    # The name is a hash of the content, so a browser may keep it for good; only logged-in users see it.
    response = send_from_directory(images_dir(), name, max_age=365 * 24 * 3600)
    response.cache_control.public = False
    response.cache_control.private = True
    return response


@bp.route("/products/<path:sku>")
@requires("view")
def show(sku: str):
    conn = parts().db.connection()
    since = events.current_cursor(conn).text()
    variant = find_variant(conn, sku)
    row = conn.execute(
        "SELECT p.description, p.image_url, p.active, p.id, v.cost_price, v.sale_price, v.reorder_point,"
        " v.reorder_qty, s.name FROM variant v JOIN product p ON p.id = v.product_id"
        " LEFT JOIN supplier s ON s.id = p.supplier_id WHERE v.id = ?", (variant["id"],)).fetchone()
    details = dict(zip(("description", "image_url", "product_active", "product_id", "cost_price", "sale_price",
                        "reorder_point", "reorder_qty", "supplier"), row))
    barcodes = conn.execute(
        "SELECT b.code, b.kind, k.name, k.qty FROM barcode b LEFT JOIN pack k ON k.id = b.pack_id"
        " WHERE b.variant_id = ? ORDER BY k.qty IS NOT NULL, k.qty, b.code", (variant["id"],)).fetchall()
    packs = conn.execute("SELECT name, qty FROM pack WHERE variant_id = ? ORDER BY qty, name",
                         (variant["id"],)).fetchall()
    overrides = conn.execute(
        "SELECT l.code, l.site_id, ro.reorder_point, ro.reorder_qty FROM reorder_override ro"
        " JOIN location l ON l.id = ro.location_id WHERE ro.variant_id = ? ORDER BY l.code",
        (variant["id"],)).fetchall()
    siblings = conn.execute("SELECT sku, name FROM variant WHERE product_id = ? AND id != ? ORDER BY sku",
                            (details["product_id"], variant["id"])).fetchall()
    local_image = bool(details["image_url"]) and details["image_url"].startswith("/")
    return render_template("products/show.html", variant=variant, details=details, barcodes=barcodes,
                           packs=packs, overrides=overrides, siblings=siblings, money=_money,
                           local_image=local_image, since=since, by_location=located(conn, variant["id"], sku),
                           totals=queries.totals_by_site(conn, sku), chart=chart(conn, variant),
                           currency=parts().config.site.currency)
