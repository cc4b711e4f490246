"""barcode parse, scans."""

from __future__ import annotations

from datetime import date

from appliance.commands.output import info, print_json, print_table
from appliance.errors import EXIT_FAILURE, EXIT_INVALID
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
    register_station(commands)


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


def register_station(commands) -> None:
    p = commands.add_parser("scan", help="inject one scan at a station, as if a gun had read it",
                            description="Run one scan through the station's workflow and print the feedback. "
                            "Exit 0 for ok or warning, 1 for an error (the message says why).")
    p.add_argument("station", help="station name, e.g. dock-1")
    p.add_argument("raw", help="the code; write GS as <GS>, other controls as <0x1D>")
    p.add_argument("--device", default="cli", help="device name for the scan log (default cli)")
    p.add_argument("--gs", action="append", metavar="TEXT",
                   help="what the scanner sends instead of GS (0x1D); repeatable (default <GS>)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_scan)

    p = commands.add_parser("link-scan", help="teach the box an unknown code from the scan log: a SKU "
                                              "(or one of its packs) or a new location of this site")
    p.add_argument("scan_id", type=int, metavar="SCAN_ID")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sku", help="the variant the code belongs to")
    what.add_argument("--location", action="store_true", help="create the scanned location code on this site")
    p.add_argument("--pack", help="with --sku: the pack the code is printed on (e.g. case), so one scan counts "
                                  "its units")
    p.add_argument("--replay", action="store_true", help="then replay the scan, as it would have gone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_link)

    p = commands.add_parser("replay-scan", help="replay an unresolved scan (after link-scan) in the session it "
                                                "was scanned in; at most once")
    p.add_argument("scan_id", type=int, metavar="SCAN_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_replay)

    p = commands.add_parser("dismiss-scan", help="mark an unresolved scan as dealt with, without replaying it")
    p.add_argument("scan_id", type=int, metavar="SCAN_ID")
    p.set_defaults(handler=cmd_dismiss)


def _desk(ctx):
    from appliance.scanning.station import StationDesk
    return StationDesk(ctx.app.db, ctx.app.ledger, idle_timeout_s=ctx.config.scanning.idle_timeout_s,
                       config=ctx.app.config)


def _show(feedback, as_json: bool) -> int:
    if as_json:
        print_json(feedback.to_dict())
    else:
        print(f"{feedback.level}: {feedback.message}")
        for line in feedback.stock:
            print(f"  {line.sku} at {line.location}: {line.on_hand} on hand, {line.available} available")
        if feedback.prompt:
            print(f"next: {feedback.prompt}")
    return EXIT_FAILURE if feedback.level == "error" else 0


def cmd_scan(args, ctx) -> int:
    import time
    from appliance.scanning.scan import Scan
    scan = Scan(args.station, args.device, unvisible(args.raw), time.time())
    return _show(_desk(ctx).handle(scan, tuple(args.gs or ("<GS>",))), args.json)


def cmd_link(args, ctx) -> int:
    from appliance.scanning.linking import link
    linked = link(ctx.app.db, ctx.config.site.id, args.scan_id, sku=args.sku, pack=args.pack,
                  location=args.location)
    if not args.replay:
        if args.json:
            print_json(linked)
        else:
            target = f"location {linked['location']}" if linked["location"] else (
                f"{linked['sku']}" + (f" ({linked['pack']})" if linked["pack"] else ""))
            print(f"linked {linked['code']} to {target}")
            if linked["waiting"]:
                info(f"unresolved scans of this code: {', '.join(map(str, linked['waiting']))} "
                     "(appliance replay-scan ID)")
        return 0
    return _show(_desk(ctx).replay(args.scan_id), args.json)


def cmd_replay(args, ctx) -> int:
    return _show(_desk(ctx).replay(args.scan_id), args.json)


def cmd_dismiss(args, ctx) -> int:
    scan_log.dismiss(ctx.app.db, args.scan_id)
    return 0
