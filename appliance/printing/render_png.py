"""A fitted page as a 1-bit PNG at the printer's resolution: what the printer will put on paper.

ZPL pages are drawn where the format places them, text in DejaVu Sans Condensed Bold standing in for font 0;
ESC/POS pages as the printer's flow, each character in its fixed cell, rows composed as render_escpos prints
them. Bars are drawn module by module from the same Symbol the printer is sent, so the preview scans the same.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from appliance.printing.layout import EM_PER_CELL, Page, PlacedBarcode, PlacedRule, PlacedText, font
from appliance.printing.render_escpos import rows, text_lines

BLACK, WHITE = 0, 1
BASELINE = 0.78           # of the cell height, from its top: where font 0 and the ESC/POS fonts sit


def _scalable_text(draw: ImageDraw.ImageDraw, item: PlacedText) -> None:
    face = font(round(item.size * EM_PER_CELL))
    for index, line in enumerate(item.lines):
        width = face.getlength(line)
        x = item.x + {"left": 0, "center": (item.width - width) / 2, "right": item.width - width}[item.align]
        draw.text((round(x), item.y + index * item.pitch + round(item.size * BASELINE)), line, font=face,
                  fill=BLACK, anchor="ls")


def _cell_text(draw: ImageDraw.ImageDraw, page: Page, group: list[PlacedText]) -> None:
    lines, align, times = text_lines(page, group)
    cell_w, cell_h = page.cell or (12, 24)
    step, height = cell_w * times, cell_h * times
    face = font(round(step / 0.602), "mono")       # DejaVu Mono advances 0.602 em: one glyph per cell
    for index, line in enumerate(lines):
        left = {"left": 0, "center": (page.width - len(line) * step) // 2,
                "right": page.width - len(line) * step}[align]
        baseline = group[0].y + index * group[0].pitch + round(height * BASELINE)
        for column, char in enumerate(line):
            draw.text((left + column * step, baseline), char, font=face, fill=BLACK, anchor="ls")


def _barcode(draw: ImageDraw.ImageDraw, item: PlacedBarcode) -> None:
    for index, module in enumerate(item.symbol.modules):
        if module == "1":
            left = item.x + index * item.module
            draw.rectangle((left, item.y, left + item.module - 1, item.y + item.height - 1), fill=BLACK)


def _rule(draw: ImageDraw.ImageDraw, item: PlacedRule) -> None:
    draw.rectangle((item.x, item.y, item.x + item.width - 1, item.y + item.thickness - 1), fill=BLACK)


def image(page: Page) -> Image.Image:
    picture = Image.new("1", (page.width, page.height), WHITE)
    draw = ImageDraw.Draw(picture)
    for group in rows(page.items):
        first = group[0]
        if isinstance(first, PlacedText):
            if page.cell:
                _cell_text(draw, page, group)                      # type: ignore[arg-type]
            else:
                for item in group:
                    _scalable_text(draw, item)                     # type: ignore[arg-type]
        elif isinstance(first, PlacedBarcode):
            _barcode(draw, first)
        elif isinstance(first, PlacedRule):
            _rule(draw, first)
    return picture


def render(page: Page) -> bytes:
    out = io.BytesIO()
    image(page).save(out, "PNG", dpi=(page.media.dpi, page.media.dpi))
    return out.getvalue()
