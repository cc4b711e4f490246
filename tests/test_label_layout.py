"""Label data checks and fitting: sizes from dpi, wrapping and shrinking, refusals that name the field."""

from __future__ import annotations

import pytest

from appliance.config.printers import PrinterConfig
from appliance.printing.labels import EXAMPLE_SIZES, EXAMPLES
from appliance.printing.layout import (MIN_MODULE_MM, Cells, PlacedBarcode, PlacedText, Scalable,
                                       metrics_for)
from appliance.printing.render import LabelError, Media, check_data, layout

DPIS = (203, 300, 600)
LANGUAGES = ("zpl", "escpos")


def media_for(label: str, language: str, dpi: int, **changes) -> Media:
    width, height = EXAMPLE_SIZES[label][language]
    settings = {"dpi": dpi, "width_mm": width, "height_mm": height, "language": language,
                "media": "continuous" if language == "escpos" else "gap"} | changes
    return Media(**settings)


def example(label: str, language: str) -> dict:
    # (01)(17)(10)(30) is wider than 72 mm paper allows at 2 dots per module; ESC/POS gets it without (30).
    return {**EXAMPLES[label], "count": None} if (label, language) == ("case", "escpos") else EXAMPLES[label]


def test_media_dots_and_from_printer():
    printer = PrinterConfig(name="t", kind="zpl_tcp", host="127.0.0.1", dpi=300, width_mm=50.0, height_mm=30.0,
                            darkness=12, offset_x_mm=1.0)
    media = Media.from_printer(printer)
    assert (media.language, media.dpi, media.darkness, media.offset_x_mm) == ("zpl", 300, 12, 1.0)
    assert media.dots(50) == 591 and media.dots(25.4) == 300
    assert Media(203, 50, 30, "zpl").dots(50) == 400
    capture = PrinterConfig(name="c", kind="capture", speaks="escpos", codepage="CP858")
    assert (Media.from_printer(capture).language, Media.from_printer(capture).codepage) == ("escpos", "CP858")


@pytest.mark.parametrize("label, data, field", [
    ("variant", {**EXAMPLES["variant"], "gtin": "5901234123458"}, "gtin"),
    ("variant", {**EXAMPLES["variant"], "gtin": "59012341234"}, "gtin"),
    ("variant", {**EXAMPLES["variant"], "name": "  "}, "name"),
    ("variant", {**EXAMPLES["variant"], "price": 12.99}, "price"),
    ("variant", {**EXAMPLES["variant"], "gtin": None, "sku": "AB^XZ"}, "sku"),
    ("variant", {**EXAMPLES["variant"], "currency": "€"}, "currency"),
    ("case", {**EXAMPLES["case"], "expiry": "2026-02-30"}, "expiry"),
    ("case", {**EXAMPLES["case"], "expiry": "31.12.2026"}, "expiry"),
    ("case", {**EXAMPLES["case"], "lot": "LOT WITH SPACE"}, "lot"),
    ("case", {**EXAMPLES["case"], "count": 0}, "count"),
    ("location", {"code": "a-01", "name": ""}, "code"),
    ("location", {"code": "A 01", "name": ""}, "code"),
    ("sscc", {**EXAMPLES["sscc"], "sscc": "395011010000000010"}, "sscc"),
    ("sscc", {**EXAMPLES["sscc"], "lines": []}, "lines"),
    ("sscc", {**EXAMPLES["sscc"], "lines": [{"sku": "A", "qty": -1}]}, "lines[0].qty"),
    ("po_receiving", {**EXAMPLES["po_receiving"], "line": 0}, "line"),
    ("transfer_document", {**EXAMPLES["transfer_document"], "created": None}, "created"),
    ("transfer_document", {**EXAMPLES["transfer_document"], "lines": [{"sku": "A", "qty": 1, "name": "x\x07"}]},
     "lines[0].name"),
    ("pallet", {}, "label_type"),
])
def test_bad_data_names_the_field(label, data, field):
    with pytest.raises(LabelError) as caught:
        check_data(label, data)
    assert caught.value.details["field"] == field
    assert field.split(".")[-1].split("[")[0].replace("_", " ") in str(caught.value).replace("_", " ")


def test_check_data_normalises():
    assert check_data("case", {**EXAMPLES["case"], "gtin": "9501101530003"})["gtin"] == "09501101530003"
    assert check_data("sscc", {**EXAMPLES["sscc"], "sscc": "39501101000000001"})["sscc"] == "395011010000000019"
    assert check_data("variant", {**EXAMPLES["variant"], "name": "Two\n  lines\ttabbed"})["name"] == \
        "Two lines tabbed"
    variant = check_data("variant", {"sku": "S-1", "name": "N", "price": None, "gtin": None})
    assert (variant["currency"], variant["currency_digits"], variant["variant"]) == ("EUR", 2, "")


