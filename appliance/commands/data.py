"""import, export."""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.commands.output import info
from appliance.config import currency_digits
from appliance.ledger import csv_export


def register(commands) -> None:
    imp = commands.add_parser("import", help="import data from CSV").add_subparsers(
        dest="import_what", metavar="WHAT", required=True)
    p = imp.add_parser("products", help="create or update products and variants from a CSV file",
                       description="Every row is validated first; if any row is bad nothing is imported "
                       "(unless --skip-bad) and each bad row is listed with its line, column and reason.")
    p.add_argument("file", type=Path)
    p.add_argument("--skip-bad", action="store_true", help="import the good rows, report the bad ones")
    p.add_argument("--encoding", help="file encoding when not UTF-8, e.g. cp1252 (Western Excel) or "
                   "cp1250 (Polish Excel)")
    p.set_defaults(handler=cmd_import_products)

    p = commands.add_parser("export", help="export products, stock or movements to CSV")
    p.add_argument("what", choices=["products", "stock", "movements"])
    p.add_argument("--out", required=True, metavar="FILE", help="output file, or - for standard output")
    p.set_defaults(handler=cmd_export)


class _Progress:
    """Progress on stderr for files big enough to wait for: a line per 10% (or a live counter on a terminal)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def __call__(self, done: int, total: int, phase: str) -> None:
        if total < 2000:
            return
        if sys.stderr.isatty():
            print(f"\r{phase}: {done}/{total} rows", end="" if done < total else "\n", file=sys.stderr)
            return
        step = done * 10 // total
        if step > self._last.get(phase, -1):
            self._last[phase] = step
            info(f"{phase}: {done}/{total} rows ({step * 10}%)")


def cmd_import_products(args, ctx) -> int:
    from appliance.catalog.csv_import import import_products
    report = import_products(ctx.app.db, args.file, currency_digits=currency_digits(ctx.config.site.currency),
                             skip_bad=args.skip_bad, encoding=args.encoding, progress=_Progress())
    for error in report.errors:
        info(f"skipped {error}")
    print(f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
          f"skipped {report.skipped}")
    return 0


def cmd_export(args, ctx) -> int:
    from appliance.catalog.csv_export import export_products
    conn = ctx.app.db.connection()
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="")
    try:
        if args.what == "products":
            count = export_products(ctx.app.db, out, currency_digits=currency_digits(ctx.config.site.currency))
        elif args.what == "stock":
            count = csv_export.write_stock(conn, out)
        else:
            count = csv_export.write_movements(conn, out)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out != "-":
        info(f"wrote {args.out}" + (f" ({count} rows)" if isinstance(count, int) else ""))
    return 0
