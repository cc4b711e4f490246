"""The command sheet: the appliance's own codes as Code 128 on paper, for the wall of a station
(`appliance print-command-sheet`).

A sheet holds every command (`CMD-RECEIVE` ...) with a big caption and a line saying what it does, a block of
quantity codes (`QTY-12`) and, if asked, badges (`USR-ALICE`). python-barcode encodes (Code 128, with its
automatic code-set switching and check symbol); Pillow draws and writes PNG or PDF.

Everything is drawn at 300 dpi with whole-pixel modules, so every bar edge lies on a pixel edge and prints
crisply on any 300/600/1200 dpi printer: 4 px = 0.339 mm per module (a normal gun reads that at arm's length),
bars 10 mm tall, a quiet zone of 12 modules each side that nothing else on the sheet enters. The PDF embeds the
pages as 1-bit images (lossless CCITT G4, never JPEG) at 300 dpi, so printing at 100 % ("actual size") keeps the
module width; "fit to page" would shrink it.

Content that does not fit one page flows on: more pages in the PDF; for PNG one file per page, `NAME.png` when
there is one page and `NAME-1.png`, `NAME-2.png` ... when there are more. The defaults fit one A4 or Letter page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from barcode.codex import Code128
from PIL import Image, ImageDraw, ImageFont, features

from appliance.errors import ApplianceError, InvalidInput
from appliance.scanning.barcodes import COMMANDS, MAX_QUANTITY

DPI = 300
MODULE_PX = 4                 # 0.339 mm at 300 dpi
QUIET_MODULES = 12            # white each side of the bars (Code 128 asks for at least 10)
BAR_HEIGHT_PX = 118           # 10 mm
PAPERS = {"a4": (2480, 3508), "letter": (2550, 3300)}   # pixels at 300 dpi: 210 x 297 mm, 8.5 x 11 in
FORMATS = (".pdf", ".png")
DEFAULT_QUANTITIES = "1-10,12,24,48,50,100"
MAX_QUANTITY_CODES = 200      # 1-99999 would be thousands of pages: surely a typo
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)

# Shown in this order; a command in COMMANDS without a line here is still shown, after these.
NOTES = {
    "RECEIVE": "receive goods: scan the location, then each item",
    "SHIP": "ship/pick: scan the location, then each item",
    "MOVE": "move: scan from-location, items, then to-location",
    "TRANSFER": "send to another site: from-location, items, then the other site's location",
    "COUNT": "count a location: scan it, scan everything in it, then DONE",
    "LOOKUP": "scan anything to see where it is and how many",
    "PRINT": "print a label for the next item scanned",
    "DONE": "finish (count: post the differences)",
    "CANCEL": "drop what is not posted yet",
    "UNDO": "take back the last step",
    "PICK": "pick (same as SHIP)",
}

# Layout, in pixels at 300 dpi.
_MARGIN = 100                 # 8.5 mm: inside every printer's unprintable border
_QUIET_PX = QUIET_MODULES * MODULE_PX
_TEXT_LEFT = _MARGIN + _QUIET_PX      # text lines up with the bars of the first column
_SIZES = {"title": 72, "hint": 32, "section": 46, "caption": 56, "code": 28, "note": 32, "footer": 26}
_LINE = {name: round(size * 1.25) for name, size in _SIZES.items()}
_CELL_PAD = 30                # below each cell
_SECTION_GAP = 30             # above each section header
_BADGE_LOGIN = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,31}")   # a login (a-z 0-9 . _ -) that a USR- code can carry


@dataclass(frozen=True)
class Entry:
    """One code on the sheet: `code` is what the bars carry, `caption` the big text above them."""
    kind: str                 # command, quantity, badge
    code: str                 # CMD-RECEIVE, QTY-12, USR-ALICE
    caption: str              # RECEIVE, 12, alice
    note: str = ""


@dataclass(frozen=True)
class Placed:
    """Where an entry's bars were drawn: page index and the bars' box (left, top, right, bottom), right and
    bottom exclusive. The quiet zones lie outside the box, `QUIET_MODULES * module_px` wide."""
    entry: Entry
    page: int
    bars: tuple[int, int, int, int]
    module_px: int
    modules: str              # one character per module: 1 bar, 0 space


@dataclass
class Sheet:
    title: str
    paper: str
    size: tuple[int, int]
    pages: list[Image.Image] = field(default_factory=list)   # mode "L", white background
    placed: list[Placed] = field(default_factory=list)


def parse_quantities(spec: str) -> list[int]:
    """'1-10,12,24' -> [1, ..., 10, 12, 24] in the order given, repeats dropped. InvalidInput names the
    offending part and why."""
    where = f"--quantities {spec!r}"
    found: dict[int, None] = {}
    parts = [part.strip() for part in spec.split(",")]
    for part in parts:
        match = re.fullmatch(r"([0-9]+)(?:\s*-\s*([0-9]+))?", part)
        if not match:
            what = "an empty item" if not part else repr(part)
            raise InvalidInput(f"{where}: {what} is not a quantity or a range like 1-10", field="quantities")
        for digits in filter(None, match.groups()):
            if len(digits.lstrip("0")) > len(str(MAX_QUANTITY)) or not 1 <= int(digits) <= MAX_QUANTITY:
                raise InvalidInput(f"{where}: {digits} is out of range: quantity codes run from QTY-1 to "
                                   f"QTY-{MAX_QUANTITY}", field="quantities")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise InvalidInput(f"{where}: the range {part} runs backwards (write {high}-{low})",
                               field="quantities")
        if high - low >= MAX_QUANTITY_CODES:
            raise InvalidInput(f"{where}: {part} is {high - low + 1} codes; a sheet takes at most "
                               f"{MAX_QUANTITY_CODES}", field="quantities")
        found.update(dict.fromkeys(range(low, high + 1)))
        if len(found) > MAX_QUANTITY_CODES:
            raise InvalidInput(f"{where}: {len(found)} codes; a sheet takes at most {MAX_QUANTITY_CODES}",
                               field="quantities")
    return list(found)


def badge_code(login: str) -> str:
    """The USR- code for a login (`alice` -> `USR-ALICE`); InvalidInput for what a badge cannot carry."""
    upper = login.strip().upper()
    if not _BADGE_LOGIN.fullmatch(upper):
        raise InvalidInput(f"--badge {login!r}: a badge carries a login of 1 to 32 letters, digits, '.' or '-' "
                           "(starting with a letter or digit)", field="badge")
    return f"USR-{upper}"


def output_format(path: str | Path) -> str:
    """'pdf' or 'png' from the file name; InvalidInput otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"-o {path}: {f'{suffix!r} is not' if suffix else 'no extension, so not'} a format "
                           "this command writes: name a .pdf or .png file", field="out")
    return suffix[1:]


