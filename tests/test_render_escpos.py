"""ESC/POS output as python-escpos' Dummy builds it: code page, encoded text, GS k barcodes, feed and cut."""

from __future__ import annotations

import pytest

from appliance.printing.labels import EXAMPLES
from appliance.printing.render import LabelError, Media, render
from test_label_layout import DPIS, LONG_NAME, example, media_for

INIT = b"\x1b@"
CP852 = b"\x1bt\x12"             # ESC t 18: CP852 in python-escpos' default profile
CUT = b"\x1dV\x00"               # GS V 0: full cut
GS_K = b"\x1dk"


def gs_k(kind: int, data: bytes) -> bytes:
    """A function-B GS k command: type, length, data."""
    return GS_K + bytes([kind, len(data)]) + data


@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_every_label_renders(label, dpi):
    out = render(label, example(label, "escpos"), media_for(label, "escpos", dpi))
    assert out.startswith(INIT + CP852)
    assert GS_K in out and out.endswith(CUT) and out.count(CUT) == 1


def test_text_is_encoded_in_the_code_page():
    out = render("variant", EXAMPLES["variant"], Media(203, 72, 50, "escpos", media="continuous"))
    assert "Koszulka bawełniana Żółć - Größe M".encode("cp852") in out     # the en dash printed as '-'
    assert "niebieska / blau".encode("cp852") in out
    assert "Żółć".encode() not in out                                   # no UTF-8 leaks through
    assert b"49.99 PLN" in out and b"TSH-BLU-M" in out


def test_other_code_page():
    out = render("location", EXAMPLES["location"], Media(203, 72, 40, "escpos", codepage="CP1250"))
    assert out.startswith(INIT + b"\x1bt\x2d")                           # ESC t 45: CP1250
    assert "Regał A, półka 3".encode("cp1250") in out
    with pytest.raises(LabelError) as caught:
        render("location", EXAMPLES["location"], Media(203, 72, 40, "escpos", codepage="NOPE99"))
    assert caught.value.details["field"] == "codepage"


@pytest.mark.parametrize("gtin, expected", [
    ("5901234123457", gs_k(67, b"590123412345")),                       # EAN13
    ("036000291452", gs_k(65, b"03600029145")),                         # UPC-A
    (None, gs_k(73, b"{BTSH-BLU-M")),                                   # CODE128, set B
])
def test_variant_barcodes(gtin, expected):
    out = render("variant", {**EXAMPLES["variant"], "gtin": gtin}, Media(203, 72, 50, "escpos"))
    assert expected in out
    assert b"\x1dH\x00" in out                                          # printer's HRI off: ours is text


def test_gs1_128_as_code128_with_fnc1():
    out = render("case", example("case", "escpos"), Media(203, 72, 60, "escpos"))
    # {C start, {1 FNC1, then (01)0950110153000 3(17)261231(10) as digit pairs, {B for the lot's letters.
    pairs = bytes(int("0109501101530003172612311" [i:i + 2]) for i in range(0, 24, 2))
    assert GS_K + bytes([73]) in out
    start = out.index(GS_K + bytes([73]))
    data = out[start + 4:start + 4 + out[start + 3]]
    assert data.startswith(b"{C{1" + pairs)
    assert data.endswith(b"{BL{C\x18\x06{BA")                           # L, 24 06, A


def test_row_puts_price_at_the_right_edge():
    out = render("variant", EXAMPLES["variant"], Media(203, 72, 50, "escpos"))
    line = next(part for part in out.split(b"\n") if b"PLN" in part)
    text = line[line.rindex(b"TSH"):]
    columns = Media(203, 72, 50, "escpos").dots(72) // 12                # 575 dots: 47 columns of font A
    assert len(text) == columns and text.endswith(b"49.99 PLN")


def test_long_name_wraps_to_the_paper_width():
    out = render("variant", {**EXAMPLES["variant"], "name": LONG_NAME}, Media(203, 72, 60, "escpos"))
    lines = [line.rsplit(b"\x1d!\x00", 1)[-1] for line in out.split(b"\n")]
    name_lines = [line for line in lines if line.startswith(b"Bio") or b"Mindesthaltbarkeit" in line]
    assert name_lines and all(len(line) <= 48 for line in lines if b"\x1d" not in line and b"\x1b" not in line)
    assert LONG_NAME.replace("–", "-").encode("cp852").replace(b" ", b"") in b"".join(
        line.replace(b" ", b"") for line in lines)


def test_copies_repeat_the_label_and_gap_media_feeds_to_the_next_label():
    once = render("location", EXAMPLES["location"], Media(203, 72, 40, "escpos"))
    thrice = render("location", EXAMPLES["location"], Media(203, 72, 40, "escpos"), copies=3)
    body = once[len(INIT + CP852):]
    assert thrice == INIT + CP852 + body * 3
    assert once.endswith(b"\x1d\x0c") and CUT not in once               # gap: GS FF, no cut
    continuous = render("location", EXAMPLES["location"], Media(203, 72, 40, "escpos", media="continuous"),
                        copies=2)
    assert continuous.count(CUT) == 2


def test_rendering_writes_nothing_to_stdout(capsys):
    render("variant", EXAMPLES["variant"], Media(203, 72, 50, "escpos"))
    render("case", example("case", "escpos"), Media(203, 72, 60, "escpos"))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_case_with_count_is_too_wide_for_72_mm_paper():
    with pytest.raises(LabelError) as caught:
        render("case", EXAMPLES["case"], Media(203, 72, 60, "escpos"))
    assert caught.value.details["field"] == "gtin"
    assert "72 mm" in str(caught.value) and "<GS>" in str(caught.value)
