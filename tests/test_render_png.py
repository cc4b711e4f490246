"""PNG previews: size in dots, 1-bit, and bars that decode (read back from a row of pixels) to the printed data."""

from __future__ import annotations

import io

import pytest
from barcode.charsets.code128 import CODES
from PIL import Image

from appliance.printing.labels import EXAMPLES
from appliance.printing.layout import PlacedBarcode, PlacedText
from appliance.printing.render import Media, layout, preview_png
from test_label_layout import DPIS, LANGUAGES, example, media_for

PATTERNS = {pattern: value for value, pattern in enumerate(CODES)}
STOP = "1100011101011"
L_CODES = ["0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111",
           "0001011"]
R_CODES = ["".join("1" if bit == "0" else "0" for bit in code) for code in L_CODES]
G_CODES = [code[::-1] for code in R_CODES]
FIRST_DIGIT = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLL", "LGLGGL",
               "LGGLGL"]


def picture(label: str, data: dict, media: Media) -> Image.Image:
    return Image.open(io.BytesIO(preview_png(label, data, media)))


def modules_in_row(image: Image.Image, bars: PlacedBarcode) -> str:
    """The row through the middle of the bars, read back as modules; the quiet zones must be white."""
    y = bars.y + bars.height // 2
    quiet = bars.symbol.quiet * bars.module
    row = [image.getpixel((x, y)) for x in range(max(0, bars.x - quiet), min(image.width, bars.x + len(
        bars.symbol.modules) * bars.module + quiet))]
    text = "".join("1" if pixel == 0 else "0" for pixel in row)
    start, end = text.index("1"), text.rindex("1") + 1
    assert "1" not in text[:start] and start >= min(quiet, bars.x), "bars inside the left quiet zone"
    runs, current, count = [], text[start], 0
    for bit in text[start:end]:
        if bit == current:
            count += 1
        else:
            runs.append((current, count))
            current, count = bit, 1
    runs.append((current, count))
    assert all(length % bars.module == 0 for _, length in runs), "a bar edge off the module grid"
    return "".join(bit * (length // bars.module) for bit, length in runs)


def decode_code128(modules: str) -> str:
    assert modules.endswith(STOP)
    values = [PATTERNS[modules[i:i + 11]] for i in range(0, len(modules) - len(STOP), 11)]
    *symbols, check = values
    assert (symbols[0] + sum(i * v for i, v in enumerate(symbols[1:], start=1))) % 103 == check
    code_set = {103: "A", 104: "B", 105: "C"}[symbols[0]]
    out = []
    for value in symbols[1:]:
        if value == 102:
            out.append("\x1d")
        elif value == 99:
            code_set = "C"
        elif value == 100 and code_set == "C":
            code_set = "B"
        elif code_set == "C":
            out.append(f"{value:02d}")
        else:
            out.append(chr(value + 32))
    text = "".join(out)
    return text[1:] if text.startswith("\x1d") else text


def decode_ean13(modules: str) -> str:
    assert len(modules) == 95 and modules[:3] == modules[-3:] == "101" and modules[45:50] == "01010"
    left = [modules[3 + 7 * i:10 + 7 * i] for i in range(6)]
    right = [modules[50 + 7 * i:57 + 7 * i] for i in range(6)]
    parity = "".join("L" if code in L_CODES else "G" for code in left)
    digits = [L_CODES.index(code) if code in L_CODES else G_CODES.index(code) for code in left]
    return str(FIRST_DIGIT.index(parity)) + "".join(map(str, digits + [R_CODES.index(code) for code in right]))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_preview_size_and_mode(label, dpi, language):
    media = media_for(label, language, dpi)
    image = picture(label, example(label, language), media)
    assert image.mode == "1"
    assert image.width == media.dots(media.width_mm)
    if language == "zpl":
        assert image.height == media.dots(media.height_mm)
    else:
        # Continuous paper: the flow is as long as its content, never longer than the label may be.
        assert 0 < image.height <= media.dots(media.height_mm)
    assert round(image.info["dpi"][0]) == dpi
    inverted = image.convert("L").point(lambda value: 255 - value)
    assert inverted.getbbox() is not None                       # something black was drawn


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("label, expected", [
    ("location", "A-01-03.2"),
    ("case", "01095011015300031726123110L2406A"),
    ("sscc", "00395011010000000019"),
    ("po_receiving", "MUS-500"),
    ("transfer_document", "TR-2024-0042"),
])
def test_code128_bars_decode_to_the_printed_data(label, expected, dpi, language):
    data = example(label, language)
    if label == "case" and language == "zpl":
        expected += "\x1d3024"
    media = media_for(label, language, dpi)
    bars = next(item for item in layout(label, data, media).items if isinstance(item, PlacedBarcode))
    assert decode_code128(modules_in_row(picture(label, data, media), bars)) == expected


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("dpi", DPIS)
def test_ean13_bars_decode(dpi, language):
    media = media_for("variant", language, dpi)
    bars = next(item for item in layout("variant", EXAMPLES["variant"], media).items
                if isinstance(item, PlacedBarcode))
    assert decode_ean13(modules_in_row(picture("variant", EXAMPLES["variant"], media), bars)) == "5901234123457"


def test_text_is_drawn_where_the_layout_puts_it():
    media = Media(300, 50, 30, "zpl")
    page = layout("location", EXAMPLES["location"], media)
    image = picture("location", EXAMPLES["location"], media).convert("L")
    code = next(item for item in page.items if isinstance(item, PlacedText) and item.field == "code")
    box = image.crop((0, code.y, image.width, code.y + code.size)).point(lambda value: 255 - value).getbbox()
    assert box is not None
    left, top, right, bottom = box
    assert right - left > image.width * 0.4                     # large code text, centred
    assert abs((left + right) / 2 - image.width / 2) < image.width * 0.05
    above = image.crop((0, 0, image.width, max(1, code.y - 2 * 300 // 25))).point(lambda v: 255 - v)
    assert above.getbbox() is None                              # nothing above the first block but margin