def entries(quantities: Iterable[int] = (), badges: Iterable[str] = ()) -> list[Entry]:
    shown = [name for name in NOTES if name in COMMANDS] + [name for name in COMMANDS if name not in NOTES]
    found = [Entry("command", f"CMD-{name}", name, NOTES.get(name, "")) for name in shown]
    found += [Entry("quantity", f"QTY-{number}", str(number)) for number in quantities]
    logins: dict[str, str] = {}       # alice and ALICE are one badge
    for login in badges:
        logins.setdefault(badge_code(login), login.strip().lower())
    found += [Entry("badge", code, login) for code, login in logins.items()]
    return found


def modules(code: str) -> str:
    """Code 128 modules from python-barcode: start, data (code sets switched as needed), check, stop."""
    bars = Code128(code).build()[0]
    assert bars[0] == "1" and bars[-1] == "1" and (len(bars) - 13) % 11 == 0, bars
    return bars


def build_sheet(*, station: str | None = None, paper: str = "a4", quantities: Sequence[int] | None = None,
                badges: Iterable[str] = ()) -> Sheet:
    """Lay out and draw the sheet. `quantities` defaults to DEFAULT_QUANTITIES."""
    if paper not in PAPERS:
        raise InvalidInput(f"--paper {paper!r}: choose one of {', '.join(PAPERS)}", field="paper")
    if quantities is None:
        quantities = parse_quantities(DEFAULT_QUANTITIES)
    items = entries(quantities, badges)
    title = f"Station {station} \u2014 scan commands" if station else "Scan commands"
    sheet = Sheet(title=title, paper=paper, size=PAPERS[paper])
    _Layout(sheet).run(items)
    return sheet


