"""Reorder rules: which apply to a variant at a location, with every field resolved, and the stock they watch.

Three scopes, each a `Rule`:
- a **location rule** (a `reorder_override` with a reorder point) watches that location alone and orders to it;
- a **site rule** (`reorder_site_rule`, else the variant's own reorder point) watches the site's total and
  orders to the site's receiving location;
- a **company rule** (`reorder_company_rule`, loaded by `company.py`) watches the total of every site, from the
  replicated stock, and is ordered by its buyer site alone (`Rule.site` is the buyer).
A field the nearest level leaves empty comes from the next: location override → site rule → variant (and for
the supplier, finally the product's). Both scopes may apply to one variant: a pick face with its own minimum,
and the building as a whole.

"Position" is what the rule compares with its reorder point: available (on hand − reserved) plus what is on
open purchase orders to the watched place plus what is in transit to it, so stock already coming is never
ordered twice. For the company that is every site's available and in transit, plus this box's open orders
(purchase orders are not replicated; the buyer's box holds the company's).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

OPEN_PO = "('draft', 'sent', 'partial')"


@dataclass(frozen=True)
class Rule:
    scope: str                  # 'location', 'site' or 'company'
    variant_id: int
    sku: str
    site: str                   # the watched site; for the company, the buyer
    location_id: int | None     # the watched location (location scope)
    location_code: str | None
    reorder_point: int
    reorder_qty: int | None
    max_qty: int | None
    supplier_id: int | None
    pack_size: int
    min_order_qty: int
    cost_price: int | None

    @property
    def subject(self) -> str:
        return f"{self.sku}@{self.place}"

    @property
    def place(self) -> str:
        """What the rule watches, as subjects and messages name it ('company' is never a location code)."""
        if self.scope == "location":
            return self.location_code or ""
        return "company" if self.scope == "company" else self.site


@dataclass(frozen=True)
class Position:
    available: int
    on_order: int
    inbound: int

    @property
    def total(self) -> int:
        return self.available + self.on_order + self.inbound


_RULES = """
SELECT v.id, v.sku, s.id, o.location_id, l.code, o.reorder_point,
       coalesce(o.reorder_qty, r.reorder_qty, v.reorder_qty), coalesce(r.reorder_qty, v.reorder_qty),
       coalesce(o.max_qty, r.max_qty, v.max_qty), coalesce(r.max_qty, v.max_qty),
       coalesce(o.supplier_id, r.supplier_id, v.supplier_id, p.supplier_id),
       coalesce(r.supplier_id, v.supplier_id, p.supplier_id),
       coalesce(r.reorder_point, v.reorder_point),
       v.pack_size, v.min_order_qty, v.cost_price
FROM variant v
JOIN product p ON p.id = v.product_id
JOIN site s ON s.id = ?
LEFT JOIN reorder_site_rule r ON r.variant_id = v.id AND r.site_id = s.id
LEFT JOIN reorder_override o ON o.variant_id = v.id
     AND o.location_id IN (SELECT id FROM location WHERE site_id = s.id)
LEFT JOIN location l ON l.id = o.location_id
WHERE v.active AND p.active AND {where}
"""


def rules_for(conn: sqlite3.Connection, site: str, variant_ids: list[int] | None = None) -> list[Rule]:
    """Every rule of `site` (for the given variants, or all): location rules and the site rule of each variant."""
    if variant_ids is None:
        where, params = ("(v.reorder_point IS NOT NULL OR r.reorder_point IS NOT NULL"
                         " OR o.reorder_point IS NOT NULL)"), [site]
    else:
        if not variant_ids:
            return []
        where = f"v.id IN ({', '.join('?' * len(variant_ids))})"
        params = [site, *variant_ids]
    rules: dict[tuple, Rule] = {}
    for (variant_id, sku, site_id, location_id, code, point_location, qty_location, qty_site,
         max_location, max_site, supplier_location, supplier_site, point_site, pack, moq,
         cost) in conn.execute(_RULES.format(where=where), params):
        if point_location is not None:
            rules[("location", variant_id, location_id)] = Rule(
                "location", variant_id, sku, site_id, location_id, code, point_location, qty_location,
                max_location, supplier_location, pack, moq, cost)
        if point_site is not None and ("site", variant_id) not in rules:
            rules[("site", variant_id)] = Rule("site", variant_id, sku, site_id, None, None, point_site, qty_site,
                                               max_site, supplier_site, pack, moq, cost)
    return list(rules.values())


def position(conn: sqlite3.Connection, rule: Rule) -> Position:
    if rule.scope == "location":
        stock_where, stock_params = "location_id = ?", (rule.location_id,)
        order_where, order_params = "po.ship_to_id = ?", (rule.location_id,)
    elif rule.scope == "site":
        here = "IN (SELECT id FROM location WHERE site_id = ?)"
        stock_where, stock_params = f"location_id {here}", (rule.site,)
        order_where, order_params = f"po.ship_to_id {here}", (rule.site,)
    else:   # the company: every site's stock, and the orders of this box (the buyer's)
        stock_where, stock_params = "1", ()
        order_where, order_params = "po.site_id = ?", (rule.site,)
    available, inbound = conn.execute(
        f"SELECT coalesce(sum(on_hand - reserved), 0), coalesce(sum(in_transit), 0) FROM stock"
        f" WHERE variant_id = ? AND {stock_where}", (rule.variant_id, *stock_params)).fetchone()
    on_order = conn.execute(
        f"SELECT coalesce(sum(max(l.qty_ordered - l.qty_received - l.qty_cancelled, 0)), 0)"
        f" FROM purchase_order_line l JOIN purchase_order po ON po.id = l.po_id"
        f" WHERE l.variant_id = ? AND po.status IN {OPEN_PO} AND {order_where}",
        (rule.variant_id, *order_params)).fetchone()[0]
    return Position(available, on_order, inbound)


def order_quantity(rule: Rule, pos: Position) -> int:
    """How much to order now: up to max when set, else the reorder quantity (else back above the point),
    raised to the supplier's minimum and rounded up to whole packs."""
    if rule.max_qty is not None:
        qty = rule.max_qty - pos.total
    elif rule.reorder_qty is not None:
        qty = rule.reorder_qty
    else:
        qty = rule.reorder_point - pos.total + 1
    qty = max(qty, rule.min_order_qty, 1)
    pack = max(rule.pack_size, 1)
    return -(-qty // pack) * pack
