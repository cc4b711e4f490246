"""The six label types: checking their data and describing their layout (blocks top to bottom, sizes in mm).

Sizes are written for a 50 x 30 mm label and grow with larger labels (`_scale`), so a 100 x 150 mm shipping
label is not a small label in a corner. Only ASCII punctuation is used in fixed texts: the ESC/POS code pages
and the printers' built-in fonts all have it, arrows and ellipses not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from appliance.printing import barcode_code128
from appliance.printing.barcode_symbols import Symbol, code128, ean13, gs1_128, upca
from appliance.printing.layout import Barcode, Block, Items, LabelError, Row, Rule, Text
from appliance.printing.media import Media
from appliance.scanning.gs1 import check_digit

CODE = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,39}")     # the appliance's own codes: safe on every keyboard layout
MAX_TEXT = 2000
MAX_LINES = 500

# ---- checking --------------------------------------------------------------------------------------------


def _text(data: dict, field: str, *, required: bool = True, default: str | None = None, where: str = "") -> str:
    name = where + field
    value = data.get(field, default)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise LabelError(f"{name}: expected text, got {value!r}", field=name)
    if any(ord(char) < 32 and char not in "\t\r\n" or 0x7f <= ord(char) < 0xa0 for char in value):
        raise LabelError(f"{name}: {value!r} contains a control character", field=name)
    value = " ".join(value.split())     # line breaks and tabs in names are accidents of copy and paste
    if required and not value:
        raise LabelError(f"{name}: must not be empty", field=name)
    if len(value) > MAX_TEXT:
        raise LabelError(f"{name}: {len(value)} characters, more than any label holds ({MAX_TEXT})", field=name)
    return value


def _barcode_text(data: dict, field: str, where: str = "") -> str:
    value = _text(data, field, where=where)
    why = barcode_code128.problem(value)
    if why:
        raise LabelError(f"{where}{field}: {value!r} {why}", field=where + field)
    return value


def _code(data: dict, field: str) -> str:
    value = _text(data, field)
    if not CODE.fullmatch(value):
        raise LabelError(f"{field}: {value!r} is not an appliance code (1-40 upper-case letters, digits, '-' and "
                         "'.')", field=field)
    return value


def _int(data: dict, field: str, *, low: int, high: int, required: bool = True, where: str = "") -> int | None:
    name = where + field
    value = data.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabelError(f"{name}: expected a whole number, got {value!r}", field=name)
    if not low <= value <= high:
        raise LabelError(f"{name}: {value} is outside {low}-{high}", field=name)
    return value


def _date(data: dict, field: str, *, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise LabelError(f"{field}: {value!r} is not a date YYYY-MM-DD", field=field)
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise LabelError(f"{field}: {value!r} is not a real date ({exc})", field=field) from None
    return value


def _digits(value: Any, field: str, lengths: tuple[int, ...]) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) not in lengths:
        raise LabelError(f"{field}: {value!r} must be {' or '.join(map(str, lengths))} digits", field=field)
    if check_digit(value[:-1]) != int(value[-1]):
        raise LabelError(f"{field}: {value} has a wrong check digit, it should end in {check_digit(value[:-1])}",
                         field=field)
    return value


def _lines(data: dict, with_name: bool) -> list[dict]:
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        raise LabelError("lines: expected a non-empty list of {sku, qty}", field="lines")
    if len(lines) > MAX_LINES:
        raise LabelError(f"lines: {len(lines)} lines, at most {MAX_LINES}", field="lines")
    out = []
    for index, line in enumerate(lines):
        where = f"lines[{index}]."
        if not isinstance(line, dict):
            raise LabelError(f"lines[{index}]: expected an object, got {line!r}", field=f"lines[{index}]")
        item = {"sku": _text(line, "sku", where=where), "qty": _qty(line, "qty", where)}
        if with_name:
            item["name"] = _text(line, "name", required=False, default="", where=where)
        out.append(item)
    return out


def _qty(data: dict, field: str, where: str = "") -> int | float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise LabelError(f"{where}{field}: expected a quantity (a number, not negative), got {value!r}",
                         field=where + field)
    return value


def _check_variant(data: dict) -> dict:
    out = {"sku": _text(data, "sku"), "name": _text(data, "name"),
           "variant": _text(data, "variant", required=False, default=""),
           "price": _int(data, "price", low=0, high=10**12, required=False),
           "currency": _text(data, "currency", required=False, default="EUR"),
           "currency_digits": _int({"d": data.get("currency_digits", 2)}, "d", low=0, high=4),
           "gtin": None}
    if not re.fullmatch(r"[A-Z]{3}", out["currency"]):
        raise LabelError(f"currency: {out['currency']!r} is not an ISO 4217 code like EUR", field="currency")
    if data.get("gtin") not in (None, ""):
        out["gtin"] = _digits(data["gtin"], "gtin", (8, 12, 13, 14))
    if _variant_symbol_kind(out["gtin"]) == "code128":
        _barcode_text(out, "sku")
    return out


def _check_case(data: dict) -> dict:
    gtin = data.get("gtin")
    if isinstance(gtin, str) and len(gtin) == 13:
        gtin = "0" + gtin
    lot = _text(data, "lot")
    if len(lot) > 20 or not re.fullmatch(r"[!\"%-?A-Z_a-z]+", lot) or set(lot) & barcode_code128.UNSAFE:
        raise LabelError(f"lot: {lot!r} must be 1-20 characters of GS1's set (letters, digits, "
                         "!\"%&'()*+,-./:;<=?_) for AI 10", field="lot")
    return {"gtin": _digits(gtin, "gtin", (14,)), "lot": lot, "expiry": _date(data, "expiry"),
            "name": _text(data, "name"), "count": _int(data, "count", low=1, high=99_999_999, required=False)}


def _check_location(data: dict) -> dict:
    return {"code": _code(data, "code"), "name": _text(data, "name", required=False, default="")}


def _check_sscc(data: dict) -> dict:
    sscc = data.get("sscc")
    if isinstance(sscc, str) and len(sscc) == 17 and sscc.isascii() and sscc.isdigit():
        sscc += str(check_digit(sscc))
    return {"sscc": _digits(sscc, "sscc", (18,)), "from_site": _text(data, "from_site"),
            "from_name": _text(data, "from_name", required=False, default=""), "to_site": _text(data, "to_site"),
            "to_name": _text(data, "to_name", required=False, default=""), "transfer": _code(data, "transfer"),
            "lines": _lines(data, with_name=False), "total_qty": _qty(data, "total_qty")}


def _check_po_receiving(data: dict) -> dict:
    return {"po": _barcode_text(data, "po"), "line": _int(data, "line", low=1, high=99_999),
            "sku": _barcode_text(data, "sku"), "name": _text(data, "name"), "qty": _qty(data, "qty"),
            "supplier": _text(data, "supplier", required=False, default=""),
            "lot": _text(data, "lot", required=False, default=""), "expiry": _date(data, "expiry", required=False)}


def _check_transfer_document(data: dict) -> dict:
    return {"transfer": _code(data, "transfer"), "from_site": _text(data, "from_site"),
            "to_site": _text(data, "to_site"), "lines": _lines(data, with_name=True),
            "created": _date(data, "created")}


# ---- layouts ---------------------------------------------------------------------------------------------

def _scale(media: Media) -> float:
    """How much larger than a 50 x 30 mm label this one is (1-3)."""
    return max(1.0, min(3.0, media.width_mm / 50, media.height_mm / 30))


def _number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def price_text(price: int, currency: str, digits: int) -> str:
    """1299, EUR, 2 -> '12.99 EUR' (integer arithmetic: no float rounding on money)."""
    whole, minor = divmod(price, 10**digits)
    return f"{whole}.{minor:0{digits}d} {currency}" if digits else f"{whole} {currency}"


def _variant_symbol_kind(gtin: str | None) -> str:
    if gtin and (len(gtin) == 13 or (len(gtin) == 14 and gtin[0] == "0")):
        return "ean13"
    if gtin and len(gtin) == 12:
        return "upca"
    return "code128"


def _variant(d: dict, k: float) -> list[Block]:
    kind = _variant_symbol_kind(d["gtin"])
    symbol: Symbol
    caption = None
    if kind == "ean13":
        symbol = ean13(d["gtin"][-13:])
        digits = symbol.text
        caption = Text("gtin", f"{digits[0]} {digits[1:7]} {digits[7:]}", 2.2 * k, align="center")
    elif kind == "upca":
        symbol = upca(d["gtin"])
        digits = symbol.text
        caption = Text("gtin", f"{digits[0]} {digits[1:6]} {digits[6:11]} {digits[11]}", 2.2 * k, align="center")
    else:
        symbol = code128(d["sku"])
    blocks: list[Block] = [Text("name", d["name"], 3.4 * k, max_lines=6)]
    if d["variant"]:
        blocks.append(Text("variant", d["variant"], 2.6 * k, max_lines=2))
    price = price_text(d["price"], d["currency"], d["currency_digits"]) if d["price"] is not None else ""
    blocks.append(Row(Text("sku", d["sku"], 2.8 * k, max_lines=2), Text("price", price, 2.8 * k)))
    blocks.append(Barcode("gtin" if kind != "code128" else "sku", symbol, 9 * k, 4, caption))
    return blocks


def _case(d: dict, k: float) -> list[Block]:
    elements = [("01", d["gtin"]), ("17", d["expiry"][2:].replace("-", "")), ("10", d["lot"])]
    if d["count"] is not None:
        elements.append(("30", str(d["count"])))
    symbol = gs1_128(elements)
    readable = " ".join(f"({ai}) {value}" for ai, value in elements)
    gtin_line = Text("gtin", f"GTIN {d['gtin']}", 2.8 * k)
    return [Text("name", d["name"], 3.4 * k, max_lines=2),
            Row(Text("lot", f"LOT {d['lot']}", 3.0 * k), Text("expiry", f"EXP {d['expiry']}", 3.0 * k)),
            Row(gtin_line, Text("count", f"COUNT {d['count']}", 2.8 * k)) if d["count"] is not None else gtin_line,
            Barcode("gtin", symbol, 12 * k, 6, Text("gtin", readable, 2.4 * k, max_lines=2, align="center"),
                    module_mm=0.5)]


def _location(d: dict, k: float) -> list[Block]:
    blocks: list[Block] = [Text("code", d["code"], 9 * k, min_size=3, align="center")]
    if d["name"]:
        blocks.append(Text("name", d["name"], 2.6 * k, max_lines=1, align="center"))
    blocks.append(Barcode("code", code128(d["code"]), 10 * k, 5, module_mm=0.4))
    return blocks


def _sscc(d: dict, k: float) -> list[Block]:
    source = f"FROM {d['from_site']} {d['from_name']}".rstrip()
    target = f"TO {d['to_site']} {d['to_name']}".rstrip()
    lines = tuple(f"{_number(line['qty'])} x {line['sku']}" for line in d["lines"])
    return [Text("from_site", source, 3.0 * k, max_lines=2),
            Text("to_site", target, 4.5 * k, max_lines=2),
            Row(Text("transfer", f"TRANSFER {d['transfer']}", 3.0 * k),
                Text("total_qty", f"{_number(d['total_qty'])} units", 3.0 * k)),
            Rule(),
            Items("lines", lines, 2.6 * k, min_size=2.2),
            Rule(),
            Barcode("sscc", gs1_128([("00", d["sscc"])]), 12.5 * k, 8,
                    Text("sscc", f"(00) {d['sscc']}", 3.0 * k, align="center"), module_mm=0.5)]


def _po_receiving(d: dict, k: float) -> list[Block]:
    details = "  ".join(part for part in (f"LOT {d['lot']}" if d["lot"] else "",
                                          f"EXP {d['expiry']}" if d["expiry"] else "") if part)
    blocks: list[Block] = [Row(Text("po", f"PO {d['po']}/{d['line']}", 3.0 * k, max_lines=2),
                               Text("qty", f"QTY {_number(d['qty'])}", 3.0 * k)),
                           Text("name", d["name"], 3.0 * k, max_lines=2)]
    if d["supplier"] or details:
        blocks.append(Row(Text("supplier", d["supplier"], 2.4 * k), Text("lot", details, 2.4 * k)))
    blocks.append(Barcode("sku", code128(d["sku"]), 9 * k, 5, Text("sku", d["sku"], 2.6 * k, align="center")))
    return blocks


def _transfer_document(d: dict, k: float) -> list[Block]:
    lines = tuple(f"{_number(line['qty'])} x {line['sku']} {line['name']}".rstrip() for line in d["lines"])
    return [Text("transfer", f"TRANSFER {d['transfer']}", 4.0 * k, align="center"),
            Text("from_site", f"FROM {d['from_site']}  TO {d['to_site']}", 3.2 * k, max_lines=2, align="center"),
            Text("created", f"created {d['created']}, {len(lines)} lines", 2.4 * k, align="center"),
            Barcode("transfer", code128(d["transfer"]), 9 * k, 5, module_mm=0.4),
            Rule(),
            Items("lines", lines, 2.6 * k, min_size=2.2)]


LABELS: dict[str, tuple[Callable[[dict], dict], Callable[[dict, float], list[Block]]]] = {
    "variant": (_check_variant, _variant),
    "case": (_check_case, _case),
    "location": (_check_location, _location),
    "sscc": (_check_sscc, _sscc),
    "po_receiving": (_check_po_receiving, _po_receiving),
    "transfer_document": (_check_transfer_document, _transfer_document),
}


def check(label_type: str, data: dict) -> dict:
    if label_type not in LABELS:
        raise LabelError(f"label type {label_type!r} is not one of {', '.join(LABELS)}", field="label_type")
    if not isinstance(data, dict):
        raise LabelError(f"label data must be an object, got {type(data).__name__}", field="data")
    return LABELS[label_type][0](data)


def blocks(label_type: str, checked: dict, media: Media) -> list[Block]:
    """The layout of an already checked label for this media's size."""
    return LABELS[label_type][1](checked, _scale(media))