def write_sheet(sheet: Sheet, path: str | Path) -> list[Path]:
    """Write the sheet as PDF (all pages) or PNG (one file per page); returns the paths written."""
    path = Path(path)
    kind = output_format(path)
    if not path.parent.is_dir():
        raise InvalidInput(f"-o {path}: the directory {path.parent} does not exist", field="out")
    try:
        if kind == "pdf":
            # 1-bit pages go in as CCITT G4 (lossless). Without libtiff Pillow would fall back to JPEG, which
            # blurs bar edges: a two-colour palette image (hex-encoded, lossless) then.
            mode = "1" if features.check("libtiff") else "P"
            pages = [_bilevel(page, mode) for page in sheet.pages]
            pages[0].save(path, "PDF", resolution=DPI, save_all=True, append_images=pages[1:],
                          title=sheet.title, creator="appliance print-command-sheet")
            return [path]
        written = []
        for number, page in enumerate(sheet.pages, start=1):
            target = path if len(sheet.pages) == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")
            page.save(target, "PNG", dpi=(DPI, DPI), optimize=True)
            written.append(target)
        return written
    except OSError as error:
        raise ApplianceError(f"cannot write {path}: {error.strerror or error}") from error


def _bilevel(page: Image.Image, mode: str) -> Image.Image:
    bw = page.point(lambda value: 255 if value >= 128 else 0).convert("1", dither=Image.Dither.NONE)
    return bw if mode == "1" else bw.convert("P")


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if not line or font.getlength(trial) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + [line] if line else lines


