"""GET /variants, /variants/<sku>, /products, /products/<sku>: the catalog, searched the way the box searches.

Lists come from `catalog.search.search_variants` (SKU, barcode, any part of a name through the trigram index)
or one paged SQL query, so a page costs the same at 50 variants or 50,000. A variant's detail adds its
barcodes, packs, per-location reorder overrides and stock per site in a few indexed queries.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_babel import gettext as _

from appliance.catalog.search import MAX_LIMIT, search_variants
from appliance.errors import NotFound, UnknownSku
from appliance.ledger import queries
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Query, next_url, paging
from appliance.webapp.api.shapes import costs_visible, row_dict, without_costs
from appliance.webapp.context import parts, requires

SUMMARY = ("sku", "product_sku", "product", "name", "category", "unit", "active", "cost_price", "sale_price",
           "reorder_point", "reorder_qty")
_SUMMARY_SQL = ("v.sku, p.sku, p.name, v.name, p.category, v.unit, v.active, v.cost_price, v.sale_price, "
                "v.reorder_point, v.reorder_qty")
PRODUCT = ("sku", "name", "category", "description", "supplier", "image_url", "active", "variant_count")


class UnknownProduct(NotFound):
    code = "unknown_product"

    def __init__(self, sku: str) -> None:
        super().__init__(_("unknown product SKU '%(sku)s'", sku=sku), sku=sku)


def summary(row, costs: bool) -> dict[str, Any]:
    return without_costs(row_dict(SUMMARY, row, flags=("active",)), costs)


@bp.get("/variants")
@requires("view")
def list_variants():
    query = Query("q", "limit", "offset", "include_inactive")
    text = query.text("q")
    limit, offset = paging(query, maximum=MAX_LIMIT)
    include_inactive = query.boolean("include_inactive")
    query.done()
    hits, total = search_variants(parts().db.connection(), text or "", limit=limit, offset=offset,
                                  include_inactive=include_inactive)
    costs = costs_visible()
    items = [summary((h.sku, h.product_sku, h.product, h.name, h.category, h.unit, h.active, h.cost_price,
                      h.sale_price, h.reorder_point, h.reorder_qty), costs) for h in hits]
    # The search leaves the total out when counting would cost a full scan; then a full page means "more".
    more = offset + len(items) < total if total is not None else len(items) == limit
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset,
                    "next": next_url("api.list_variants", q=text, limit=limit, offset=offset + limit,
                                     include_inactive="true" if include_inactive else None) if more else None})


def variant_detail(sku: str) -> dict[str, Any]:
    conn = parts().db.connection()
    row = conn.execute(f"SELECT v.id, {_SUMMARY_SQL}, p.description, v.created_at, v.updated_at FROM variant v"
                       " JOIN product p ON p.id = v.product_id WHERE v.sku = ?", (sku,)).fetchone()
    if row is None:
        raise UnknownSku(sku)
    variant_id = row[0]
    item = summary(row[1:12], costs_visible())
    item.update(description=row[12], created_at=row[13], updated_at=row[14])
    item["barcodes"] = [{"code": code, "kind": kind, "pack": pack} for code, kind, pack in conn.execute(
        "SELECT b.code, b.kind, k.name FROM barcode b LEFT JOIN pack k ON k.id = b.pack_id WHERE b.variant_id = ?"
        " ORDER BY b.pack_id IS NOT NULL, b.code", (variant_id,))]
    item["packs"] = [{"name": name, "qty": qty} for name, qty in conn.execute(
        "SELECT name, qty FROM pack WHERE variant_id = ? ORDER BY qty, name", (variant_id,))]
    item["reorder_overrides"] = [{"location": code, "reorder_point": point, "reorder_qty": qty}
                                 for code, point, qty in conn.execute(
        "SELECT l.code, o.reorder_point, o.reorder_qty FROM reorder_override o JOIN location l ON l.id = o.location_id"
        " WHERE o.variant_id = ? ORDER BY l.code", (variant_id,))]
    item["stock_by_site"] = queries.totals_by_site(conn, sku)
    return item


@bp.get("/variants/<path:sku>")
@requires("view")
def get_variant(sku: str):
    Query().done()
    return jsonify(variant_detail(sku))


def _product_filter(text: str | None, include_inactive: bool) -> tuple[str, list[Any]]:
    where, params = [], []
    if not include_inactive:
        where.append("p.active")
    if text:
        if len(text) >= 3:
            # The variant search index covers product SKU, name and category too (migration m0006).
            where.append("(p.sku = ? OR p.id IN (SELECT v.product_id FROM variant_search s"
                         " JOIN variant v ON v.id = s.rowid WHERE variant_search MATCH ?))")
            params += [text, '"' + text.replace('"', '""') + '"']
        else:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(p.sku LIKE ? ESCAPE '\\' OR p.name LIKE ? ESCAPE '\\')")
            params += [escaped + "%", escaped + "%"]
    return " AND ".join(where) or "1", params


_PRODUCT_SQL = ("SELECT p.sku, p.name, p.category, p.description, s.name, p.image_url, p.active,"
                " (SELECT count(*) FROM variant v WHERE v.product_id = p.id) FROM product p"
                " LEFT JOIN supplier s ON s.id = p.supplier_id")


@bp.get("/products")
@requires("view")
def list_products():
    query = Query("q", "limit", "offset", "include_inactive")
    text = query.text("q")
    limit, offset = paging(query, maximum=MAX_LIMIT)
    include_inactive = query.boolean("include_inactive")
    query.done()
    conn = parts().db.connection()
    where, params = _product_filter(text, include_inactive)
    total = conn.execute(f"SELECT count(*) FROM product p WHERE {where}", params).fetchone()[0]
    items = [row_dict(PRODUCT, row, flags=("active",)) for row in conn.execute(
        f"{_PRODUCT_SQL} WHERE {where} ORDER BY p.sku LIMIT ? OFFSET ?", params + [limit, offset])]
    more = offset + len(items) < total
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset,
                    "next": next_url("api.list_products", q=text, limit=limit, offset=offset + limit,
                                     include_inactive="true" if include_inactive else None) if more else None})


@bp.get("/products/<path:sku>")
@requires("view")
def get_product(sku: str):
    Query().done()
    conn = parts().db.connection()
    row = conn.execute(f"{_PRODUCT_SQL} WHERE p.sku = ?", (sku,)).fetchone()
    if row is None:
        raise UnknownProduct(sku)
    product = row_dict(PRODUCT, row, flags=("active",))
    costs = costs_visible()
    product["variants"] = [summary(r, costs) for r in conn.execute(
        f"SELECT {_SUMMARY_SQL} FROM variant v JOIN product p ON p.id = v.product_id WHERE p.sku = ?"
        " ORDER BY v.sku", (sku,))]
    return jsonify(product)
