"""po list|show|create|add|send|pdf|receive|cancel: purchase orders from the command line."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from appliance import clock
from appliance.commands.output import info, print_json, print_table
from appliance.commands.purchasing import supplier_id
from appliance.errors import InvalidInput
from appliance.purchasing import orders, reorder
from appliance.purchasing.po_document import load, render_pdf

_RECEIPT = re.compile(r"(\d+):(\d+)(?::([^:]*))?(?::(\d{4}-\d{2}-\d{2}))?")


def register(commands) -> None:
    po = commands.add_parser("po", help="purchase orders").add_subparsers(
        dest="po_command", metavar="ACTION", required=True)
    p = po.add_parser("list", help="list purchase orders, newest first")
    p.add_argument("--status", choices=("draft", "sent", "partial", "received", "cancelled", "open"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_po_list)
    p = po.add_parser("show", help="one purchase order with its lines and history")
    p.add_argument("number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_po_show)
    p = po.add_parser("create", help="start a draft purchase order")
    p.add_argument("--supplier", required=True)
    p.add_argument("--ship-to", help="location code (default: the site's receiving location)")
    p.add_argument("--note", default="")
    p.set_defaults(handler=cmd_po_create)
    p = po.add_parser("add", help="add a line to a draft")
    p.add_argument("number")
    p.add_argument("sku")
    p.add_argument("qty", type=int)
    p.add_argument("--unit-cost", type=int, help="minor units (default: the variant's cost price)")
    p.set_defaults(handler=cmd_po_add)
    p = po.add_parser("send", help="email the PDF to the supplier and mark the order sent")
    p.add_argument("number")
    p.add_argument("--to", help="address (default: the supplier's email)")
    p.add_argument("--no-email", action="store_true", help="only mark it sent (sent another way)")
    p.add_argument("--user")
    p.set_defaults(handler=cmd_po_send)
    p = po.add_parser("pdf", help="write the purchase order as a PDF")
    p.add_argument("number")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(handler=cmd_po_pdf)
    p = po.add_parser("receive", help="book a delivery against the order: LINE:QTY[:LOT[:YYYY-MM-DD]] ...")
    p.add_argument("number")
    p.add_argument("lines", nargs="+", metavar="LINE:QTY[:LOT[:EXPIRY]]")
    p.add_argument("--location", help="where it arrived (default: the order's ship-to)")
    p.add_argument("--user")
    p.set_defaults(handler=cmd_po_receive)
    p = po.add_parser("cancel", help="cancel what has not arrived (the whole order if nothing has)")
    p.add_argument("number")
    p.add_argument("--reason", default="")
    p.add_argument("--user")
    p.set_defaults(handler=cmd_po_cancel)


def cmd_po_list(args, ctx) -> int:
    where, params = "", ()
    if args.status == "open":
        where = "WHERE po.status IN ('draft', 'sent', 'partial')"
    elif args.status:
        where, params = "WHERE po.status = ?", (args.status,)
    rows = ctx.app.db.execute_sql(
        "SELECT po.number, po.status, s.name, l.code, po.created_at, po.sent_at, po.expected_on,"
        " (SELECT count(*) FROM purchase_order_line WHERE po_id = po.id) FROM purchase_order po"
        f" JOIN supplier s ON s.id = po.supplier_id JOIN location l ON l.id = po.ship_to_id {where}"
        " ORDER BY po.id DESC", params).fetchall()
    keys = ("number", "status", "supplier", "ship_to", "created_at", "sent_at", "expected_on", "lines")
    if args.json:
        print_json([dict(zip(keys, row)) for row in rows])
    else:
        print_table(("number", "status", "supplier", "ship to", "expected", "lines"),
                    [(r[0], r[1], r[2], r[3], r[6] or "", r[7]) for r in rows])
    return 0


def cmd_po_show(args, ctx) -> int:
    order = load(ctx.app.db.connection(), args.number)
    if args.json:
        print_json(order.as_dict())
        return 0
    print(f"{order.number}  {order.status}  {order.supplier} -> {order.ship_to}"
          + (f"  expected {order.expected_on}" if order.expected_on else ""))
    print_table(("#", "sku", "ordered", "received", "cancelled", "unit cost"),
                [(l.line_no, l.sku, l.qty_ordered, l.qty_received, l.qty_cancelled,
                  "" if l.unit_cost is None else l.unit_cost) for l in order.lines])
    for ts, kind, user, detail in order.events:
        print(f"  {ts[:19]} {kind}{' by ' + user if user else ''} {detail if detail != '{}' else ''}".rstrip())
    return 0


def cmd_po_create(args, ctx) -> int:
    app = ctx.app
    with app.ledger.write() as ops:
        supplier = supplier_id(ops.conn, args.supplier)
        if args.ship_to:
            loc = ops.conn.execute("SELECT id FROM location WHERE code = ? AND site_id = ?",
                                   (args.ship_to, app.config.site.id)).fetchone()
            if loc is None:
                raise InvalidInput(f"{args.ship_to!r} is not a location of {app.config.site.id}", field="ship_to")
            ship_to = loc[0]
        else:
            ship_to = reorder.Trigger(app).receiving_location(ops.conn)
        _id, number = orders.create(ops.conn, site=app.config.site.id, prefix=app.config.purchasing.po_prefix,
                                    supplier_id=supplier, ship_to_id=ship_to, ts=ops.ts, user=None, note=args.note)
    print(number)
    return 0


def cmd_po_add(args, ctx) -> int:
    with ctx.app.ledger.write() as ops:
        po_id = orders.find(ops.conn, args.number)[0]
        found = ops.conn.execute("SELECT id, cost_price FROM variant WHERE sku = ?", (args.sku,)).fetchone()
        if found is None:
            raise InvalidInput(f"unknown SKU {args.sku!r}", field="sku")
        cost = args.unit_cost if args.unit_cost is not None else found[1]
        line = orders.add_line(ops.conn, po_id, found[0], args.qty, cost, ops.ts)
    info(f"{args.number} line {line}: {args.qty} x {args.sku}")
    return 0


def cmd_po_send(args, ctx) -> int:
    app = ctx.app
    order = load(app.db.connection(), args.number)
    to = args.to or order.supplier_email
    if not args.no_email:
        if app.config.smtp is None:
            raise InvalidInput("no [smtp] section: configure one, or send the PDF yourself (po pdf) and use "
                               "--no-email", field="smtp")
        if not to:
            raise InvalidInput(f"supplier {order.supplier} has no email address: give --to", field="to")
        if order.status not in ("draft", "sent"):
            raise orders.PurchaseOrderState(order.number, order.status, "sent")
        from appliance.notify.mailer import send_email
        pdf = render_pdf(order, app.config.site.currency)
        # Sent first, recorded after: a crash in between means one more email, never an order marked sent
        # that the supplier never got.
        send_email(app.config.smtp, [to], f"Purchase order {order.number} from {order.site_name}",
                   f"Please find purchase order {order.number} attached.\n\n{order.site_name}\n",
                   [(f"{order.number}.pdf", pdf, "application/pdf")])
    with app.ledger.write(user=args.user) as ops:
        today = clock.utcnow().astimezone(ZoneInfo(app.config.site.timezone)).date()
        orders.mark_sent(ops.conn, args.number, ts=ops.ts, user=args.user, sent_to=to or "", today=today)
    info(f"{args.number} sent" + (f" to {to}" if to and not args.no_email else ""))
    return 0


def cmd_po_pdf(args, ctx) -> int:
    order = load(ctx.app.db.connection(), args.number)
    args.out.write_bytes(render_pdf(order, ctx.app.config.site.currency))
    info(f"wrote {args.out}")
    return 0


def parse_receipts(texts: list[str]) -> list[orders.Receipt]:
    out = []
    for text in texts:
        match = _RECEIPT.fullmatch(text)
        if match is None:
            raise InvalidInput(f"{text!r}: a receipt line is LINE:QTY, LINE:QTY:LOT or LINE:QTY:LOT:YYYY-MM-DD",
                               field="lines")
        line, qty, lot, expiry = match.groups()
        out.append(orders.Receipt(int(line), int(qty), lot or "", expiry))
    return out


def cmd_po_receive(args, ctx) -> int:
    receipts = parse_receipts(args.lines)
    with ctx.app.ledger.write(user=args.user, device="cli") as ops:
        records = orders.receive(ops, args.number, receipts, location=args.location)
        status = orders.find(ops.conn, args.number)[1]
    info(f"{args.number}: {len(records)} movement(s) booked; now {status}")
    return 0


def cmd_po_cancel(args, ctx) -> int:
    with ctx.app.ledger.write(user=args.user) as ops:
        status = orders.cancel(ops.conn, args.number, ts=ops.ts, user=args.user, reason=args.reason)
    info(f"{args.number}: {status}")
    return 0