# Realistic data for every label type: test prints, previews, the benchmark and the tests use these.
EXAMPLES: dict[str, dict] = {
    "variant": {"sku": "TSH-BLU-M", "name": "Koszulka bawełniana Żółć – Größe M", "variant": "niebieska / blau",
                "price": 4999, "currency": "PLN", "currency_digits": 2, "gtin": "5901234123457"},
    "case": {"gtin": "09501101530003", "lot": "L2406A", "expiry": "2026-12-31", "name": "Müsli Früchte 500 g",
             "count": 24},
    "location": {"code": "A-01-03.2", "name": "Regał A, półka 3"},
    "sscc": {"sscc": "39501101000000001", "from_site": "WAW", "from_name": "Warszawa Główny",
             "to_site": "BER", "to_name": "Berlin Süd", "transfer": "TR-2024-0042",
             "lines": [{"sku": f"SKU-{n:04d}", "qty": n * 3} for n in range(1, 15)], "total_qty": 315},
    "po_receiving": {"po": "PO-1043", "line": 3, "sku": "MUS-500", "name": "Müsli Früchte 500 g, Łódź edition",
                     "qty": 48, "supplier": "Hofmühle GmbH", "lot": "L2406A", "expiry": "2026-12-31"},
    "transfer_document": {"transfer": "TR-2024-0042", "from_site": "WAW", "to_site": "BER",
                          "lines": [{"sku": f"SKU-{n:04d}", "qty": n, "name": f"Artykuł {n} źdźbło"}
                                    for n in range(1, 41)],
                          "created": "2024-06-14"},
}

# A label size each type is commonly printed on: (width, height) in mm for ZPL label stock and for 80 mm
# ESC/POS paper (72 mm printable).
EXAMPLE_SIZES: dict[str, dict[str, tuple[float, float]]] = {
    "variant": {"zpl": (50, 30), "escpos": (72, 50)},
    "case": {"zpl": (100, 50), "escpos": (72, 60)},
    "location": {"zpl": (50, 30), "escpos": (72, 40)},
    "sscc": {"zpl": (100, 150), "escpos": (72, 150)},
    "po_receiving": {"zpl": (100, 50), "escpos": (72, 60)},
    "transfer_document": {"zpl": (100, 150), "escpos": (72, 200)},
}
