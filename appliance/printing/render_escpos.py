"""A fitted page as ESC/POS: the same layout printed top to bottom.

Standard mode has no absolute positions, so the page's items are printed in order: text lines with `GS !`
size multipliers and `ESC a` alignment, barcodes with `GS k` (function B), rules as a raster strip, and
`ESC J` feeds for the space between them (one motion unit taken as one dot, true of the common 203 dpi
printers). Then a cut on continuous paper, or `GS FF` (feed to the next label) on gap and mark media.

python-escpos' `Dummy` builds the bytes, so text is encoded in the configured code page by its encoder
(characters the page lacks become '?'). Barcodes go through `_hw_barcode`: the public `barcode()` would pick the
same command but prints "Using hardware barcode renderer" to stdout, which would end up in the CLI's output.
"""

from __future__ import annotations

import codecs

from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy

from appliance.printing.layout import LabelError, Page, Placed, PlacedBarcode, PlacedRule, PlacedText

INIT = b"\x1b@"
FEED_TO_NEXT_LABEL = b"\x1d\x0c"
# Typography the code pages lack, one character for one so the fitted line widths stay true.
PLAIN = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u201e": '"', "\u201c": '"',
                       "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "})


def printable(text: str, codepage: str) -> str:
    """`text` as the printer will show it: plain punctuation, '?' for what the code page cannot encode."""
    text = text.translate(PLAIN)
    try:
        codec = codecs.lookup(codepage.lower()).name
    except LookupError:
        return text
    return text.encode(codec, "replace").decode(codec)


def _feed(printer: Dummy, dots: int) -> None:
    while dots > 0:
        step = min(dots, 255)
        printer._raw(b"\x1bJ" + bytes([step]))
        dots -= step


def rows(items: tuple[Placed, ...]) -> list[list[Placed]]:
    """Items grouped by line: the two texts of a layout Row share a y and print as one line."""
    groups: list[list[Placed]] = []
    for item in items:
        previous = groups[-1][-1] if groups else None
        if isinstance(item, PlacedText) and isinstance(previous, PlacedText) and previous.y == item.y:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def text_lines(page: Page, group: list[PlacedText]) -> tuple[list[str], str, int]:
    """What a text group prints as: its lines, the alignment and the size multiplier (shared with the preview)."""
    first = group[0]
    cell_w, cell_h = page.cell or (12, 24)
    times = max(1, first.size // cell_h)
    lines = [printable(line, page.media.codepage) for line in first.lines]
    if len(group) == 1:
        return lines, first.align, times
    # A row: the right text ends at the right edge of the paper, on the left text's first line.
    columns = page.width // (cell_w * times)
    right = printable(group[1].lines[0], page.media.codepage)
    lines[0] = lines[0] + " " * max(1, columns - len(lines[0]) - len(right)) + right
    return lines, "left", times


def _print_text(printer: Dummy, page: Page, group: list[PlacedText]) -> int:
    lines, align, times = text_lines(page, group)
    printer.set(align=align, bold=True, custom_size=True, width=times, height=times)
    for line in lines:
        printer.textln(line)
    return len(lines) * group[0].pitch


def _print_barcode(printer: Dummy, item: PlacedBarcode) -> int:
    symbol = item.symbol
    try:
        printer._hw_barcode(symbol.escpos_data, symbol.escpos_type, height=item.height, width=item.module,
                            pos="OFF", align_ct=True, function_type="B", check=True)
    except EscposError as exc:
        raise LabelError(f"{item.field}: the printer cannot take {symbol.readable!r} as {symbol.escpos_type} ({exc})",
                         field=item.field) from None
    return item.height


def rule_row(item: PlacedRule) -> bytes:
    """One raster row of a rule: white up to x, black for its width, padded to whole bytes."""
    bits = "0" * item.x + "1" * item.width
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _print_rule(printer: Dummy, item: PlacedRule) -> int:
    # GS v 0: a raster strip `thickness` rows high.
    row = rule_row(item)
    printer._raw(b"\x1dv0\x00" + len(row).to_bytes(2, "little") + item.thickness.to_bytes(2, "little")
                 + row * item.thickness)
    return item.thickness


def render(page: Page, copies: int = 1) -> bytes:
    media = page.media
    printer = Dummy()
    printer._raw(INIT)
    try:
        printer.charcode(media.codepage)
    except (ValueError, LookupError):
        raise LabelError(f"codepage: {media.codepage!r} is not a code page python-escpos knows (e.g. CP852)",
                         field="codepage") from None
    header = printer.output
    printer.clear()
    y = 0
    for group in rows(page.items):
        first = group[0]
        _feed(printer, first.y - y)
        y = first.y
        if isinstance(first, PlacedText):
            y += _print_text(printer, page, group)     # type: ignore[arg-type]
        elif isinstance(first, PlacedBarcode):
            y += _print_barcode(printer, first)
        else:
            y += _print_rule(printer, first)
    printer.set(align="left", bold=False, normal_textsize=True)
    if media.media == "continuous":
        printer.cut()
    else:
        printer._raw(FEED_TO_NEXT_LABEL)
    return header + printer.output * copies
