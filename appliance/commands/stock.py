"""move, reverse, stock, history, check, reservations, transfers."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.commands.output import info, print_json, print_table
from appliance.errors import EXIT_FAILURE, InvalidInput
from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.requests import Move

MOVE_KINDS = ("receive", "ship", "adjust", "damage", "return_in", "return_out", "reserve", "release", "count",
              "transfer", "transfer_in")


def _kind(text: str) -> str:
    kind = text.replace("-", "_")
    if kind not in MOVE_KINDS:
        raise argparse.ArgumentTypeError(
            f"unknown kind {text!r}; one of {', '.join(k.replace('_', '-') for k in MOVE_KINDS)}")
    return kind


def register(commands) -> None:
    p = commands.add_parser(
        "move", help="post a stock movement",
        description="Post one stock movement. Prints the id of each movement written (one per line); "
        "exit 2 for invalid input, 3 when a stock rule refuses it.")
    p.add_argument("kind", type=_kind, metavar="KIND", help=", ".join(k.replace("_", "-") for k in MOVE_KINDS))
    p.add_argument("--sku")
    p.add_argument("--location", metavar="CODE")
    p.add_argument("--qty", type=int, help="units; signed for adjust; the counted quantity for count; "
                   "release without it frees the whole reservation")
    p.add_argument("--lot", default="")
    p.add_argument("--expiry", metavar="YYYY-MM-DD")
    p.add_argument("--reason")
    p.add_argument("--note")
    p.add_argument("--ref", help="reference, TYPE:ID (e.g. PO:BER-PO-0001) or just an id (an order number)")
    p.add_argument("--op-id", help="idempotency key: posting the same key again returns the earlier movements")
    p.add_argument("--user", metavar="LOGIN", help="who did it")
    p.add_argument("--device", default="cli")
    p.add_argument("--unit-cost", type=int, metavar="MINOR", help="unit cost in minor units (cents)")
    p.add_argument("--from", dest="from_location", metavar="CODE", help="transfer: source location")
    p.add_argument("--to", dest="to_location", metavar="CODE", help="transfer: destination (any site)")
    p.add_argument("--transfer", metavar="ID", help="transfer-in: transfer code (BER-TR-000001) or number")
    p.add_argument("--close", action="store_true", help="transfer-in: close the transfer, booking any shortfall")
    p.add_argument("--reservation", type=int, metavar="ID", help="ship: consume this reservation; "
                   "release: release it")
    p.add_argument("--expires", metavar="WHEN", help="reserve: release automatically at this time "
                   "(timestamp, or a duration such as 30m, 4h, 2d)")
    p.add_argument("--json", action="store_true", help="print the movements as JSON")
    p.set_defaults(handler=cmd_move)

    p = commands.add_parser("reverse", help="post the opposite of a movement, referencing it")
    p.add_argument("movement_id", type=int)
    p.add_argument("--reason", required=True)
    p.add_argument("--op-id")
    p.add_argument("--user", metavar="LOGIN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reverse)

    p = commands.add_parser("stock", help="stock levels now or as of a past moment")
    p.add_argument("--sku")
    p.add_argument("--location", metavar="CODE")
    p.add_argument("--site")
    p.add_argument("--search", help="SKU prefix or part of the product name")
    p.add_argument("--as-of", metavar="TIMESTAMP", help="replay movements up to this moment (a bare date means "
                   "the end of that day, in the site's time zone)")
    p.add_argument("--lots", action="store_true", help="one line per lot")
    p.add_argument("--by-site", action="store_true", help="one line per SKU and site, plus a line for all "
                   "sites together (site ALL)")
    p.add_argument("--all", action="store_true", help="include lines whose quantities are all zero")
    p.add_argument("--sort", default="sku", choices=sorted(queries.STOCK_SORTS))
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stock)

    p = commands.add_parser("history", help="movement history, newest first")
    p.add_argument("--sku")
    p.add_argument("--location", metavar="CODE")
    p.add_argument("--kind")
    p.add_argument("--user", metavar="LOGIN")
    p.add_argument("--ref", help="TYPE:ID or ID")
    p.add_argument("--since", metavar="TIMESTAMP")
    p.add_argument("--until", metavar="TIMESTAMP")
    p.add_argument("--origin", metavar="SITE")
    p.add_argument("--limit", type=int, default=50, help="0 for all (default 50)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--oldest-first", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_history)

    p = commands.add_parser("check", help="recompute stock from movements and verify each site's hash chain; "
                                          "exit 1 listing any difference")
    p.add_argument("--signatures", action="store_true",
                   help="also walk every hash chain, verify every signature and compare every row with its token "
                        "(about 0.3 ms a movement)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_check)

    res = commands.add_parser("reservations", help="list or expire reservations").add_subparsers(
        dest="reservations_command", metavar="ACTION", required=True)
    p = res.add_parser("list")
    p.add_argument("--status", choices=["held", "consumed", "released", "expired"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reservations_list)
    p = res.add_parser("expire", help="release held reservations whose expiry has passed")
    p.set_defaults(handler=cmd_reservations_expire)

    tr = commands.add_parser("transfers", help="list transfers").add_subparsers(
        dest="transfers_command", metavar="ACTION", required=True)
    p = tr.add_parser("list")
    p.add_argument("--open", action="store_true", help="only transfers still in transit")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_transfers_list)


def _ts(text: str | None, ctx, name: str) -> str | None:
    if text is None:
        return None
    try:
        return clock.to_ts(clock.parse_ts(text, ZoneInfo(ctx.config.site.timezone)))
    except ValueError as exc:
        raise InvalidInput(f"--{name}: {exc}", field=name) from None


def _expires(text: str | None, ctx) -> str | None:
    if text is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        from datetime import timedelta
        return clock.to_ts(clock.utcnow() + timedelta(seconds=int(text[:-1]) * units[text[-1]]))
    return _ts(text, ctx, "expires")


def _ref(text: str | None) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    ref_type, _, ref_id = text.rpartition(":")
    return (ref_type or "ref"), ref_id


def _need(args, *names: str) -> None:
    for name in names:
        if getattr(args, name) is None:
            flag = "--" + {"from_location": "from", "to_location": "to"}.get(name, name).replace("_", "-")
            raise InvalidInput(f"{flag} is required for {args.kind.replace('_', '-')}", field=name)


def _build_move(args, ctx) -> Move:
    kind = args.kind
    ref_type, ref_id = _ref(args.ref)
    common = dict(lot=args.lot, expiry=args.expiry, reason=args.reason, note=args.note, unit_cost=args.unit_cost,
                  ref_type=ref_type, ref_id=ref_id)
    if kind == "transfer":
        _need(args, "sku", "from_location", "to_location", "qty")
        return Move("transfer_out", sku=args.sku, location=args.from_location, to_location=args.to_location,
                    qty=args.qty, **common)
    if kind == "transfer_in":
        _need(args, "transfer")
        if args.qty is None and not args.close:
            _need(args, "qty")
        return Move("transfer_in", transfer=args.transfer, qty=args.qty or 0, close=args.close, sku=args.sku,
                    **common)
    if kind in ("ship", "release") and args.reservation is not None:
        if kind == "ship":
            _need(args, "qty")
        return Move(kind, reservation_id=args.reservation, qty=args.qty or 0, sku=args.sku, **common)
    _need(args, "sku", "location", "qty")
    if kind == "reserve":
        # The order reference belongs to the reservation; its movements reference the reservation itself.
        common.update(ref_type=None, ref_id=args.ref)
        return Move("reserve", sku=args.sku, location=args.location, qty=args.qty,
                    expires_at=_expires(args.expires, ctx), **common)
    return Move(kind, sku=args.sku, location=args.location, qty=args.qty, **common)


def _report(result, ctx, as_json: bool) -> None:
    if as_json:
        print_json({"replayed": result.replayed, "movements": [m.to_dict() for m in result.movements]})
    else:
        for m in result.movements:
            print(m.id)
    if result.replayed:
        info(f"op_id seen before: nothing new written; earlier movement(s) {', '.join(map(str, result.ids))}")
    conn = ctx.app.db.connection()
    for m in result.movements:
        deltas = ", ".join(f"{name} {value:+d}" for name, value in (
            ("on hand", m.d_on_hand), ("reserved", m.d_reserved), ("in transit", m.d_in_transit)) if value)
        where = f"{m.location} → {m.to_location}" if m.to_location else m.location
        lot = f" lot {m.lot}" if m.lot else ""
        refs = f" [{m.ref_type} {m.ref_id}]" if m.ref_type else ""
        info(f"movement {m.id}: {m.kind} {m.sku} at {where}{lot}: {deltas or 'no change'}{refs}")
    for sku, location in dict.fromkeys((m.sku, m.location) for m in result.movements):
        info(f"{sku} at {location}: {queries.available(conn, sku, location)} available")


def cmd_move(args, ctx) -> int:
    move = _build_move(args, ctx)
    result = ctx.app.ledger.post(move, op_id=args.op_id, user=args.user, device=args.device)
    _report(result, ctx, args.json)
    return 0


def cmd_reverse(args, ctx) -> int:
    result = ctx.app.ledger.reverse(args.movement_id, args.reason, op_id=args.op_id, user=args.user, device="cli")
    _report(result, ctx, args.json)
    return 0


def cmd_stock(args, ctx) -> int:
    conn = ctx.app.db.connection()
    if args.as_of:
        lines = queries.stock_as_of(conn, _ts(args.as_of, ctx, "as-of"), sku=args.sku, location=args.location,
                                    site=args.site, by_lot=args.lots, include_empty=args.all)
        lines = lines[args.offset:args.offset + args.limit if args.limit else None]
    else:
        lines = queries.stock_levels(conn, sku=args.sku, location=args.location, site=args.site, search=args.search,
                                     by_lot=args.lots, include_empty=args.all, sort=args.sort, limit=args.limit,
                                     offset=args.offset)
    if args.by_site:
        return _print_by_site(lines, args.json)
    if args.json:
        print_json([line.to_dict() for line in lines])
        return 0
    lot_headers = ["lot", "expiry"] if args.lots else []
    print_table(["sku", "location"] + lot_headers + ["on_hand", "reserved", "available", "in_transit", "name"],
                [[ln.sku, ln.location] + ([ln.lot or "-", ln.expiry] if args.lots else [])
                 + [ln.on_hand, ln.reserved, ln.available, ln.in_transit, ln.name] for ln in lines])
    return 0


def _print_by_site(lines, as_json: bool) -> int:
    totals: dict[tuple[str, str], dict] = {}
    for line in lines:
        for site in (line.site, "ALL"):
            row = totals.setdefault((line.sku, site), {"sku": line.sku, "name": line.name, "site": site,
                                                       "on_hand": 0, "reserved": 0, "available": 0, "in_transit": 0})
            for key in ("on_hand", "reserved", "available", "in_transit"):
                row[key] += getattr(line, key)
    rows = [totals[key] for key in sorted(totals, key=lambda k: (k[0], k[1] == "ALL", k[1]))]
    if as_json:
        print_json(rows)
    else:
        print_table(["sku", "site", "on_hand", "reserved", "available", "in_transit", "name"],
                    [[r["sku"], r["site"], r["on_hand"], r["reserved"], r["available"], r["in_transit"], r["name"]]
                     for r in rows])
    return 0


def cmd_history(args, ctx) -> int:
    conn = ctx.app.db.connection()
    records = queries.history(conn, sku=args.sku, location=args.location, kind=args.kind, user=args.user,
                              ref=args.ref, since=_ts(args.since, ctx, "since"), until=_ts(args.until, ctx, "until"),
                              origin=args.origin, limit=args.limit or None, offset=args.offset,
                              newest_first=not args.oldest_first)
    if args.json:
        print_json([m.to_dict() for m in records])
        return 0
    print_table(["id", "ts", "kind", "sku", "location", "lot", "on_hand", "reserved", "in_transit", "ref", "user",
                 "reason"],
                [[m.id, m.ts[:19].replace("T", " "), m.kind, m.sku,
                  f"{m.location}>{m.to_location}" if m.to_location else m.location, m.lot, m.d_on_hand,
                  m.d_reserved, m.d_in_transit, f"{m.ref_type}:{m.ref_id}" if m.ref_type else "", m.user,
                  m.reason] for m in records])
    return 0


def cmd_check(args, ctx) -> int:
    conn = ctx.app.db.connection()
    differences = check(conn, signatures=args.signatures)
    movements, rows = conn.execute("SELECT (SELECT count(*) FROM movement), (SELECT count(*) FROM stock)").fetchone()
    if args.json:
        print_json({"consistent": not differences, "movements": movements, "stock_rows": rows,
                    "differences": [d.to_dict() for d in differences]})
    elif differences:
        for d in differences:
            print(f"{d.what}: {d.message}")
        info(f"{len(differences)} difference(s) between the stock projection and {movements} movements")
    else:
        print(f"consistent: {movements} movements, {rows} stock rows")
    return EXIT_FAILURE if differences else 0


def cmd_reservations_list(args, ctx) -> int:
    conn = ctx.app.db.connection()
    rows = [dict(zip(("id", "sku", "location", "lot", "qty", "consumed", "released", "ref", "status",
                      "expires_at", "created_at"), r)) for r in conn.execute(
        "SELECT r.id, v.sku, l.code, r.lot, r.qty, r.qty_consumed, r.qty_released, r.ref, r.status, r.expires_at,"
        " r.created_at FROM reservation r JOIN variant v ON v.id = r.variant_id JOIN location l ON l.id = r.location_id"
        " WHERE ? IS NULL OR r.status = ? ORDER BY r.id", (args.status, args.status))]
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "sku", "location", "qty", "consumed", "released", "status", "ref", "expires_at"],
                    [[r["id"], r["sku"], r["location"], r["qty"], r["consumed"], r["released"], r["status"], r["ref"],
                      r["expires_at"]] for r in rows])
    return 0


def cmd_reservations_expire(args, ctx) -> int:
    for reservation_id in ctx.app.ledger.expire_reservations():
        print(reservation_id)
    return 0


def cmd_transfers_list(args, ctx) -> int:
    conn = ctx.app.db.connection()
    rows = [dict(zip(("code", "sku", "from", "to", "sent", "received", "short", "over", "status", "created_at"), r))
            for r in conn.execute(
                "SELECT t.code, v.sku, f.code, d.code, t.qty_sent, t.qty_received, t.qty_short, t.qty_over, t.status,"
                " t.created_at FROM transfer t JOIN variant v ON v.id = t.variant_id"
                " JOIN location f ON f.id = t.from_location_id JOIN location d ON d.id = t.to_location_id"
                " WHERE NOT ? OR t.status IN ('in_transit', 'partial') ORDER BY t.id", (args.open,))]
    if args.json:
        print_json(rows)
    else:
        print_table(["code", "sku", "from", "to", "sent", "received", "short", "over", "status"],
                    [[r["code"], r["sku"], r["from"], r["to"], r["sent"], r["received"], r["short"], r["over"],
                      r["status"]] for r in rows])
    return 0
