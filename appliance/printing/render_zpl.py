"""A fitted page as one ZPL II format: `^XA` ... `^PQ` copies ... `^XZ`.

One format per job, whatever the copies: the spooler and the printer's buffer count jobs as formats.
Text goes in UTF-8 (`^CI28`) through `^FH` so that `^`, `~` and `_` in a product name are data, never
commands; inside `^FB` blocks `\\` is the block's own escape, so a backslash is doubled.
"""

from __future__ import annotations

from appliance.printing.layout import Page, PlacedBarcode, PlacedRule, PlacedText
from appliance.printing.media import Media

MEDIA_TRACKING = {"gap": "Y", "mark": "M", "continuous": "N"}
JUSTIFY = {"left": "L", "center": "C", "right": "R"}


def field_text(text: str) -> str:
    """Text as ^FH field data: the three characters ZPL would act on as hex escapes (with `_` as indicator)."""
    escaped = text.replace("\\", "\\\\")
    return "".join(f"_{ord(char):02X}" if char in "^~_" else char for char in escaped)


def _text(item: PlacedText) -> str:
    spacing = item.pitch - item.size
    data = "\\&".join(field_text(line) for line in item.lines)     # \& is ^FB's line break
    return (f"^FO{item.x},{item.y}^A0N,{item.size},{item.size}"
            f"^FB{item.width},{len(item.lines)},{spacing},{JUSTIFY[item.align]},0^FH^FD{data}^FS")


def _barcode(item: PlacedBarcode) -> str:
    symbol = item.symbol
    head = f"^FO{item.x},{item.y}^BY{item.module}"
    if symbol.kind == "ean13":
        return f"{head}^BEN,{item.height},N,N^FD{symbol.zpl}^FS"
    if symbol.kind == "upca":
        return f"{head}^BUN,{item.height},N,N,Y^FD{symbol.zpl}^FS"
    # Mode N: the data carries its own start, code-set switches and FNC1 (barcode_code128), so the printer
    # draws exactly the symbol that was measured and previewed.
    return f"{head}^BCN,{item.height},N,N,N,N^FD{symbol.zpl}^FS"


def _rule(item: PlacedRule) -> str:
    return f"^FO{item.x},{item.y}^GB{item.width},{item.thickness},{item.thickness}^FS"


def _setup(media: Media, page: Page) -> list[str]:
    x, y = media.dots(media.offset_x_mm), media.dots(media.offset_y_mm)
    lines = ["^XA", "^CI28", f"^PW{page.width}", f"^LL{page.height}", f"^MN{MEDIA_TRACKING[media.media]}",
             f"^LH{max(x, 0)},{max(y, 0)}"]
    # ^LH takes no negative numbers; moving left or up is ^LS (positive shifts left) and ^LT.
    if x < 0:
        lines.append(f"^LS{-x}")
    if y < 0:
        lines.append(f"^LT{y}")
    if media.darkness >= 0:
        lines.append(f"~SD{media.darkness:02d}")
    if media.speed > 0:
        lines.append(f"^PR{media.speed}")
    return lines


def render(page: Page, copies: int = 1) -> bytes:
    lines = _setup(page.media, page)
    for item in page.items:
        if isinstance(item, PlacedText):
            lines.append(_text(item))
        elif isinstance(item, PlacedBarcode):
            lines.append(_barcode(item))
        else:
            lines.append(_rule(item))
    lines += [f"^PQ{copies}", "^XZ"]
    return ("\n".join(lines) + "\n").encode("utf-8")
