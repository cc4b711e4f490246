"""print-command-sheet: the appliance's own command, quantity and badge codes on paper. Needs no config or database."""

from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser(
        "print-command-sheet",
        help="write a printable sheet (PDF or PNG, 300 dpi) of command, quantity and badge barcodes for a station")
    p.add_argument("-o", "--out", metavar="FILE", default="command-sheet.pdf",
                   help="FILE.pdf (pages as needed) or FILE.png (FILE-1.png, FILE-2.png ... if it takes more than "
                        "one page); default command-sheet.pdf")
    p.add_argument("--station", metavar="NAME", help="name the station in the title")
    p.add_argument("--paper", choices=("a4", "letter"), default="a4", help="paper size (default a4)")
    p.add_argument("--quantities", metavar="SPEC", default=None,
                   help="quantity codes to include, e.g. 1-10,12,24 (default 1-10,12,24,48,50,100)")
    p.add_argument("--badge", action="append", metavar="LOGIN", default=[],
                   help="add a badge (USR-LOGIN) for this login; repeatable")
    p.set_defaults(handler=cmd_print_command_sheet)


def cmd_print_command_sheet(args, ctx) -> int:
    from appliance.scanning import command_sheet   # Pillow and python-barcode only when a sheet is made

    command_sheet.output_format(args.out)       # a bad name fails before any drawing
    spec = command_sheet.DEFAULT_QUANTITIES if args.quantities is None else args.quantities
    sheet = command_sheet.build_sheet(station=args.station, paper=args.paper,
                                      quantities=command_sheet.parse_quantities(spec), badges=args.badge)
    for path in command_sheet.write_sheet(sheet, args.out):
        print(path)
    return 0
