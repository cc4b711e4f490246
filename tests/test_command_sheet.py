"""`appliance print-command-sheet`: real PDF and PNG files, and every bar on them read back.

The bars are read by a Code 128 decoder written here from the symbology's table (ISO/IEC 15417), not taken from
python-barcode, so the sheet is checked against the standard rather than against the library that drew it:
scan a pixel row, measure the runs, match each group of six to a symbol, verify the check symbol, follow the
code-set switches.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image, PdfParser

from appliance.cli import main
from appliance.scanning import command_sheet
from appliance.scanning.barcodes import COMMANDS, interpret

# Code 128 symbol values 0..105 as bar/space widths in modules (bar first); the stop symbol is 2331112.
WIDTHS = """
212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 221312 231212 112232 122132 122231 113222
123122 123221 223211 221132 221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 212123 212321
232121 111323 131123 131321 112313 132113 132311 211313 231113 231311 112133 112331 132131 113123 113321 133121
313121 211331 231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 314111 221411 431111 111224
111422 121124 121421 141122 141221 112214 112412 122114 122411 142112 142211 241211 221114 413111 241112 134111
111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 214121 412121 111143 111341 131141 114113
114311 411113 411311 113141 114131 311141 411131 211412 211214 211232
""".split()
VALUES = {pattern: value for value, pattern in enumerate(WIDTHS)}
STOP = "2331112"
START = {103: "A", 104: "B", 105: "C"}
MIN_QUIET_MODULES = 10
MIN_MODULE_MM = 0.33
A4_PX = (2480, 3508)        # 210 x 297 mm at 300 dpi
LETTER_PX = (2550, 3300)    # 8.5 x 11 in at 300 dpi
PREFIX = {"command": "CMD-", "quantity": "QTY-", "badge": "USR-"}
DEFAULT_QUANTITIES = [*range(1, 11), 12, 24, 48, 50, 100]


class Read:
    def __init__(self, text: str, left: int, right: int, module: float, runs: list[int],
                 quiet_left: int, quiet_right: int) -> None:
        self.text, self.left, self.right, self.module, self.runs = text, left, right, module, runs
        self.quiet_left, self.quiet_right = quiet_left, quiet_right


def _runs(row: bytes) -> list[tuple[bool, int, int]]:
    """(dark, start, length) for each run of one pixel row (dark: below mid-grey)."""
    bits = row.translate(bytes(49 if value < 128 else 48 for value in range(256)))
    return [(match.group()[:1] == b"1", match.start(), match.end() - match.start())
            for match in re.finditer(rb"1+|0+", bits)]


def _text(values: list[int]) -> str | None:
    """Symbol values (start ... data, without check and stop) to text, following code sets and shifts."""
    charset = START[values[0]]
    out = []
    shift = False
    for value in values[1:]:
        current = ("B" if charset == "A" else "A") if shift else charset
        shift = False
        if current == "C":
            if value < 100:
                out.append(f"{value:02d}")
            elif value in (100, 101):
                charset = "B" if value == 100 else "A"
            else:
                return None                   # FNC1: not used by the appliance's own codes
        elif value < 96:
            out.append(chr(32 + value) if current == "B" or value < 64 else chr(value - 64))
        elif value == 98:
            shift = True
        elif value == 99:
            charset = "C"
        elif (value, current) in ((100, "A"), (101, "B")):
            charset = "B" if value == 100 else "A"
        else:
            return None                       # FNC1..FNC4
    return "".join(out)


def _decode_at(runs: list[tuple[bool, int, int]], first: int) -> Read | None:
    """Read a symbol whose start character begins at runs[first], or None."""
    widths = [length for _, _, length in runs[first:first + 6]]
    if len(widths) < 6 or first == 0:
        return None
    module = sum(widths) / 11

    def pattern(group: list[tuple[bool, int, int]]) -> str | None:
        digits = []
        for _, _, length in group:
            count = round(length / module)
            if not 1 <= count <= 4 or abs(length - count * module) > 0.35 * module:
                return None
            digits.append(str(count))
        return "".join(digits)

    values: list[int] = []
    index = first
    while True:
        group = runs[index:index + 7]
        if len(group) == 7 and pattern(group) == STOP:
            break
        symbol = pattern(runs[index:index + 6]) if len(runs) >= index + 6 else None
        if symbol not in VALUES:
            return None
        values.append(VALUES[symbol])
        index += 6
    if len(values) < 2 or values[0] not in START or any(value > 102 for value in values[1:]):
        return None
    *body, check = values
    if (body[0] + sum(position * value for position, value in enumerate(body[1:], start=1))) % 103 != check:
        return None
    text = _text(body)
    if text is None:
        return None
    end = runs[index + 6]
    quiet_left = runs[first - 1][2]
    quiet_right = runs[index + 7][2] if index + 7 < len(runs) else 0
    return Read(text, runs[first][1], end[1] + end[2], module,
                [length for _, _, length in runs[first:index + 7]], quiet_left, quiet_right)


def read_row(image: Image.Image, y: int, left: int = 0, right: int | None = None) -> list[Read]:
    """Every Code 128 symbol in pixel row y between left and right that has a quiet zone of 10 modules."""
    right = image.width if right is None else right
    runs = _runs(image.crop((left, y, right, y + 1)).tobytes())
    found = []
    index = 1
    while index < len(runs):
        dark = runs[index][0]
        read = _decode_at(runs, index) if dark else None
        quiet = MIN_QUIET_MODULES * read.module - 0.5 if read else 0
        if read and read.quiet_left >= quiet and read.quiet_right >= quiet:
            read.left += left
            read.right += left
            found.append(read)
            index += len(read.runs)
        else:
            index += 1
    return found


def read_page(image: Image.Image, step: int = 20) -> set[str]:
    """Every code found anywhere on a page, scanning every `step`-th row blind."""
    return {read.text for y in range(0, image.height, step) for read in read_row(image, y)}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def expected_codes(quantities=DEFAULT_QUANTITIES, badges=()) -> set[str]:
    return ({f"CMD-{name}" for name in COMMANDS} | {f"QTY-{number}" for number in quantities}
            | {f"USR-{login.upper()}" for login in badges})


# --- the decoder itself --------------------------------------------------------------------------------------


def _strip(widths: str, module: int) -> Image.Image:
    """A one-row image of bars and spaces of the given widths (in modules), 40 px of white either side."""
    pixels = bytearray(b"\xff" * 40)
    for position, width in enumerate(widths):
        pixels += (b"\xff" if position % 2 else b"\x00") * (int(width) * module)
    pixels += b"\xff" * 40
    return Image.frombytes("L", (len(pixels), 1), bytes(pixels))


def test_the_decoder_reads_a_symbol_built_from_the_standard_table():
    """'AB1' in code set B, put together by hand: nothing here comes from the library that draws the sheet."""
    values = [104, 33, 34, 17]                 # Start B, 'A', 'B', '1'
    check = (104 + 1 * 33 + 2 * 34 + 3 * 17) % 103
    [read] = read_row(_strip("".join(WIDTHS[value] for value in [*values, check]) + STOP, 3), 0)
    assert (read.text, read.module, read.left) == ("AB1", 3, 40)
    # A wrong check symbol reads as nothing, not as something else.
    wrong = "".join(WIDTHS[value] for value in [*values, (check + 1) % 103]) + STOP
    assert read_row(_strip(wrong, 3), 0) == []


@pytest.mark.parametrize("code", ["QTY-1", "QTY-1000", "QTY-10000", "QTY-99999", "CMD-TRANSFER", "USR-J.DOE-2",
                                  "USR-12345678"])
def test_python_barcode_encodes_what_the_decoder_reads(code):
    """Code-set switching (digit runs go to set C) and odd digit counts, through the sheet's own encoder."""
    bars = command_sheet.modules(code)
    module = 4
    pixels = b"\xff" * 60 + b"".join((b"\x00" if bit == "1" else b"\xff") * module for bit in bars) + b"\xff" * 60
    [read] = read_row(Image.frombytes("L", (len(pixels), 1), pixels), 0)
    assert read.text == code


