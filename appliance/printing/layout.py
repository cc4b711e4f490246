"""A label as a column of blocks in millimetres, fitted to one printer's media in dots.

Label types (labels.py) describe *what* goes on a label, top to bottom, with preferred and minimum sizes in mm;
`fit` turns that into positions in dots for one `Media`, so the same description gives the same-looking label
at 203, 300 and 600 dpi. The renderers (ZPL, ESC/POS, PNG) only draw a fitted `Page`; none of them decides a
size or a line break, so the preview cannot disagree with the print.

Fitting, in order: every block is laid out at its preferred size; while the column is taller than the label,
text sizes and bar heights shrink together (never under their minimum); a list (`Items`) then takes the room
left, shrinking and finally ending with "and N more". Text too long for its lines at the minimum size, a
barcode that cannot fit at 0.19 mm per module, or a column that still does not fit raise `LabelError` naming
the field. Room left over goes back to the bars, then between the blocks.

Two ways to measure text: ZPL printers scale their font 0 to any height, measured here with DejaVu Sans
Condensed Bold (close to it in width, and drawn in the preview); ESC/POS printers have a fixed-cell font
(12 x 24 dots at 203 dpi) enlarged by whole multipliers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from appliance.errors import InvalidInput
from appliance.printing.barcode_symbols import Symbol
from appliance.printing.media import Media

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MIN_MODULE_MM = 0.19          # narrower bars are not read reliably by ordinary scanners
MIN_TEXT_MM = 1.5             # 12 dots at 203 dpi: the smallest font-0 text people still read
GAP_MM = 0.8                  # between blocks
MAX_SPREAD_MM = 3.0           # leftover room added to each gap at most; the rest stays at the bottom
EM_PER_CELL = 0.9             # DejaVu em for a font-0 cell height: caps and descenders stay inside the cell
WIDTH_SAFETY = 0.95           # wrap a little early: the printer's font 0 may be a touch wider than DejaVu
CELL_MM = (1.5, 3.0)          # ESC/POS font A cell (12 x 24 dots at 203 dpi)
LINE_MM = 3.75                # ESC/POS default line feed (30 dots at 203 dpi)


class LabelError(InvalidInput):
    """Label data that is wrong, or content that cannot fit the printer's label; says which field and why."""

    code = "label_error"


# ---- the description -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Text:
    field: str
    text: str
    size: float                       # preferred cell height, mm
    min_size: float = MIN_TEXT_MM
    max_lines: int = 1
    align: str = "left"               # left | center | right


@dataclass(frozen=True)
class Row:
    """Two texts on one line (left grows, right takes what it needs); stacked when they cannot share it."""
    left: Text
    right: Text


@dataclass(frozen=True)
class Barcode:
    field: str
    symbol: Symbol
    height: float                     # preferred bar height, mm
    min_height: float
    caption: Text | None = None       # human-readable text under the bars
    module_mm: float = 0.33           # preferred module width; narrower when the label is too narrow


@dataclass(frozen=True)
class Items:
    """A list that may lose its tail when the label is short: the last line then says how many are missing."""
    field: str
    lines: tuple[str, ...]
    size: float
    min_size: float = MIN_TEXT_MM
    more: str = "and {n} more"


@dataclass(frozen=True)
class Rule:
    """A thin line across the label."""
    thickness_mm: float = 0.3


Block = Text | Row | Barcode | Items | Rule


# ---- the fitted page -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlacedText:
    field: str
    lines: tuple[str, ...]
    x: int
    y: int
    width: int                        # the box the lines are aligned in
    size: int                         # cell height in dots
    pitch: int                        # dots from one line's top to the next
    align: str


@dataclass(frozen=True)
class PlacedBarcode:
    field: str
    symbol: Symbol
    x: int                            # left edge of the first bar
    y: int
    module: int                       # dots per module
    height: int


@dataclass(frozen=True)
class PlacedRule:
    x: int
    y: int
    width: int
    thickness: int


Placed = PlacedText | PlacedBarcode | PlacedRule


@dataclass(frozen=True)
class Page:
    media: Media
    width: int
    height: int
    items: tuple[Placed, ...]
    cell: tuple[int, int] | None      # ESC/POS character cell (w, h) at x1; None for scalable ZPL text


