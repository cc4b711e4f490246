"""The company reorder rule: the total across sites, and the transfer suggested before a site buys.

Every box replicates every site's movements, so its `stock` holds the other sites' levels too. A company rule
(`reorder_company_rule`, one per variant, a local row like every rule) reads them in two ways:
- as a `Rule` of scope 'company' watching the sum over every site; only the box of its **buyer site** checks
  it, so two boxes holding the same rule never both order;
- as a reason to look sideways before buying: when a site's own rule fires, another site whose available
  stock exceeds its own reorder point by at least the quantity needed is suggested as the source of a
  transfer instead of a purchase (the trigger's `transfer_suggested` alert).

A site's surplus is its available stock minus the reorder point that site works to here: its
`reorder_site_rule` on this box, else the variant's own point. With neither, this box cannot tell what that
site needs and counts no surplus: suggesting to empty a site that has no rule would only move the shortage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.purchasing.rules import Rule

_MANY = 500

_RULES = """
SELECT v.id, v.sku, c.buyer_site_id, c.reorder_point, c.reorder_qty, c.max_qty,
       coalesce(c.supplier_id, v.supplier_id, p.supplier_id), v.pack_size, v.min_order_qty, v.cost_price
FROM reorder_company_rule c
JOIN variant v ON v.id = c.variant_id
JOIN product p ON p.id = v.product_id
WHERE v.active AND p.active AND c.buyer_site_id = ? {more}
ORDER BY v.id
"""

_SURPLUS = """
SELECT here.site_id, here.available, coalesce(r.reorder_point, v.reorder_point)
FROM (SELECT l.site_id AS site_id, sum(s.on_hand - s.reserved) AS available FROM stock s
      JOIN location l ON l.id = s.location_id
      WHERE s.variant_id = ? AND l.site_id != ? GROUP BY l.site_id) here
JOIN variant v ON v.id = ?
LEFT JOIN reorder_site_rule r ON r.variant_id = v.id AND r.site_id = here.site_id
ORDER BY here.site_id
"""


@dataclass(frozen=True)
class Surplus:
    site: str
    available: int
    reorder_point: int | None

    @property
    def qty(self) -> int:
        """What the site can spare: nothing when its own point is unknown here."""
        if self.reorder_point is None:
            return 0
        return max(self.available - self.reorder_point, 0)


def buyers(conn: sqlite3.Connection, variant_ids: Iterable[int]) -> dict[int, str]:
    """{variant id: buyer site} of the given variants that have a company rule. The trigger's one check per
    batch of movements: an indexed lookup that finds nothing on a box without company rules."""
    ids = set(variant_ids)
    if not ids:
        return {}
    if len(ids) > _MANY:   # a sweep over a large catalog: one scan beats a statement with thousands of variables
        return {v: site for v, site in conn.execute("SELECT variant_id, buyer_site_id FROM reorder_company_rule")
                if v in ids}
    return dict(conn.execute(f"SELECT variant_id, buyer_site_id FROM reorder_company_rule"
                             f" WHERE variant_id IN ({', '.join('?' * len(ids))})", list(ids)).fetchall())


def company_rules(conn: sqlite3.Connection, site: str, variant_ids: list[int] | None = None) -> list[Rule]:
    """The company rules `site` buys for (for the given variants, or all), as rules of scope 'company'."""
    if variant_ids is None:
        more, params = "", [site]
    elif not variant_ids:
        return []
    else:
        more, params = f"AND v.id IN ({', '.join('?' * len(variant_ids))})", [site, *variant_ids]
    return [Rule("company", variant_id, sku, buyer, None, None, point, qty, max_qty, supplier, pack, moq, cost)
            for variant_id, sku, buyer, point, qty, max_qty, supplier, pack, moq, cost
            in conn.execute(_RULES.format(more=more), params)]


def surpluses(conn: sqlite3.Connection, variant_id: int, short_site: str) -> list[Surplus]:
    """Every other site's available stock of the variant and the point it keeps, from the replicated stock."""
    return [Surplus(site, available, point)
            for site, available, point in conn.execute(_SURPLUS, (variant_id, short_site, variant_id))]


def source_for(candidates: list[Surplus], qty: int) -> Surplus | None:
    """The site that can spare `qty` and has the most to spare, else None (a tie goes to the first site by id:
    `candidates` come in that order and max keeps the first)."""
    covering = [s for s in candidates if s.qty >= qty]
    return max(covering, key=lambda s: s.qty) if covering else None


def largest(candidates: list[Surplus]) -> Surplus | None:
    """The largest surplus short of the need, for the note on the purchase order line it did not replace."""
    spare = [s for s in candidates if s.qty > 0]
    return max(spare, key=lambda s: s.qty) if spare else None
