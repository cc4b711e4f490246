"""ZPL output read back with tests/zpl_reader.py: one format per job, fields, barcodes, positions, escaping."""

from __future__ import annotations

import pytest

from appliance.printing.labels import EXAMPLES
from appliance.printing.layout import PlacedBarcode
from appliance.printing.render import LabelError, Media, layout, render
from test_label_layout import DPIS, LONG_NAME, media_for
from zpl_reader import read


def one_format(zpl: bytes):
    formats = read(zpl)
    assert len(formats) == 1 and zpl.count(b"^XA") == 1 and zpl.count(b"^XZ") == 1
    return formats[0]


@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_every_label_is_one_format_with_the_media_setup(label, dpi):
    media = media_for(label, "zpl", dpi)
    zpl = render(label, EXAMPLES[label], media)
    assert zpl.startswith(b"^XA\n^CI28\n") and zpl.rstrip().endswith(b"^XZ")
    fmt = one_format(zpl)
    assert fmt.command("^PW") == str(media.dots(media.width_mm))
    assert fmt.command("^LL") == str(media.dots(media.height_mm))
    assert fmt.command("^MN") == "Y" and fmt.command("^LH") == "0,0" and fmt.command("^PQ") == "1"
    assert fmt.command("~SD") is None and fmt.command("^PR") is None
    assert fmt.barcodes() and fmt.texts()
    for field in fmt.fields:
        assert 0 <= field.x < media.dots(media.width_mm) and 0 <= field.y < media.dots(media.height_mm)


def test_variant_fields_and_ean13():
    fmt = one_format(render("variant", EXAMPLES["variant"], Media(203, 50, 30, "zpl")))
    texts = [field.text for field in fmt.texts()]
    assert "Koszulka bawełniana Żółć – Größe M" in [t.replace("\n", " ") for t in texts]
    assert "niebieska / blau" in texts and "TSH-BLU-M" in texts and "49.99 PLN" in texts
    assert "5 901234 123457" in texts
    (bars,) = fmt.barcodes()
    assert (bars.command, bars.text) == ("BE", "590123412345")      # the printer adds the check digit 7
    assert bars.module >= 2 and bars.params[2] == "N"


@pytest.mark.parametrize("gtin, command, data", [
    ("036000291452", "BU", "03600029145"),
    ("05901234123457", "BE", "590123412345"),
    (None, "BC", "TSH-BLU-M"),
    ("95012345678903", "BC", "TSH-BLU-M"),          # a GTIN-14 with packaging indicator: no EAN-13
])
def test_variant_barcode_kind_follows_the_gtin(gtin, command, data):
    fmt = one_format(render("variant", {**EXAMPLES["variant"], "gtin": gtin}, Media(300, 50, 30, "zpl")))
    (bars,) = fmt.barcodes()
    assert (bars.command, bars.text) == (command, data)


def test_utf8_names_go_out_as_utf8():
    zpl = render("variant", {**EXAMPLES["variant"], "name": "ä ö ü ß ą ć ę ł ń ó ś ź ż Ä Ö Ü"},
                 Media(203, 50, 30, "zpl"))
    assert "ä ö ü ß ą ć ę ł ń ó ś ź ż Ä Ö Ü".encode() in zpl
    assert b"^CI28" in zpl


def test_command_characters_in_names_are_escaped():
    name = "Caret^XZ tilde~JR under_score back\\slash"
    zpl = render("variant", {**EXAMPLES["variant"], "name": name}, Media(203, 50, 30, "zpl"))
    assert b"^XZ tilde" not in zpl and b"~JR" not in zpl
    assert b"Caret_5EXZ tilde_7EJR" in zpl and b"under_5Fscore back\\\\slash" in zpl
    fmt = one_format(zpl)
    assert name in [field.text.replace("\n", " ") for field in fmt.texts()]
    plain = one_format(render("variant", EXAMPLES["variant"], Media(203, 50, 30, "zpl")))
    assert len(fmt.fields) == len(plain.fields)


def test_copies_are_one_format_with_pq():
    zpl = render("location", EXAMPLES["location"], Media(203, 50, 30, "zpl"), copies=7)
    assert one_format(zpl).command("^PQ") == "7"
    for copies in (0, -1, 1.5, True, 100_000):
        with pytest.raises(LabelError) as caught:
            render("location", EXAMPLES["location"], Media(203, 50, 30, "zpl"), copies=copies)
        assert caught.value.details["field"] == "copies"


