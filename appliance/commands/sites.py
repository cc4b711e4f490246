"""site export-key, site add, site list: the registry of sites and their public keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from appliance.commands.output import info, print_json, print_table
from appliance.sync import registry


def register(commands) -> None:
    site = commands.add_parser("site", help="the site registry: public keys of every site").add_subparsers(
        dest="site_command", metavar="ACTION", required=True)
    p = site.add_parser("export-key", help="print this site's registry entry (public key, location prefix)")
    p.add_argument("--out", metavar="FILE", help="write it to FILE instead of standard output")
    p.set_defaults(handler=cmd_export_key)
    p = site.add_parser("add", help="register another site from the entry its box exported")
    p.add_argument("file", help="the exported entry (JSON), or - for standard input")
    p.set_defaults(handler=cmd_add)
    p = site.add_parser("list", help="list known sites and their keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


def cmd_export_key(args, ctx) -> int:
    text = json.dumps(registry.export_entry(ctx.app.db, ctx.config.site.id), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        info(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_add(args, ctx) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    entry = registry.parse_entry(text, "standard input" if args.file == "-" else args.file)
    added = registry.add_entry(ctx.app.db, entry)
    info(f"site {entry['site']} ({entry['name']}) {'added' if added else 'already known, updated'} "
         f"with key {entry['kid']}")
    print(entry["site"])
    return 0


def cmd_list(args, ctx) -> int:
    rows = registry.list_sites(ctx.app.db)
    if args.json:
        print_json(rows)
    else:
        print_table(["site", "name", "local", "prefix", "kid", "public_key"],
                    [[r["site"], r["name"], "yes" if r["local"] else "", r["location_prefix"], r["kid"],
                      r["public_key"]] for r in rows])
    return 0