# --- PNG -------------------------------------------------------------------------------------------------------


def test_png_is_one_a4_page_at_300_dpi(tmp_path, capsys):
    target = tmp_path / "sheet.png"
    code, out, err = run(capsys, "print-command-sheet", "-o", str(target), "--station", "dock-1")
    assert code == 0, err
    assert out.splitlines() == [str(target)]
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == A4_PX
        assert [round(value) for value in image.info["dpi"]] == [300, 300]


@pytest.mark.parametrize("paper, size, quantities, badges", [
    ("a4", A4_PX, None, ()),
    ("letter", LETTER_PX, "1-3,1000,10000,99999", ("alice", "j.doe-2")),
])
def test_every_code_on_the_sheet_reads_back_as_its_caption(tmp_path, capsys, paper, size, quantities, badges):
    target = tmp_path / "sheet.png"
    args = ["print-command-sheet", "-o", str(target), "--paper", paper, "--station", "dock-1"]
    if quantities:
        args += ["--quantities", quantities]
    for login in badges:
        args += ["--badge", login]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert out.splitlines() == [str(target)]            # the defaults fit one page, A4 and Letter alike

    numbers = command_sheet.parse_quantities(quantities) if quantities else DEFAULT_QUANTITIES
    # Where the bars are comes from the layout; what they say comes from the pixels only.
    layout = command_sheet.build_sheet(station="dock-1", paper=paper, quantities=numbers, badges=badges)
    assert len(layout.pages) == 1
    with Image.open(target) as image:
        image.load()
    assert image.size == size
    assert read_page(image) == expected_codes(numbers, badges)     # blind: everything there, nothing else

    assert {placed.entry.code for placed in layout.placed} == expected_codes(numbers, badges)
    for placed in layout.placed:
        left, top, right, bottom = placed.bars
        # Read three rows across the bars, quiet zones included.
        reads = [read_row(image, y, max(0, left - 20 * placed.module_px), min(image.width, right + 20 *
                                                                               placed.module_px))
                 for y in (top + 2, (top + bottom) // 2, bottom - 3)]
        for found in reads:
            [read] = found
            caption = placed.entry.caption
            assert read.text == PREFIX[placed.entry.kind] + caption.upper() == placed.entry.code
            assert (read.left, read.right) == (left, right)
            # Crisp: every bar and space is a whole number of modules, a module is >= 4 px (0.33 mm).
            assert read.module == placed.module_px >= 4
            assert read.module * 25.4 / 300 >= MIN_MODULE_MM
            assert all(width % placed.module_px == 0 for width in read.runs)
        # Quiet zones: at least 10 modules of white beside the bars over their full height, and pure
        # black and white inside.
        quiet = MIN_QUIET_MODULES * placed.module_px
        assert image.crop((left - quiet, top, left, bottom)).getextrema() == (255, 255)
        assert image.crop((right, top, right + quiet, bottom)).getextrema() == (255, 255)
        assert {colour for _, colour in image.crop(placed.bars).getcolors()} == {0, 255}
        # What the appliance makes of the scan.
        meaning = interpret(read.text)
        assert meaning.ok and meaning.kind == placed.entry.kind
        if placed.entry.kind == "command":
            assert meaning.command == caption.lower()
        elif placed.entry.kind == "quantity":
            assert meaning.quantity == int(caption)
        else:
            assert meaning.login == caption


def test_a_sheet_too_long_for_one_page_goes_on_in_numbered_pngs(tmp_path, capsys):
    target = tmp_path / "wall.png"
    code, out, err = run(capsys, "print-command-sheet", "-o", str(target), "--quantities", "1-120")
    assert code == 0, err
    paths = out.splitlines()
    assert len(paths) >= 2
    assert paths == [str(tmp_path / f"wall-{number}.png") for number in range(1, len(paths) + 1)]
    assert not target.exists()
    found: set[str] = set()
    for path in paths:
        with Image.open(path) as image:
            assert image.size == A4_PX
            found |= read_page(image.copy())
    assert found == expected_codes(range(1, 121))


def test_it_works_without_dejavu(tmp_path, monkeypatch):
    monkeypatch.setattr(command_sheet, "FONT_DIRS", (tmp_path / "no-fonts",))
    sheet = command_sheet.build_sheet(quantities=[1, 2])
    [page] = sheet.pages
    assert read_page(page) == expected_codes([1, 2])


# --- PDF -------------------------------------------------------------------------------------------------------


def _pdf_pages(path) -> int:
    with PdfParser.PdfParser(str(path)) as pdf:
        return len(pdf.pages)


def _media_boxes(data: bytes) -> list[tuple[float, float]]:
    """Each page's width and height in points."""
    return [(float(width), float(height))
            for width, height in re.findall(rb"/MediaBox \[ 0 0 ([0-9.]+) ([0-9.]+) \]", data)]


def test_pdf_is_a_real_a4_pdf_with_lossless_300_dpi_pages(tmp_path, capsys):
    target = tmp_path / "sheet.pdf"
    code, out, err = run(capsys, "print-command-sheet", "-o", str(target), "--station", "dock-1", "--badge", "alice")
    assert code == 0, err
    assert out.splitlines() == [str(target)]
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    assert _pdf_pages(target) == 1
    assert _media_boxes(data) == [(595.2, 841.92)]                          # A4 in points
    # The page is one bilevel image of A4 at 300 dpi, CCITT G4: bars never pass through JPEG.
    assert re.search(rb"/Width 2480\b", data) and re.search(rb"/Height 3508\b", data)
    assert re.search(rb"/BitsPerComponent 1\b", data) and b"/CCITTFaxDecode" in data
    assert b"/DCTDecode" not in data


def test_pdf_takes_as_many_pages_as_it_needs(tmp_path, capsys):
    target = tmp_path / "sheet.pdf"
    code, out, err = run(capsys, "print-command-sheet", "-o", str(target), "--paper", "letter",
                         "--quantities", "1-200")
    assert code == 0, err
    layout = command_sheet.build_sheet(paper="letter", quantities=list(range(1, 201)))
    assert _pdf_pages(target) == len(layout.pages) >= 2
    assert _media_boxes(target.read_bytes()) == [(612, 792)] * len(layout.pages)     # Letter in points
    assert {placed.page for placed in layout.placed} == set(range(len(layout.pages)))


def test_no_config_and_no_database_needed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    code, out, err = run(capsys, "print-command-sheet")
    assert code == 0, err
    assert out.strip() == "command-sheet.pdf"
    assert (tmp_path / "command-sheet.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["command-sheet.pdf"]


# --- bad input -------------------------------------------------------------------------------------------------


def test_quantity_specs():
    assert command_sheet.parse_quantities("1-10,12,24") == [*range(1, 11), 12, 24]
    assert command_sheet.parse_quantities(" 5 , 2-3, 5,99999") == [5, 2, 3, 99999]
    assert command_sheet.parse_quantities(command_sheet.DEFAULT_QUANTITIES) == DEFAULT_QUANTITIES
    assert [entry.code for entry in command_sheet.entries(badges=["alice", "Bob", "ALICE"])][-2:] == [
        "USR-ALICE", "USR-BOB"]


@pytest.mark.parametrize("spec, why", [
    ("0", "0 is out of range: quantity codes run from QTY-1 to QTY-99999"),
    ("5-2", "the range 5-2 runs backwards"),
    ("abc", "'abc' is not a quantity or a range like 1-10"),
    ("100000", "100000 is out of range"),
    ("1-100000", "100000 is out of range"),
    ("1,,2", "an empty item is not a quantity"),
    ("-3", "'-3' is not a quantity"),
    ("1-500", "500 codes; a sheet takes at most 200"),
    pytest.param("1-" + "9" * 5000, "9999", id="5000-digits"),
    pytest.param("\u0663", "is not a quantity", id="arabic-indic-3"),   # only ASCII digits count
])
def test_bad_quantities_exit_2_naming_the_value(tmp_path, capsys, spec, why):
    target = tmp_path / "sheet.pdf"
    code, out, err = run(capsys, "print-command-sheet", "-o", str(target), "--quantities", spec)
    assert code == 2
    assert f"--quantities {spec!r}" in err and why in err, err
    assert out == "" and not target.exists()


@pytest.mark.parametrize("name, why", [
    ("sheet.jpg", "'.jpg' is not a format this command writes: name a .pdf or .png file"),
    ("sheet", "no extension, so not a format this command writes"),
])
def test_a_bad_extension_exits_2(tmp_path, capsys, name, why):
    code, out, err = run(capsys, "print-command-sheet", "-o", str(tmp_path / name))
    assert code == 2 and name in err and why in err, err
    assert list(tmp_path.iterdir()) == []


def test_other_bad_input_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "print-command-sheet", "-o", str(tmp_path / "s.pdf"), "--badge", "a_b")
    assert code == 2 and "--badge 'a_b'" in err and "letters, digits, '.' or '-'" in err
    code, _, err = run(capsys, "print-command-sheet", "-o", str(tmp_path / "missing" / "s.pdf"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "print-command-sheet", "-o", str(tmp_path / "s.pdf"), "--paper", "a3")
    assert code == 2 and "a3" in err
    assert list(tmp_path.iterdir()) == []
