"""po list|show|create|add|send|pdf|receive|cancel: purchase orders from the command line.

The operations themselves are purchasing/service.py, shared with /api/v1/purchase-orders: these functions
parse the arguments and print the outcome.
"""

from __future__ import annotations

import re
from pathlib import Path

from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput
from appliance.purchasing import orders, service
from appliance.purchasing.po_document import load, render_pdf

_RECEIPT = re.compile(r"(\d+):(\d+)(?::([^:]*))?(?::(\d{4}-\d{2}-\d{2}))?")


def register(commands) -> None:
    po = commands.add_parser("po", help="purchase orders").add_subparsers(
        dest="po_command", metavar="ACTION", required=True)
    p = po.add_parser("list", help="list purchase orders, newest first")
    p.add_argument("--status", choices=service.LIST_STATUSES)
    p.add_argument("--supplier", help="only this supplier's orders (name)")
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
    p.add_argument("--labels", action="store_true", help="queue one receiving label per unit received")
    p.add_argument("--printer", metavar="NAME", help="with --labels: the printer (default: the one for "
                   "po_receiving labels, else the default)")
    p.set_defaults(handler=cmd_po_receive)
    p = po.add_parser("cancel", help="cancel what has not arrived (the whole order if nothing has)")
    p.add_argument("number")
    p.add_argument("--reason", default="")
    p.add_argument("--user")
    p.set_defaults(handler=cmd_po_cancel)


def cmd_po_list(args, ctx) -> int:
    rows = service.list_orders(ctx.app.db.connection(), status=args.status, supplier=args.supplier)
    if args.json:
        print_json(rows)
    else:
        print_table(("number", "status", "supplier", "ship to", "expected", "lines"),
                    [(r["number"], r["status"], r["supplier"], r["ship_to"], r["expected_on"] or "", r["lines"])
                     for r in rows])
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
    print(service.create(ctx.app, supplier=args.supplier, ship_to=args.ship_to, note=args.note))
    return 0


def cmd_po_add(args, ctx) -> int:
    line = service.add_line(ctx.app, args.number, service.NewLine(args.sku, args.qty, args.unit_cost))
    info(f"{args.number} line {line}: {args.qty} x {args.sku}")
    return 0


def cmd_po_send(args, ctx) -> int:
    emailed = service.send(ctx.app, args.number, to=args.to, email=not args.no_email, user=args.user)
    info(f"{args.number} sent" + (f" to {emailed}" if emailed else ""))
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
    received = service.receive(ctx.app, args.number, parse_receipts(args.lines), location=args.location,
                               user=args.user, device="cli", labels=args.labels, printer=args.printer)
    info(f"{args.number}: {len(received.movements)} movement(s) booked; now {received.status}")
    if received.print_jobs:
        info(f"receiving labels queued: job(s) {', '.join(map(str, received.print_jobs))}")
    return 0


def cmd_po_cancel(args, ctx) -> int:
    info(f"{args.number}: {service.cancel(ctx.app, args.number, reason=args.reason, user=args.user)}")
    return 0
