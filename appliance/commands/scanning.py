"""barcode parse, scans."""

from __future__ import annotations

from datetime import date

from appliance.commands.output import info, print_json, print_table
from appliance.errors import EXIT_INVALID
from appliance.scanning import scan_log
from appliance.scanning.barcodes import interpret
from appliance.scanning.replay_reader import unvisible
from appliance.scanning.resolve import resolve
from appliance.scanning.scan import visible

SHOWN = ("kind", "symbology", "gtin", "sku", "pack", "units", "lot", "expiry", "best_before", "serial", "quantity",
         "sscc", "location", "location_site", "document", "command", "login", "text")


def register(commands) -> None:
    barcode = commands.add_parser("barcode", help="barcode interpretation").add_subparsers(
        dest="barcode_command", metavar="ACTION", required=True)
    p = barcode.add_parser("parse", help="interpret a scanned code: kind, GTIN, SKU, lot, expiry, serial, "
                                         "quantity, SSCC, location, command, errors")
    p.add_argument("raw", help="the code as scanned; write GS as <GS> (or give --gs), other controls as <0x1D>")
    p.add_argument("--gs", action="append", metavar="TEXT",
                   help="what the scanner sends instead of GS (0x1D), e.g. ~ or |; repeatable (default <GS>)")
    p.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                   help="the date two-digit years are read against (default today)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_parse)

    p = commands.add_parser("scans", help="the scan log: recent scans, or --unresolved ones")
    p.add_argument("--station")
    p.add_argument("--unresolved", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_scans)


def cmd_parse(args, ctx) -> int:
    found = interpret(unvisible(args.raw), gs_substitutes=tuple(args.gs or ("<GS>",)), today=args.today)
    if ctx.config_path is not None:
        result = resolve(ctx.app.db.connection(), found)
    else:
        result = {**found.to_dict(), "sku": None, "pack": None, "units": None, "location_site": None,
                  "resolved": None}
        info("no configuration found: the code is interpreted but not looked up in a catalog")
    if args.json:
        print_json(result)
    else:
        for name in SHOWN:
            if result.get(name) not in (None, "", [], {}):
                print(f"{name}: {visible(result[name]) if isinstance(result[name], str) else result[name]}")
        for key, value in sorted((result.get("measures") or {}).items()):
            print(f"{key}: {value}")
        for message in result["errors"]:
            print(f"error: {message}")
        for message in result["warnings"]:
            print(f"warning: {message}")
    return EXIT_INVALID if result["kind"] == "invalid" or result["errors"] else 0


def cmd_scans(args, ctx) -> int:
    rows = scan_log.recent(ctx.app.db, station=args.station, unresolved=args.unresolved, limit=args.limit)
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "at", "station", "raw", "kind", "outcome", "message"],
                    [[r["id"], r["at"], r["station"], r["raw_visible"], r["kind"] or "", r["outcome"], r["message"]]
                     for r in rows])
    return 0
