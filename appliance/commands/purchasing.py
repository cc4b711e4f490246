"""supplier add|list, reorder set|list|check (purchase orders: purchase_orders.py)."""

from __future__ import annotations

from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput
from appliance.purchasing import reorder


def register(commands) -> None:
    sup = commands.add_parser("supplier", help="suppliers purchase orders go to").add_subparsers(
        dest="supplier_command", metavar="ACTION", required=True)
    p = sup.add_parser("add", help="add a supplier")
    p.add_argument("name")
    p.add_argument("--email", help="where purchase orders are emailed")
    p.add_argument("--lead-time-days", type=int, help="days from order to delivery (sets the expected date)")
    p.add_argument("--address", default="")
    p.set_defaults(handler=cmd_supplier_add)
    p = sup.add_parser("list", help="list suppliers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_supplier_list)

    rr = commands.add_parser("reorder", help="reorder rules and the trigger").add_subparsers(
        dest="reorder_command", metavar="ACTION", required=True)
    p = rr.add_parser("set", help="set a variant's reorder rule (its default, or for a site, a location or the "
                                  "company)")
    p.add_argument("sku")
    p.add_argument("--point", type=int, required=True, help="reorder when the position falls to this")
    p.add_argument("--qty", type=int, help="order this many")
    p.add_argument("--max", type=int, help="order up to this many instead of a fixed quantity")
    p.add_argument("--supplier", help="preferred supplier (name)")
    p.add_argument("--pack", type=int, help="supplier pack size: orders are rounded up to whole packs")
    p.add_argument("--min-order", type=int, help="the supplier's minimum order quantity")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--site", help="a rule for this site's total")
    where.add_argument("--location", help="a rule for this location alone")
    where.add_argument("--company", action="store_true",
                       help="a rule for the total across every site; sites short of stock are first offered a "
                            "transfer from a site with surplus")
    p.add_argument("--buyer", help="with --company: the site whose box orders for the company (default: the rule's "
                                   "buyer so far, else this site)")
    p.set_defaults(handler=cmd_reorder_set)
    p = rr.add_parser("list", help="every reorder rule on this box: defaults, sites, locations, company")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reorder_list)
    p = rr.add_parser("check", help="check every rule now (what the periodic sweep does)")
    p.set_defaults(handler=cmd_reorder_check)


def supplier_id(conn, name: str) -> int:
    found = conn.execute("SELECT id FROM supplier WHERE name = ?", (name,)).fetchone()
    if found is None:
        raise InvalidInput(f"no supplier {name!r} (appliance supplier list)", field="supplier")
    return found[0]


def cmd_supplier_add(args, ctx) -> int:
    if args.lead_time_days is not None and args.lead_time_days < 0:
        raise InvalidInput("--lead-time-days must be 0 or more", field="lead_time_days")
    with ctx.app.ledger.write() as ops:
        if ops.conn.execute("SELECT 1 FROM supplier WHERE name = ?", (args.name,)).fetchone():
            raise InvalidInput(f"supplier {args.name!r} exists already", field="name")
        ops.conn.execute("INSERT INTO supplier (name, email, lead_time_days, address, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", (args.name, args.email, args.lead_time_days, args.address, ops.ts))
    info(f"supplier {args.name} added")
    return 0


def cmd_supplier_list(args, ctx) -> int:
    rows = ctx.app.db.execute_sql("SELECT id, name, email, lead_time_days, active FROM supplier ORDER BY name")
    items = [{"id": i, "name": n, "email": e, "lead_time_days": d, "active": bool(a)} for i, n, e, d, a in rows]
    if args.json:
        print_json(items)
    else:
        print_table(("id", "name", "email", "lead days"),
                    [(i["id"], i["name"], i["email"] or "", "" if i["lead_time_days"] is None else i["lead_time_days"])
                     for i in items])
    return 0