def _boxes(page):
    for item in page.items:
        if isinstance(item, PlacedText):
            bottom = item.y + (len(item.lines) - 1) * item.pitch + item.size
            yield item, item.x, item.y, item.x + item.width, bottom
        elif isinstance(item, PlacedBarcode):
            yield item, item.x, item.y, item.x + len(item.symbol.modules) * item.module, item.y + item.height
        else:
            yield item, item.x, item.y, item.x + item.width, item.y + item.thickness


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_every_label_fits_inside_the_page_without_overlap(label, dpi, language):
    media = media_for(label, language, dpi)
    page = layout(label, example(label, language), media)
    metrics = metrics_for(media)
    assert page.width == media.dots(media.width_mm)
    boxes = list(_boxes(page))
    for item, left, top, right, bottom in boxes:
        assert 0 <= left and right <= page.width and 0 <= top and bottom <= page.height, item
        if isinstance(item, PlacedText):
            for line in item.lines:
                assert metrics.width(line, item.size) <= item.width, (line, item)
        if isinstance(item, PlacedBarcode):
            assert item.module * 25.4 / dpi >= MIN_MODULE_MM
    # Blocks stack: apart from the two halves of a row, nothing shares vertical space.
    for (a, _, top_a, _, bottom_a), (b, _, top_b, _, _) in zip(boxes, boxes[1:]):
        assert top_b == top_a or top_b >= bottom_a, (a, b)


def test_text_size_is_the_same_in_mm_at_every_dpi():
    sizes = {}
    for dpi in DPIS:
        page = layout("location", EXAMPLES["location"], media_for("location", "zpl", dpi))
        code = next(item for item in page.items if isinstance(item, PlacedText) and item.field == "code")
        sizes[dpi] = code.size * 25.4 / dpi
    assert max(sizes.values()) - min(sizes.values()) < 0.15, sizes


LONG_NAME = ("Bio Vollkorn-Haferflocken zart, Großpackung für Gastronomie und Großküchen – Źródło: Łąka "
             "Żółta, ä ö ü ß ą ć ę ł ń ó ś ź ż, glutenfrei hergestellt in Polen, mit Ballaststoffen, 25 kg Sack, Mindesthaltbarkeit 12 Monate")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("dpi", DPIS)
def test_a_long_name_wraps_and_shrinks_but_is_never_cut(dpi, language):
    assert len(LONG_NAME) >= 200
    media = Media(dpi, 50, 30, language) if language == "zpl" else Media(dpi, 72, 50, language)
    short = layout("variant", EXAMPLES["variant"], media)
    page = layout("variant", {**EXAMPLES["variant"], "name": LONG_NAME}, media)
    name = next(item for item in page.items if isinstance(item, PlacedText) and item.field == "name")
    assert " ".join(name.lines) == LONG_NAME
    assert len(name.lines) > 1
    if language == "zpl":
        short_name = next(item for item in short.items if isinstance(item, PlacedText) and item.field == "name")
        assert name.size < short_name.size
        assert name.size * 25.4 / dpi >= 1.5 - 25.4 / dpi


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_name_that_cannot_fit_raises_naming_name(language):
    media = Media(203, 50, 30, language)
    with pytest.raises(LabelError) as caught:
        layout("variant", {**EXAMPLES["variant"], "name": LONG_NAME * 4}, media)
    assert caught.value.details["field"] == "name"
    assert "name" in str(caught.value) and "50 x 30 mm" in str(caught.value)


def test_a_barcode_that_cannot_fit_raises_naming_its_field():
    code = "ABCDEFGHIJKLMNOPQRSTUV"        # letters: no set C to shorten it
    with pytest.raises(LabelError) as caught:
        layout("location", {"code": code, "name": ""}, Media(203, 50, 30, "zpl"))
    assert caught.value.details["field"] == "code"
    assert "0.19" in str(caught.value) or "0.25 mm" in str(caught.value)
    # The same code fits a wider label.
    assert layout("location", {"code": code, "name": ""}, Media(203, 120, 40, "zpl"))


def test_module_width_follows_dpi_and_stays_readable():
    modules = {}
    for dpi in DPIS:
        page = layout("location", EXAMPLES["location"], Media(dpi, 50, 30, "zpl"))
        bars = next(item for item in page.items if isinstance(item, PlacedBarcode))
        modules[dpi] = bars.module * 25.4 / dpi
    assert all(0.19 <= mm <= 0.45 for mm in modules.values()), modules


def test_a_long_list_ends_with_and_n_more():
    data = {**EXAMPLES["transfer_document"],
            "lines": [{"sku": f"SKU-{n}", "qty": n, "name": "Artikel"} for n in range(300)]}
    page = layout("transfer_document", data, Media(203, 100, 150, "zpl"))
    lines = next(item for item in page.items if isinstance(item, PlacedText) and item.field == "lines")
    shown = len(lines.lines) - 1
    assert lines.lines[-1] == f"and {300 - shown} more"
    assert 20 < shown < 300
    assert lines.lines[:3] == ("0 x SKU-0 Artikel", "1 x SKU-1 Artikel", "2 x SKU-2 Artikel")


def test_content_too_tall_for_the_label_raises():
    with pytest.raises(LabelError) as caught:
        layout("sscc", EXAMPLES["sscc"], Media(203, 100, 20, "zpl"))
    assert "20 mm" in str(caught.value)
    assert caught.value.details["field"]


def test_metrics_kinds():
    assert isinstance(metrics_for(Media(203, 50, 30, "zpl")), Scalable)
    cells = metrics_for(Media(203, 72, 50, "escpos"))
    assert isinstance(cells, Cells) and cells.cell == (12, 24)
    assert cells.width("abc", 48) == 3 * 24