# ---- measuring -------------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def font(pixels: int, kind: str = "condensed") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu at `pixels` em: condensed bold for ZPL text, mono bold for ESC/POS cells; Pillow's own font
    when DejaVu is missing (previews still work, metrics get rougher)."""
    name = {"condensed": "DejaVuSansCondensed-Bold.ttf", "mono": "DejaVuSansMono-Bold.ttf"}[kind]
    try:
        return ImageFont.truetype(str(FONT_DIR / name), max(1, pixels))
    except OSError:
        return ImageFont.load_default(size=max(1, pixels))


class Scalable:
    """ZPL font 0: any height in dots."""

    def __init__(self, media: Media) -> None:
        self.media = media
        self.margin_x = self.margin_y = media.dots(1.5)
        self.blank_outside = 0        # the label ends at its edge
        self.module_range = (1, 10)   # ^BY accepts 1-10
        self.max_bar = 9999
        self.cell = None

    def sizes(self, preferred_mm: float, minimum_mm: float) -> list[int]:
        top, bottom = self.media.dots(preferred_mm), max(1, self.media.dots(minimum_mm))
        out, size = [], max(top, bottom)
        while size > bottom:
            out.append(size)
            size -= max(1, round(size * 0.05))
        return out + [bottom]

    def width(self, text: str, size: int) -> int:
        return math.ceil(font(round(size * EM_PER_CELL)).getlength(text) / WIDTH_SAFETY)

    def pitch(self, size: int) -> int:
        return round(size * 1.12)

    def height(self, lines: int, size: int) -> int:
        return (lines - 1) * self.pitch(size) + size if lines else 0


class Cells:
    """ESC/POS font A: a fixed cell, enlarged by whole multipliers 1-8 (`GS !`)."""

    def __init__(self, media: Media) -> None:
        self.media = media
        self.margin_x = 0             # the configured width is the printable width already
        self.blank_outside = media.dots(4.0)  # 80 mm paper printed 72 mm wide: blank paper for quiet zones
        self.margin_y = media.dots(1.0)
        self.module_range = (2, 6)    # GS w accepts 2-6
        self.max_bar = 255            # GS h is one byte
        self.cell = (media.dots(CELL_MM[0]), media.dots(CELL_MM[1]))

    def sizes(self, preferred_mm: float, minimum_mm: float) -> list[int]:
        cell_h = self.cell[1]
        most = max(1, min(8, math.floor(self.media.dots(preferred_mm) / cell_h + 0.25)))
        return [cell_h * times for times in range(most, 0, -1)]

    def width(self, text: str, size: int) -> int:
        return len(text) * self.cell[0] * (size // self.cell[1])

    def pitch(self, size: int) -> int:
        return max(self.media.dots(LINE_MM), size)

    def height(self, lines: int, size: int) -> int:
        return lines * self.pitch(size)


Metrics = Scalable | Cells


def metrics_for(media: Media) -> Metrics:
    return Scalable(media) if media.language == "zpl" else Cells(media)


def wrap(text: str, width: int, size: int, metrics: Metrics) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters rather than cut."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else word
            if metrics.width(trial, size) <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if line and metrics.width(line + char, size) > width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return [line for line in lines if line] or [""]


# ---- fitting ---------------------------------------------------------------------------------------------

@dataclass
class _Laid:
    height: int
    place: Callable[[int, int, int], list[Placed]]    # (x, y, extra bar height) -> placed items
    bar_room: int = 0                                 # how much taller the bars may still grow


def _text(block: Text, metrics: Metrics, width: int, scale: float) -> tuple[list[str], int]:
    """Lines and size of a text block at `scale`: the largest size that fits its lines, never under minimum."""
    target = max(block.size * scale, block.min_size)
    sizes = metrics.sizes(target, block.min_size)
    for size in sizes:
        lines = wrap(block.text, width, size, metrics)
        if len(lines) <= block.max_lines:
            return lines, size
    needed = len(wrap(block.text, width, sizes[-1], metrics))
    raise LabelError(f"{block.field}: {block.text[:40]!r}{'…' if len(block.text) > 40 else ''} needs {needed} "
                     f"lines at the smallest readable size, the label has room for {block.max_lines} on "
                     f"{metrics.media.describe()}", field=block.field)


def _lay_text(block: Text, metrics: Metrics, width: int, scale: float) -> _Laid:
    lines, size = _text(block, metrics, width, scale)

    def place(x: int, y: int, _extra: int) -> list[Placed]:
        return [PlacedText(block.field, tuple(lines), x, y, width, size, metrics.pitch(size), block.align)]
    return _Laid(metrics.height(len(lines), size), place)


def _lay_row(block: Row, metrics: Metrics, width: int, scale: float) -> _Laid:
    left, right = block.left, block.right
    gap = metrics.media.dots(2.0)
    target = max(left.size * scale, left.min_size)
    for size in metrics.sizes(target, left.min_size):
        right_width = metrics.width(right.text, size)
        left_width = width - right_width - gap
        if left_width > 0 and len(wrap(left.text, left_width, size, metrics)) <= left.max_lines:
            lines = wrap(left.text, left_width, size, metrics)

            def place(x: int, y: int, _extra: int, size=size, lines=lines, left_width=left_width,
                      right_width=right_width) -> list[Placed]:
                pitch = metrics.pitch(size)
                return [PlacedText(left.field, tuple(lines), x, y, left_width, size, pitch, "left"),
                        PlacedText(right.field, (right.text,), x + width - right_width, y, right_width, size,
                                   pitch, "right")]
            return _Laid(metrics.height(len(lines), size), place)
    # Too long to share a line even at the smallest size: one under the other.
    top = _lay_text(left, metrics, width, scale)
    bottom = _lay_text(Text(right.field, right.text, right.size, right.min_size, right.max_lines, "right"),
                       metrics, width, scale)
    return _Laid(top.height + bottom.height,
                 lambda x, y, extra: top.place(x, y, 0) + bottom.place(x, y + top.height, 0))


def module_for(block: Barcode, metrics: Metrics, page_width: int, width: int) -> int:
    """Whole dots per module: near the preferred width, narrower until the symbol and its quiet zones fit."""
    media = metrics.media
    low, high = metrics.module_range
    smallest = max(low, math.ceil(MIN_MODULE_MM * media.dpi / 25.4 - 1e-9))
    preferred = min(high, max(smallest, round(block.module_mm * media.dpi / 25.4)))
    for module in range(preferred, smallest - 1, -1):
        if len(block.symbol.modules) * module <= width and block.symbol.width * module <= page_width + 2 * metrics.blank_outside:
            return module
    need = media.mm(block.symbol.width * smallest)
    raise LabelError(f"{block.field}: the barcode for {block.symbol.readable!r} needs {need:.1f} mm at the smallest "
                     f"readable module width ({media.mm(smallest):.2f} mm), wider than the "
                     f"{media.width_mm:g} mm label ({media.describe()})", field=block.field)


def _lay_barcode(block: Barcode, metrics: Metrics, page_width: int, width: int, scale: float) -> _Laid:
    media = metrics.media
    module = module_for(block, metrics, page_width, width)
    most = min(metrics.max_bar, media.dots(block.height))
    bar = min(most, max(media.dots(block.min_height), media.dots(block.height * scale)))
    caption = _lay_text(block.caption, metrics, width, scale) if block.caption else None
    caption_gap = media.dots(0.5) if caption else 0
    bars = len(block.symbol.modules) * module

    def place(x: int, y: int, extra: int) -> list[Placed]:
        left = x + (width - bars) // 2
        out: list[Placed] = [PlacedBarcode(block.field, block.symbol, left, y, module, bar + extra)]
        if caption:
            out += caption.place(x, y + bar + extra + caption_gap, 0)
        return out
    return _Laid(bar + caption_gap + (caption.height if caption else 0), place, most - bar)


def _lay_rule(block: Rule, metrics: Metrics, width: int) -> _Laid:
    thickness = max(1, metrics.media.dots(block.thickness_mm))
    return _Laid(thickness, lambda x, y, extra: [PlacedRule(x, y, width, thickness)])


def _lay_items(block: Items, metrics: Metrics, width: int, room: int) -> _Laid:
    """As many list lines as fit `room`, largest size first; at the minimum size the tail becomes 'and N more'."""
    sizes = metrics.sizes(block.size, block.min_size)
    for size in sizes:
        wrapped = [wrap(line, width, size, metrics) for line in block.lines]
        if metrics.height(sum(map(len, wrapped)), size) <= room:
            return _items_laid(block, metrics, width, size, [line for item in wrapped for line in item])
    size = sizes[-1]
    wrapped = [wrap(line, width, size, metrics) for line in block.lines]
    for keep in range(len(block.lines) - 1, -1, -1):
        lines = [line for item in wrapped[:keep] for line in item]
        lines.append(block.more.format(n=len(block.lines) - keep))
        if metrics.height(len(lines), size) <= room:
            return _items_laid(block, metrics, width, size, lines)
    raise LabelError(f"{block.field}: no room left on the label for even one line of it "
                     f"({metrics.media.describe()})", field=block.field)


def _items_laid(block: Items, metrics: Metrics, width: int, size: int, lines: list[str]) -> _Laid:
    def place(x: int, y: int, _extra: int) -> list[Placed]:
        return [PlacedText(block.field, tuple(lines), x, y, width, size, metrics.pitch(size), "left")]
    return _Laid(metrics.height(len(lines), size), place)


def fit(blocks: Sequence[Block], media: Media) -> Page:
    metrics = metrics_for(media)
    page_width = media.dots(media.width_mm)
    page_height = media.dots(media.height_mm)
    width = page_width - 2 * metrics.margin_x
    room = page_height - 2 * metrics.margin_y
    gap = media.dots(GAP_MM)
    gaps = gap * (len(blocks) - 1)
    items_at = [i for i, block in enumerate(blocks) if isinstance(block, Items)]
    if len(items_at) > 1:
        raise ValueError("a layout takes at most one Items block")

    def lay(block: Block, scale: float) -> _Laid:
        if isinstance(block, Text):
            return _lay_text(block, metrics, width, scale)
        if isinstance(block, Row):
            return _lay_row(block, metrics, width, scale)
        if isinstance(block, Barcode):
            return _lay_barcode(block, metrics, page_width, width, scale)
        if isinstance(block, Rule):
            return _lay_rule(block, metrics, width)
        raise TypeError(block)

    # The list's own minimum: one line at its smallest size (the "and N more" line).
    reserve = metrics.height(1, metrics.sizes(blocks[items_at[0]].size, blocks[items_at[0]].min_size)[-1]) \
        if items_at else 0
    laid: list[_Laid | None] = []
    for step in range(21):
        scale = 1.0 - step * 0.05
        laid = [None if isinstance(block, Items) else lay(block, scale) for block in blocks]
        fixed = sum(part.height for part in laid if part)
        if fixed + gaps + reserve <= room:
            break
    else:
        tallest = max((pair for pair in zip(laid, blocks) if pair[0] and not isinstance(pair[1], Rule)),
                      key=lambda pair: pair[0].height)[1]
        field = tallest.left.field if isinstance(tallest, Row) else getattr(tallest, "field", "label")
        needed = media.mm(fixed + gaps + reserve + 2 * metrics.margin_y)
        raise LabelError(f"the label content needs {needed:.1f} mm of height even at the smallest readable sizes, "
                         f"the label is {media.height_mm:g} mm ({media.describe()}); {field} takes the most room",
                         field=field)
    if items_at:
        laid[items_at[0]] = _lay_items(blocks[items_at[0]], metrics, width, room - fixed - gaps)
    parts = [part for part in laid if part is not None]
    spare = room - sum(part.height for part in parts) - gaps

    # Leftover room: bars back towards their preferred height first, then air between the blocks -- except on
    # continuous ESC/POS paper, where air is only wasted paper.
    continuous = media.language == "escpos" and media.media == "continuous"
    extras = []
    for part in parts:
        extra = 0 if continuous else min(part.bar_room, spare)
        spare -= extra
        extras.append(extra)
    spread = 0 if continuous or len(parts) < 2 else min(spare // (len(parts) - 1), media.dots(MAX_SPREAD_MM))
    placed: list[Placed] = []
    y = metrics.margin_y
    for part, extra in zip(parts, extras):
        placed += part.place(metrics.margin_x, y, extra)
        y += part.height + extra + gap + spread
    used = y - gap - spread + metrics.margin_y
    height = used if continuous else page_height
    return Page(media, page_width, height, tuple(placed), metrics.cell)