def cmd_reorder_set(args, ctx) -> int:
    for name in ("point", "qty", "max", "pack", "min_order"):
        value = getattr(args, name)
        if value is not None and value < (0 if name in ("point", "min_order") else 1):
            raise InvalidInput(f"--{name.replace('_', '-')} {value} is out of range", field=name)
    if args.buyer is not None and not args.company:
        raise InvalidInput(f"--buyer {args.buyer} needs --company: only the company rule has a buyer site",
                           field="buyer")
    with ctx.app.ledger.write() as ops:
        conn = ops.conn
        found = conn.execute("SELECT id FROM variant WHERE sku = ?", (args.sku,)).fetchone()
        if found is None:
            raise InvalidInput(f"unknown SKU {args.sku!r}", field="sku")
        variant_id = found[0]
        supplier = supplier_id(conn, args.supplier) if args.supplier else None
        if args.pack is not None or args.min_order is not None:
            conn.execute("UPDATE variant SET pack_size = coalesce(?, pack_size), min_order_qty = coalesce(?,"
                         " min_order_qty) WHERE id = ?", (args.pack, args.min_order, variant_id))
        values = (args.point, args.qty, args.max, supplier)
        if args.location:
            loc = conn.execute("SELECT id FROM location WHERE code = ?", (args.location,)).fetchone()
            if loc is None:
                raise InvalidInput(f"unknown location {args.location!r}", field="location")
            conn.execute("INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty, max_qty,"
                         " supplier_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (variant_id, location_id) DO UPDATE SET"
                         " reorder_point = excluded.reorder_point, reorder_qty = excluded.reorder_qty,"
                         " max_qty = excluded.max_qty, supplier_id = excluded.supplier_id",
                         (variant_id, loc[0], *values))
        elif args.company:
            set_company_rule(conn, variant_id, values, args.buyer, ctx.app.config.site.id)
        elif args.site:
            if not conn.execute("SELECT 1 FROM site WHERE id = ?", (args.site,)).fetchone():
                raise InvalidInput(f"unknown site {args.site!r}", field="site")
            conn.execute("INSERT INTO reorder_site_rule (variant_id, site_id, reorder_point, reorder_qty, max_qty,"
                         " supplier_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (variant_id, site_id) DO UPDATE SET"
                         " reorder_point = excluded.reorder_point, reorder_qty = excluded.reorder_qty,"
                         " max_qty = excluded.max_qty, supplier_id = excluded.supplier_id",
                         (variant_id, args.site, *values))
        else:
            conn.execute("UPDATE variant SET reorder_point = ?, reorder_qty = ?, max_qty = ?,"
                         " supplier_id = coalesce(?, supplier_id), updated_at = ? WHERE id = ?",
                         (*values, ops.ts, variant_id))
    info(f"reorder rule of {args.sku} set")
    return 0


def set_company_rule(conn, variant_id: int, values: tuple, buyer: str | None, here: str) -> None:
    """Replace the company rule; its buyer stays unless named, so changing a point on a box that does not buy
    never makes it a second buyer."""
    if buyer is None:
        found = conn.execute("SELECT buyer_site_id FROM reorder_company_rule WHERE variant_id = ?",
                             (variant_id,)).fetchone()
        buyer = found[0] if found else here
    elif not conn.execute("SELECT 1 FROM site WHERE id = ?", (buyer,)).fetchone():
        raise InvalidInput(f"--buyer {buyer}: no such site on this box (appliance site list)", field="buyer")
    conn.execute("INSERT INTO reorder_company_rule (variant_id, reorder_point, reorder_qty, max_qty, supplier_id,"
                 " buyer_site_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (variant_id) DO UPDATE SET"
                 " reorder_point = excluded.reorder_point, reorder_qty = excluded.reorder_qty,"
                 " max_qty = excluded.max_qty, supplier_id = excluded.supplier_id,"
                 " buyer_site_id = excluded.buyer_site_id", (variant_id, *values, buyer))


_RULE_LIST = """
SELECT * FROM (
  SELECT v.sku AS sku, 'default' AS level, 'each site' AS at, v.reorder_point, v.reorder_qty, v.max_qty,
         s.name, NULL AS buyer
  FROM variant v JOIN product p ON p.id = v.product_id
  LEFT JOIN supplier s ON s.id = coalesce(v.supplier_id, p.supplier_id) WHERE v.reorder_point IS NOT NULL
  UNION ALL
  SELECT v.sku, 'site', r.site_id, r.reorder_point, r.reorder_qty, r.max_qty, s.name, NULL FROM reorder_site_rule r
  JOIN variant v ON v.id = r.variant_id LEFT JOIN supplier s ON s.id = r.supplier_id
  UNION ALL
  SELECT v.sku, 'location', l.code, o.reorder_point, o.reorder_qty, o.max_qty, s.name, NULL FROM reorder_override o
  JOIN variant v ON v.id = o.variant_id JOIN location l ON l.id = o.location_id
  LEFT JOIN supplier s ON s.id = o.supplier_id WHERE o.reorder_point IS NOT NULL
  UNION ALL
  SELECT v.sku, 'company', 'all sites', c.reorder_point, c.reorder_qty, c.max_qty, s.name, c.buyer_site_id
  FROM reorder_company_rule c JOIN variant v ON v.id = c.variant_id LEFT JOIN supplier s ON s.id = c.supplier_id
)
ORDER BY sku, CASE level WHEN 'location' THEN 0 WHEN 'site' THEN 1 WHEN 'default' THEN 2 ELSE 3 END, at
"""


def cmd_reorder_list(args, ctx) -> int:
    names = ("sku", "level", "at", "point", "qty", "max", "supplier", "buyer")
    items = [dict(zip(names, row)) for row in ctx.app.db.execute_sql(_RULE_LIST)]
    if args.json:
        print_json(items)
    else:
        print_table(names, [[item[n] for n in names] for item in items])
    return 0


def cmd_reorder_check(args, ctx) -> int:
    print_json(reorder.sweep(ctx.app))
    return 0