def test_positions_and_sizes_scale_with_dpi():
    formats = {dpi: one_format(render("variant", EXAMPLES["variant"], media_for("variant", "zpl", dpi)))
               for dpi in DPIS}
    base = formats[203]
    for dpi in (300, 600):
        ratio = dpi / 203
        fields = formats[dpi].fields
        assert [(f.command, f.text) for f in fields] == [(f.command, f.text) for f in base.fields]
        for low, high in zip(base.fields, fields):
            if high.command in ("BC", "BE", "BU"):
                continue        # centred, and whole-dot modules differ a little in mm: checked below
            assert abs(high.x - low.x * ratio) <= 2 * ratio, (low, high)
            assert abs(high.y - low.y * ratio) <= 2 * ratio, (low, high)
            if high.command == "A0":
                assert abs(high.height - low.height * ratio) <= 1.5 * ratio


def test_barcodes_stay_centred_at_every_dpi():
    centres, modules = [], []
    for dpi in DPIS:
        page = layout("variant", EXAMPLES["variant"], media_for("variant", "zpl", dpi))
        bars = next(item for item in page.items if isinstance(item, PlacedBarcode))
        centres.append((bars.x + len(bars.symbol.modules) * bars.module / 2) * 25.4 / dpi)
        modules.append(bars.module * 25.4 / dpi)
    assert max(centres) - min(centres) < 0.3, centres
    assert max(modules) - min(modules) < 0.13, modules


def test_location_code128_is_set_b_and_reads_back():
    fmt = one_format(render("location", EXAMPLES["location"], Media(300, 50, 30, "zpl")))
    (bars,) = fmt.barcodes()
    assert bars.command == "BC" and bars.params[:3] == ["N", bars.params[1], "N"]
    assert bars.text == "A-01-03.2"
    assert fmt.texts()[0].text == "A-01-03.2" and fmt.texts()[0].height >= 60


def test_gs1_128_case_label():
    zpl = render("case", EXAMPLES["case"], Media(203, 100, 50, "zpl"))
    fmt = one_format(zpl)
    (bars,) = fmt.barcodes()
    assert "^FD>;>8" in zpl.decode()                        # start C, FNC1 first: GS1-128
    assert bars.text == "01095011015300031726123110L2406A\x1d3024"   # (01)(17)(10) FNC1 (30)
    hri = [field.text for field in fmt.texts() if field.text.startswith("(01)")]
    assert hri and hri[0].replace("\n", " ") == "(01) 09501101530003 (17) 261231 (10) L2406A (30) 24"
    hri_field = next(field for field in fmt.texts() if field.text.startswith("(01)"))
    assert hri_field.y > bars.y + bars.height                # under the bars


def test_sscc_label():
    fmt = one_format(render("sscc", EXAMPLES["sscc"], Media(300, 100, 150, "zpl")))
    (bars,) = fmt.barcodes()
    assert bars.text == "00395011010000000019"
    texts = [field.text for field in fmt.texts()]
    assert "FROM WAW Warszawa Główny" in texts and "TO BER Berlin Süd" in texts
    assert any("42 x SKU-0014" in text for text in texts)
    assert bars.module * 25.4 / 300 >= 0.3


def test_media_settings():
    media = Media(203, 50, 30, "zpl", media="mark", darkness=15, speed=4, offset_x_mm=-2.0, offset_y_mm=1.0)
    fmt = one_format(render("location", EXAMPLES["location"], media))
    assert fmt.command("^MN") == "M" and fmt.command("~SD") == "15" and fmt.command("^PR") == "4"
    assert fmt.command("^LH") == "0,8" and fmt.command("^LS") == "16"
    continuous = one_format(render("location", EXAMPLES["location"], Media(600, 50, 30, "zpl", media="continuous",
                                                                         offset_y_mm=-1.0)))
    assert continuous.command("^MN") == "N" and continuous.command("^LT") == "-24"


def test_long_name_in_a_block():
    fmt = one_format(render("variant", {**EXAMPLES["variant"], "name": LONG_NAME}, Media(203, 50, 30, "zpl")))
    name = next(field for field in fmt.texts() if field.text.startswith("Bio"))
    assert " ".join(name.lines) == LONG_NAME
    assert name.block[1] == str(len(name.lines)) and len(name.lines) > 1
