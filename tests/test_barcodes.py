"""Barcode interpretation against a table of real-world scans (tests/data/barcodes.csv), plus the GS1 rules
(check digits, day 00, the century window, UPC-E expansion) and fuzzing: any text in, an Interpretation out.

The table's columns: `raw` with control characters written `\\x1d`, `\\x0d`...; the expected `kind`;
`expect` as `field=value;...` (dotted for dicts: `measures.net_weight_kg=1.250`, `ais.10=AB`; `None` for
unset); `error`/`warning`: a text one message must contain, or empty for none at all; `options`:
`today=YYYY-MM-DD` (default 2026-06-15) and `gs=` separator substitutes (space-separated).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import FrozenInstanceError
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from appliance.scanning import gs1
from appliance.scanning.barcodes import COMMANDS, KINDS, Interpretation, interpret, upc_e_to_upc_a

TABLE = Path(__file__).parent / "data" / "barcodes.csv"
TODAY = date(2026, 6, 15)


def _rows() -> list[dict[str, str]]:
    with TABLE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda match: chr(int(match.group(1), 16)), text)


def _options(text: str) -> dict:
    options: dict = {"today": TODAY}
    for part in filter(None, text.split(";")):
        key, _, value = part.partition("=")
        if key == "today":
            options["today"] = date.fromisoformat(value)
        elif key == "gs":
            options["gs_substitutes"] = tuple(value.split(" "))
        else:
            raise ValueError(f"unknown option {key!r} in {TABLE.name}")
    return options


def _lookup(found: dict, dotted: str) -> object:
    for key in dotted.split("."):
        found = found.get(key) if isinstance(found, dict) else None
    return found


ROWS = _rows()


def test_table_is_large_and_names_are_unique():
    assert len(ROWS) >= 60
    assert len({row["name"] for row in ROWS}) == len(ROWS)
    assert {row["kind"] for row in ROWS} == set(KINDS)


@pytest.mark.parametrize("row", ROWS, ids=[row["name"] for row in ROWS])
def test_real_world_barcode(row):
    result = interpret(_unescape(row["raw"]), **_options(row["options"]))
    found = result.to_dict()
    json.dumps(found)   # what the scan log and `appliance barcode parse --json` store
    assert result.kind == row["kind"], found
    for pair in filter(None, row["expect"].split(";")):
        key, _, expected = pair.partition("=")
        actual = _lookup(found, key)
        assert ("None" if actual is None else str(actual)) == expected, (key, found)
    if row["error"]:
        assert any(row["error"] in error for error in result.errors), found
    else:
        assert result.errors == (), found
    if row["warning"]:
        assert any(row["warning"] in warning for warning in result.warnings), found
    else:
        assert result.warnings == (), found


def test_gtins_are_fourteen_digits_with_a_good_check_digit():
    for row in ROWS:
        result = interpret(_unescape(row["raw"]), **_options(row["options"]))
        if result.gtin is not None:
            assert len(result.gtin) == 14 and gs1.check_digit_problem(result.gtin) is None, row["name"]


@pytest.mark.parametrize("yy, today, year", [
    (26, date(2026, 1, 1), 2026), (75, date(2026, 1, 1), 2075), (76, date(2026, 1, 1), 2076),
    (77, date(2026, 1, 1), 1977), (0, date(2026, 1, 1), 2000), (99, date(2000, 1, 1), 1999),
    (50, date(2000, 1, 1), 2050), (51, date(2000, 1, 1), 1951), (1, date(2099, 12, 31), 2101),
    (49, date(2099, 12, 31), 2149), (50, date(2099, 12, 31), 2050),
])
def test_century_window(yy, today, year):
    assert gs1.century_year(yy, today) == year


@given(st.integers(0, 99), st.dates(min_value=date(1950, 1, 1), max_value=date(9000, 12, 31)))
@settings(deadline=None)
def test_century_window_is_49_years_back_to_50_ahead(yy, today):
    year = gs1.century_year(yy, today)
    assert year % 100 == yy and today.year - 49 <= year <= today.year + 50


@pytest.mark.parametrize("text, expected", [
    ("260200", date(2026, 2, 28)), ("280200", date(2028, 2, 29)), ("000200", date(2000, 2, 29)),
    ("261100", date(2026, 11, 30)), ("261200", date(2026, 12, 31)), ("260131", date(2026, 1, 31)),
])
def test_day_00_is_the_last_day_of_the_month(text, expected):
    assert gs1.parse_date(text, TODAY) == expected


@pytest.mark.parametrize("text, reason", [
    ("260001", "month 00"), ("261301", "month 13"), ("260431", "day 31 does not exist in 2026-04"),
    ("270229", "day 29 does not exist in 2027-02"), ("2601", "6 digits"), ("26O101", "6 digits"),
])
def test_bad_dates_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        gs1.parse_date(text, TODAY)


@pytest.mark.parametrize("upc_e, upc_a", [
    ("01234505", "012000003455"), ("01234514", "012100003454"), ("01234523", "012200003453"),
    ("01234531", "012300000451"), ("01234543", "012340000053"), ("01234565", "012345000065"),
    ("04252614", "042100005264"), ("11234593", "112345000093"),
])
def test_upc_e_expansion(upc_e, upc_a):
    """One case per rule (last digit 0-2, 3, 4, 5-9); the UPC-E check digit is that of its UPC-A."""
    assert upc_e_to_upc_a(upc_e) == upc_a
    assert gs1.check_digit_problem(upc_a) is None


def test_check_digits_of_every_gtin_length_and_sscc():
    for number in ("96385074", "036000291452", "4006381333931", "15400141288763", "106141411234567897"):
        assert gs1.check_digit_problem(number) is None
        wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert gs1.check_digit_problem(wrong) == f"check digit should be {number[-1]}"


def test_gs1_values_are_typed():
    message = gs1.parse("0199501101530006310300125017270000" + "3712\x1d10L", today=TODAY)
    assert [element.ai for element in message.elements] == ["01", "3103", "17", "37", "10"]
    assert message.get("3103").value == Decimal("1.250")
    assert message.errors == ("AI 17 expiry 270000: month 00 does not exist",)
    assert message.get("37").value == 12


def test_every_command_and_quantity_code():
    for name in COMMANDS:
        assert interpret(f"CMD-{name}").command == name.lower()
    for count in (1, 7, 12, 100, 99999):
        assert interpret(f"QTY-{count}").quantity == count


def test_substitutes_and_today_defaults():
    assert interpret("0109501101530003" "10AB<GS>21C").serial == "C"
    assert interpret("0109501101530003" "10AB~21C", gs_substitutes="~").serial == "C"     # one str, not its chars
    assert interpret("0109501101530003" "10AB~21C").lot is None                           # ~ is not a default
    assert interpret("]C117991231").expiry is not None


def test_interpretation_is_frozen_and_reports_raw_visibly():
    result = interpret("]d2" "0109501101530003" "10AB\x1d21X\r\n")
    assert result.raw == "]d20109501101530003" "10AB<GS>21X<CR><LF>"
    with pytest.raises(FrozenInstanceError):
        result.kind = "text"    # type: ignore[misc]
    assert result.ok and not interpret("CMD-NOPE").ok


# Alphabets that reach the GS1, GTIN and own-code paths far more often than arbitrary text would.
_SCANNER_LIKE = st.text(alphabet="0123456789\x1d<GS>~|()]CdQEIAe10243579-.ABCDMPTQRUXYZßabz/# \r\n", max_size=60)
_PREFIXES = st.sampled_from(["", "]C1", "]d2", "]Q3", "]E0", "]E4", "]E3", "]I1", "]A0", "]C0", "]e0", "\x1d", "("])


def _never_fails(raw: str, today: date | None = None) -> Interpretation:
    result = interpret(raw, gs_substitutes=("<GS>", "~"), today=today)
    assert result.kind in KINDS
    assert not any("internal error" in error for error in result.errors), result.errors
    json.dumps(result.to_dict())
    if result.gtin is not None:
        assert len(result.gtin) == 14 and gs1.check_digit_problem(result.gtin) is None
    return result


@given(st.text(max_size=200))
@settings(deadline=None, max_examples=500)
def test_fuzz_any_text(raw):
    _never_fails(raw)


@given(_PREFIXES, _SCANNER_LIKE, st.dates())
@settings(deadline=None, max_examples=1500)
def test_fuzz_scanner_like_text(prefix, body, today):
    _never_fails(prefix + body, today)


_CSET82 = st.text(alphabet="!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
                  min_size=1, max_size=20)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.dates(date(2000, 1, 1), date(2049, 12, 31)),
       _CSET82, _CSET82, st.sampled_from(["\x1d", "<GS>", "~"]))
@settings(deadline=None, max_examples=300)
def test_fuzz_gs1_round_trip(payload, expiry, lot, serial, separator):
    # A substitute inside the data is ambiguous by construction; eight trailing digits may read as a dropped
    # separator (the table has those cases).
    assume(not any(text in lot + serial for text in ("~", "<GS>")))
    assume(not re.search(r"[0-9]{8}$", lot) and not re.search(r"[0-9]{8}$", serial))
    gtin = payload + str(gs1.check_digit(payload))
    raw = f"]C101{gtin}17{expiry:%y%m%d}10{lot}{separator}21{serial}"
    result = interpret(raw, gs_substitutes=("<GS>", "~"), today=date(2026, 6, 15))
    assert result.errors == () and result.kind == "gs1"
    assert (result.gtin, result.expiry, result.lot, result.serial) == (gtin, expiry.isoformat(), lot, serial)
