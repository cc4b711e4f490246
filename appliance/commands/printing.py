"""print label|location|case|preview|queue and printers list|status|discover: labels and printers from the shell.

`print` queues jobs (the agent's spooler sends them, so a printer that is off does not block the command);
`print preview` writes the PNG the chosen printer's label will look like, without queueing anything.
"""

from __future__ import annotations

from pathlib import Path

from appliance import clock
from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput

JOB_STATES = ("queued", "sending", "done", "failed", "uncertain", "cancelled")


def _target_args(p, copies: bool = True) -> None:
    if copies:
        p.add_argument("--copies", type=int, default=1, metavar="N", help="labels to print (default 1)")
    p.add_argument("--printer", metavar="NAME", help="a [[printer]] name (default: the one configured for this "
                   "label type or station, else the default printer)")
    p.add_argument("--station", metavar="STATION", help="pick the printer configured for this station")


def register(commands) -> None:
    prt = commands.add_parser("print", help="print labels (queued for the agent's spooler), preview them, and "
                              "manage the print queue").add_subparsers(dest="print_command", metavar="ACTION",
                                                                      required=True)
    p = prt.add_parser("label", help="a variant's shelf/product label: name, price, barcode")
    p.add_argument("--sku", required=True, metavar="SKU")
    _target_args(p)
    p.set_defaults(handler=cmd_print_label)
    p = prt.add_parser("location", help="a location (bin) label: large code and barcode")
    p.add_argument("code", metavar="CODE")
    _target_args(p)
    p.set_defaults(handler=cmd_print_location)
    p = prt.add_parser("case", help="a GS1-128 case label: GTIN, lot and expiry of a variant")
    p.add_argument("--sku", required=True, metavar="SKU")
    p.add_argument("--lot", required=True, metavar="LOT")
    p.add_argument("--expiry", metavar="YYYY-MM-DD", help="best-before / expiry date (AI 17)")
    p.add_argument("--count", type=int, metavar="N", help="units in the case (AI 30)")
    _target_args(p)
    p.set_defaults(handler=cmd_print_case)
    p = prt.add_parser("transfer", help="the SSCC pallet label and the transfer document for transfers between "
                       "two sites sent together")
    p.add_argument("codes", nargs="+", metavar="CODE", help="transfer codes (WAW-TR-000007)")
    p.add_argument("--only", choices=("pallet", "document"), help="print just one of the two")
    _target_args(p)
    p.set_defaults(handler=cmd_print_transfer)
    p = prt.add_parser("preview", help="write the PNG a label will look like on the chosen printer")
    p.add_argument("label", choices=("variant", "location", "case"), help="which label")
    p.add_argument("value", metavar="SKU_OR_CODE", help="the variant's SKU (variant, case) or a location code")
    p.add_argument("--lot", default="", metavar="LOT", help="for a case label")
    p.add_argument("--expiry", metavar="YYYY-MM-DD", help="for a case label")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.png")
    _target_args(p, copies=False)
    p.set_defaults(handler=cmd_print_preview)
    p = prt.add_parser("queue", help="list print jobs; retry or cancel one")
    p.add_argument("action", nargs="?", default="list", choices=("list", "retry", "cancel"))
    p.add_argument("id", nargs="?", type=int, help="the job (retry, cancel)")
    p.add_argument("--state", choices=JOB_STATES, action="append", help="only jobs in this state (repeatable)")
    p.add_argument("--printer", metavar="NAME", help="list: only this printer's jobs; retry: send it there instead")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="list at most N jobs (default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_print_queue)

    prs = commands.add_parser("printers", help="the configured printers, their status, and printers found on the "
                              "network").add_subparsers(dest="printers_command", metavar="ACTION", required=True)
    p = prs.add_parser("list", help="the [[printer]] entries with their queue")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_printers_list)
    p = prs.add_parser("status", help="ask a ZPL network printer for its status (~HS): paper, head, pause")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_printers_status)
    p = prs.add_parser("discover", help="look for printers on the LAN (zeroconf) and print the entry to paste")
    p.add_argument("--seconds", type=float, default=3.0, metavar="S", help="how long to listen (default 3)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_printers_discover)


def _queue(args, ctx, label: str, data_of) -> int:
    from appliance.printing.service import queue_label
    app = ctx.app
    with app.ledger.write(device="cli") as ops:
        job = queue_label(ops.conn, app.config, label, data_of(ops.conn), now=ops.ts, copies=args.copies,
                          printer=args.printer, station=args.station, user=None)
    info(f"print job {job.id} queued: {label} label x{job.copies} on {job.printer} (the agent sends it; "
         f"`appliance print queue` shows how it went)")
    return 0


def cmd_print_label(args, ctx) -> int:
    from appliance.printing.service import variant_data
    return _queue(args, ctx, "variant", lambda conn: variant_data(conn, ctx.app.config, args.sku))


def cmd_print_location(args, ctx) -> int:
    from appliance.printing.service import location_data
    return _queue(args, ctx, "location", lambda conn: location_data(conn, args.code))


def cmd_print_case(args, ctx) -> int:
    from appliance.printing.service import case_data
    return _queue(args, ctx, "case", lambda conn: case_data(conn, args.sku, args.lot, args.expiry, args.count))


def cmd_print_transfer(args, ctx) -> int:
    from appliance.printing.service import queue_label, transfer_data
    app = ctx.app
    with app.ledger.write(device="cli") as ops:
        pallet, document = transfer_data(ops.conn, args.codes)
        jobs = [queue_label(ops.conn, app.config, label, data, now=ops.ts, copies=args.copies, printer=args.printer,
                            station=args.station, ref_type="transfer", ref_id=pallet["transfer"])
                for label, data in (("sscc", pallet), ("transfer_document", document))
                if args.only in (None, {"sscc": "pallet", "transfer_document": "document"}[label])]
    for job in jobs:
        info(f"print job {job.id} queued: {job.label} label x{job.copies} on {job.printer}")
    return 0


def cmd_print_preview(args, ctx) -> int:
    from appliance.printing.service import case_data, location_data, preview, variant_data
    app = ctx.app
    conn = app.db.connection()
    if args.label == "variant":
        data = variant_data(conn, app.config, args.value)
    elif args.label == "location":
        data = location_data(conn, args.value)
    else:
        data = case_data(conn, args.value, args.lot, args.expiry)
    png, printer = preview(app.config, args.label, data, printer=args.printer, station=args.station)
    args.out.write_bytes(png)
    info(f"{args.out}: {args.label} label as {printer.name} prints it ({printer.dpi} dpi, "
         f"{printer.width_mm:g} x {printer.height_mm:g} mm, {printer.language})")
    return 0


def cmd_print_queue(args, ctx) -> int:
    from appliance.printing import queue
    app = ctx.app
    if args.action == "list":
        if args.id is not None:
            raise InvalidInput("list takes no job id; use --state or --printer to narrow it", field="id")
        jobs = queue.listing(app.db.connection(), states=tuple(args.state or ()), printer=args.printer,
                             limit=args.limit)
        if args.json:
            print_json([job.as_json() for job in jobs])
            return 0
        print_table(["id", "state", "printer", "label", "copies", "tries", "created", "sent", "last error"],
                    [[j.id, j.state, j.printer, j.label, j.copies, j.attempts, _short(j.created_at),
                      _short(j.sent_at), (j.last_error or "-")[:60]] for j in jobs])
        return 0
    if args.id is None:
        raise InvalidInput(f"{args.action} needs the job id: appliance print queue {args.action} ID", field="id")
    with app.ledger.write(device="cli") as ops:
        if args.action == "cancel":
            job = queue.cancel(ops.conn, args.id, ops.ts)
            message = f"print job {job.id} cancelled"
        else:
            if args.printer:
                from appliance.printing.service import printer_named
                printer_named(app.config, args.printer)   # refuses an unknown name
            job = queue.requeue(ops.conn, args.id, ops.ts, printer=args.printer)
            message = (f"print job {args.id} printed again as job {job.id}" if job.id != args.id else
                       f"print job {job.id} queued again")
            message += f" on {job.printer}"
    if args.json:
        print_json(job.as_json())
    else:
        info(message)
    return 0


def _short(ts: str | None) -> str:
    return clock.parse_ts(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def cmd_printers_list(args, ctx) -> int:
    app = ctx.app
    conn = app.db.connection()
    counts = {(printer, state): n for printer, state, n in conn.execute(
        "SELECT printer, state, count(*) FROM print_job WHERE state IN ('queued', 'failed', 'uncertain')"
        " GROUP BY printer, state")}
    rows = []
    for p in app.config.printers:
        where = f"{p.host}:{p.port}" if p.kind in ("zpl_tcp", "escpos_network") else \
            str(p.device or p.path or p.usb or "")
        rows.append({"name": p.name, "kind": p.kind, "language": p.language, "where": where, "dpi": p.dpi,
                     "size_mm": f"{p.width_mm:g}x{p.height_mm:g}", "labels": p.label_list(),
                     "stations": p.station_list(), "default": p.default,
                     "queued": counts.get((p.name, "queued"), 0), "failed": counts.get((p.name, "failed"), 0),
                     "uncertain": counts.get((p.name, "uncertain"), 0)})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        info("no printers configured: add [[printer]] entries (`appliance printers discover` helps)")
        return 0
    print_table(["name", "kind", "where", "dpi", "size mm", "default for", "queued", "failed", "uncertain"],
                [[r["name"], r["kind"], r["where"], r["dpi"], r["size_mm"],
                  ", ".join([*r["labels"], *r["stations"]] + (["everything else"] if r["default"] else [])) or "-",
                  r["queued"], r["failed"], r["uncertain"]] for r in rows])
    return 0


def cmd_printers_status(args, ctx) -> int:
    from appliance.errors import ApplianceError
    from appliance.printing import status
    from appliance.printing.service import printer_named
    from appliance.printing.transport import SendError
    printer = printer_named(ctx.app.config, args.name)
    try:
        found = status.query(printer)   # refuses a printer that is not zpl_tcp, naming its kind
    except SendError as exc:   # unreachable, or silent (some models are while paper is out)
        raise ApplianceError(str(exc)) from exc
    except ValueError as exc:
        raise ApplianceError(f"{printer.name}: {exc}") from exc
    if args.json:
        print_json({"printer": printer.name, "ready": not found.problems, "problems": found.problems,
                    "paper_out": found.paper_out, "paused": found.paused, "head_open": found.head_open,
                    "ribbon_out": found.ribbon_out, "labels_queued": found.labels_queued})
        return 0
    info(f"{printer.name}: " + (", ".join(found.problems) if found.problems else "ready") +
         f" ({found.labels_queued} format(s) in its buffer)")
    return 0 if not found.problems else 1


def cmd_printers_discover(args, ctx) -> int:
    from appliance.printing.discover import browse, stanza
    if not 0 < args.seconds <= 60:
        raise InvalidInput("--seconds must be more than 0 and at most 60", field="seconds")
    found = browse(args.seconds)
    if args.json:
        print_json([{**f.__dict__, "stanza": stanza(f)} for f in found])
        return 0
    if not found:
        info(f"no printer answered within {args.seconds:g}s (printers announce _pdl-datastream._tcp or "
             "_printer._tcp; one with zeroconf turned off can still be configured by its address)")
        return 0
    for f in found:
        print(f"# {f.name} — {f.model or 'unknown model'} at {f.address}:{f.port} ({f.service})")
        print(stanza(f))
    return 0