class _Layout:
    """Flows sections of cells down the page, row by row, starting a new page when a row does not fit."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.width, self.height = sheet.size
        self.fonts = {name: _font(size, bold=name in ("title", "section", "caption"))
                      for name, size in _SIZES.items()}
        self.bottom = self.height - _MARGIN - _LINE["footer"]
        self.draw: ImageDraw.ImageDraw
        self.y = 0

    def run(self, items: list[Entry]) -> None:
        self._new_page()
        usable = self.width - 2 * _TEXT_LEFT
        for line in _wrap(self.sheet.title, self.fonts["title"], usable):
            self._text(_TEXT_LEFT, self.y, line, "title")
            self.y += _LINE["title"]
        for line in _wrap("Scan a command, then do what its line says. Print at 100 % (actual size), not "
                          "\u201cfit to page\u201d.", self.fonts["hint"], usable):
            self._text(_TEXT_LEFT, self.y, line, "hint")
            self.y += _LINE["hint"]
        sections = (
            ("command", "Commands", 2),
            ("quantity", "Quantities \u2014 scan one before an item: that item counts so many times", 0),
            ("badge", "Badges \u2014 scan to sign in", 0),
        )
        for kind, header, max_columns in sections:
            chosen = [item for item in items if item.kind == kind]
            if chosen:
                self._section(header, chosen, max_columns)
        self._footers()

    def _new_page(self) -> None:
        page = Image.new("L", self.sheet.size, 255)
        self.sheet.pages.append(page)
        self.draw = ImageDraw.Draw(page)
        self.y = _MARGIN

    def _text(self, x: int, y: int, text: str, style: str) -> None:
        self.draw.text((x, y), text, font=self.fonts[style], fill=0)

    def _section(self, header: str, items: list[Entry], max_columns: int) -> None:
        bars = {item.code: modules(item.code) for item in items}
        need = max(len(code) for code in bars.values()) * MODULE_PX + 2 * _QUIET_PX
        usable = self.width - 2 * _MARGIN
        columns = max(1, usable // need)
        if max_columns:
            columns = min(columns, max_columns)
        column_width = usable // columns
        rows = [items[start:start + columns] for start in range(0, len(items), columns)]
        heights = [max(self._cell_height(item, bars[item.code], column_width) for item in row) for row in rows]
        header_height = _SECTION_GAP + _LINE["section"]
        for number, (row, height) in enumerate(zip(rows, heights)):
            header_now = header if number == 0 else None
            if self.y + height + (header_height if header_now else 0) > self.bottom:
                self._new_page()
                header_now = header if number == 0 else f"{header} (continued)"
            if header_now:
                self._text(_TEXT_LEFT, self.y + _SECTION_GAP, header_now, "section")
                self.y += header_height
            for column, item in enumerate(row):
                self._cell(item, bars[item.code], _MARGIN + column * column_width, self.y, column_width)
            self.y += height

    def _code_on_caption_line(self, item: Entry, bars: str) -> bool:
        gap = 24
        return (self.fonts["caption"].getlength(item.caption) + gap + self.fonts["code"].getlength(item.code)
                <= len(bars) * MODULE_PX)

    def _note_lines(self, item: Entry, width: int) -> list[str]:
        return _wrap(item.note, self.fonts["note"], width - 2 * _QUIET_PX) if item.note else []

    def _cell_height(self, item: Entry, bars: str, width: int) -> int:
        height = _LINE["caption"] + BAR_HEIGHT_PX + 10
        if not self._code_on_caption_line(item, bars):
            height += _LINE["code"]
        return height + len(self._note_lines(item, width)) * _LINE["note"] + _CELL_PAD

    def _cell(self, item: Entry, bars: str, x: int, y: int, width: int) -> None:
        left = x + _QUIET_PX
        bars_width = len(bars) * MODULE_PX
        self._text(left, y, item.caption, "caption")
        inline = self._code_on_caption_line(item, bars)
        if inline:      # the code in small type, right-aligned over the bars' end, on the caption's baseline
            shift = self.fonts["caption"].getmetrics()[0] - self.fonts["code"].getmetrics()[0]
            self._text(left + bars_width - round(self.fonts["code"].getlength(item.code)), y + shift, item.code,
                       "code")
        y += _LINE["caption"]
        for match in re.finditer("1+", bars):
            self.draw.rectangle((left + match.start() * MODULE_PX, y, left + match.end() * MODULE_PX - 1,
                                 y + BAR_HEIGHT_PX - 1), fill=0)
        self.sheet.placed.append(Placed(item, len(self.sheet.pages) - 1,
                                        (left, y, left + bars_width, y + BAR_HEIGHT_PX), MODULE_PX, bars))
        y += BAR_HEIGHT_PX + 10
        if not inline:
            self._text(left, y, item.code, "code")
            y += _LINE["code"]
        for line in self._note_lines(item, width):
            self._text(left, y, line, "note")
            y += _LINE["note"]

    def _footers(self) -> None:
        count = len(self.sheet.pages)
        mm = MODULE_PX * 25.4 / DPI
        for number, page in enumerate(self.sheet.pages, start=1):
            text = f"Code 128, module {mm:.2f} mm at 100 %  \u00b7  appliance print-command-sheet"
            if count > 1:
                text += f"  \u00b7  page {number} of {count}"
            ImageDraw.Draw(page).text((_TEXT_LEFT, self.height - _MARGIN - _LINE["footer"]), text,
                                      font=self.fonts["footer"], fill=0)
