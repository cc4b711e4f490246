"""Phase one of the product import: the file alone, no database.

Bytes to text, text to CSV records, the header checked, every row validated into a typed `Row`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.catalog import money
from appliance.errors import InvalidInput

Progress = Callable[[int, int, str], None]

COLUMNS = ("sku", "name", "product_sku", "variant_name", "barcode", "category", "supplier", "cost_price",
           "sale_price", "unit", "pack_size", "reorder_point", "reorder_qty", "description", "image_url", "active")
REQUIRED = ("sku", "name")
PRODUCT_COLUMNS = ("name", "description", "category", "supplier", "image_url")   # named as the fields
VARIANT_COLUMNS = {"variant_name": "name", "cost_price": "cost_price", "sale_price": "sale_price", "unit": "unit",
                   "reorder_point": "reorder_point", "reorder_qty": "reorder_qty", "active": "active"}
CHUNK = 1000   # rows per progress report and per batch of writes
MESSAGE_ERRORS = 50

SKU = re.compile(r"[A-Za-z0-9._/-]+")
WHOLE = re.compile(r"-?[0-9]+")
GTIN_LENGTHS = (8, 12, 13, 14)
EXCEL_SHORTENED = re.compile(r"[0-9]+([.,][0-9]+)?E\+?[0-9]+", re.IGNORECASE)
FLAGS = {"1": True, "yes": True, "true": True, "wahr": True, "prawda": True,
         "0": False, "no": False, "false": False, "falsch": False, "fałsz": False}
MAX_INT = 2 ** 63 - 1
ENCODING_HINT = ("if Excel saved it, give its encoding: --encoding cp1252 (Western Excel) or --encoding cp1250 "
                 "(Polish Excel)")


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.column:
            where += f", column {self.column}"
        if self.value is not None:
            where += f", value {self.value!r}"
        return f"{where}: {self.reason}"


class CsvImportError(InvalidInput):
    code = "invalid_csv"

    def __init__(self, source: str, errors: list[RowError]) -> None:
        shown = [str(error) for error in errors[:MESSAGE_ERRORS]]
        if len(errors) > MESSAGE_ERRORS:
            shown.append(f"... and {len(errors) - MESSAGE_ERRORS} more")
        problems = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{source}: nothing was imported, {problems}:\n  " + "\n  ".join(shown),
                         errors=[asdict(error) for error in errors])
        self.errors = errors


@dataclass
class Row:
    """One parsed row; `product` and `variant` hold only the columns present in the file, by field name."""

    line: int
    sku: str | None = None
    product_sku: str | None = None
    product: dict[str, Any] = field(default_factory=dict)
    variant: dict[str, Any] = field(default_factory=dict)
    barcodes: dict[str, str] = field(default_factory=dict)   # code -> kind
    pack_size: int | None = None
    bad: bool = False


class BadValue(ValueError):
    """A reason, and the part of the cell it is about when that is not the whole cell (one of several barcodes)."""

    def __init__(self, reason: str, value: str | None = None) -> None:
        super().__init__(reason)
        self.value = value


def decode(data: bytes, encoding: str | None, source: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvImportError(source, [RowError(1, None, None, "the file is UTF-16 (Excel \"Unicode Text\"); "
                                               "save it as \"CSV UTF-8\" or \"CSV\" instead")])
    try:
        name = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise InvalidInput(f"unknown encoding {encoding!r}", field="encoding") from None
    if name == "utf-8" or data.startswith(codecs.BOM_UTF8):
        name = "utf-8-sig"
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        newline = b"\n" if b"\n" in data else b"\r"
        line = data.count(newline, 0, exc.start) + 1
        start = data.rfind(newline, 0, exc.start) + 1
        end = data.find(newline, exc.start)
        shown = data[start:end if end >= 0 else len(data)].decode(name, errors="replace").strip()[:80]
        reason = f"not valid {'UTF-8' if name == 'utf-8-sig' else name} (byte 0x{data[exc.start]:02x})"
        if encoding is None:
            reason += f"; {ENCODING_HINT}"
        raise CsvImportError(source, [RowError(line, None, shown, reason)]) from None


def parse(text: str, source: str, digits: int, progress: Progress) -> tuple[set[str], list[Row], list[RowError]]:
    """The columns present, every data row (bad ones flagged) and the problems found in them.

    Raises CsvImportError for problems with the file as a whole (CSV syntax, header).
    """
    records = _records(text, source)
    if not records:
        raise CsvImportError(source, [RowError(1, None, None, "the file is empty: no header line")])
    names = _header(*records[0], source)
    parsers = _parsers(digits)
    rows: list[Row] = []
    errors: list[RowError] = []
    line_of_sku: dict[str, int] = {}
    owner_of_code: dict[str, tuple[str, int]] = {}
    total = len(records) - 1
    for done, (line, cells) in enumerate(records[1:], 1):
        row = Row(line)
        found = _parse_cells(row, names, cells, parsers)
        if row.sku is not None:
            first = line_of_sku.setdefault(row.sku, line)
            if first != line:
                found.append(RowError(line, "sku", row.sku, f"duplicate: SKU already on line {first}"))
            for code in row.barcodes:
                sku, first = owner_of_code.setdefault(code, (row.sku, line))
                if sku != row.sku:
                    found.append(RowError(line, "barcode", code, f"also on line {first} for SKU {sku}; "
                                          f"a barcode belongs to one SKU only"))
        row.bad = bool(found)
        errors += found
        rows.append(row)
        if done % CHUNK == 0 or done == total:
            progress(done, total, "validate")
    return {name for name in names if name}, rows, errors


def _records(text: str, source: str) -> list[tuple[int, list[str]]]:
    """(physical line where it starts, cells) of every record that is not blank, the header first."""
    first = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    records = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        hint = " (a quoted field is never closed)" if "end of data" in str(exc) else ""
        raise CsvImportError(source, [RowError(start, None, None, f"not valid CSV: {exc}{hint}")]) from None
    return records


def _delimiter(header: str) -> str:
    def known(delimiter: str) -> int:
        cells = next(csv.reader([header], delimiter=delimiter), [])
        return sum(cell.strip().lower() in COLUMNS for cell in cells)
    return max((",", ";"), key=known)   # max keeps the first of equals: "," on a tie


def _header(line: int, cells: list[str], source: str) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    errors = [RowError(line, name, None, "unknown column; the columns are " + ", ".join(COLUMNS))
              for name in names if name and name not in COLUMNS]
    errors += [RowError(line, name, None, "column appears more than once")
               for name in sorted({n for n in names if n and names.count(n) > 1})]
    errors += [RowError(line, name, None, "required column is missing") for name in REQUIRED if name not in names]
    if errors:
        raise CsvImportError(source, errors)
    return names


def _parse_cells(row: Row, names: list[str], cells: list[str], parsers: dict) -> list[RowError]:
    line = row.line
    if len(cells) > len(names) and not any(cell.strip() for cell in cells[len(names):]):
        cells = cells[:len(names)]
    if len(cells) != len(names):
        hint = " (a decimal comma in a comma-separated file needs quotes)" if len(cells) > len(names) else ""
        return [RowError(line, None, None, f"{len(cells)} cells, but the header has {len(names)}{hint}")]
    errors = []
    for name, cell in zip(names, cells):
        value = cell.strip()
        if not name:
            if value:
                errors.append(RowError(line, None, value, "value in a column without a name"))
            continue
        try:
            parsed = parsers[name](value)
        except ValueError as exc:
            shown = getattr(exc, "value", None)
            errors.append(RowError(line, name, value if shown is None else shown, str(exc)))
            continue
        if name in PRODUCT_COLUMNS:
            row.product[name] = parsed
        elif name in VARIANT_COLUMNS:
            row.variant[VARIANT_COLUMNS[name]] = parsed
        else:   # sku, product_sku, pack_size, barcode (-> barcodes)
            setattr(row, "barcodes" if name == "barcode" else name, parsed)
    if row.product_sku == "":
        row.product_sku = row.sku
    return errors


def _parsers(digits: int) -> dict[str, Callable[[str], Any]]:
    def amount(text: str) -> int | None:
        if not text:
            return None
        value = money.parse_amount(text, digits)
        if value < 0:
            raise ValueError("must not be negative")
        return _bounded(value)

    return {"sku": _sku, "product_sku": lambda text: _sku(text) if text else "", "name": _name,
            "variant_name": str, "barcode": _barcodes, "category": str, "supplier": lambda text: text or None,
            "cost_price": amount, "sale_price": amount, "unit": lambda text: text or "each",
            "pack_size": _whole(1), "reorder_point": _whole(0), "reorder_qty": _whole(1),
            "description": str, "image_url": lambda text: text or None, "active": _flag}


def _sku(text: str) -> str:
    if not SKU.fullmatch(text):
        raise ValueError("only letters, digits and - _ . / are allowed (no spaces)" if text else "required")
    return text


def _name(text: str) -> str:
    if not text:
        raise ValueError("required")
    return text


def _whole(minimum: int) -> Callable[[str], int | None]:
    def parse_whole(text: str) -> int | None:
        if not text:
            return None
        if not WHOLE.fullmatch(text):
            raise ValueError("not a whole number")
        value = int(text)
        if value < minimum:
            raise ValueError("must not be negative" if minimum == 0 else f"must be at least {minimum}")
        return _bounded(value)
    return parse_whole


def _bounded(value: int) -> int:
    if value > MAX_INT:
        raise ValueError("too large")
    return value


def _flag(text: str) -> bool:
    if not text:
        return True
    try:
        return FLAGS[text.lower()]
    except KeyError:
        raise ValueError("not 1/0, yes/no or true/false") from None


def _barcodes(text: str) -> dict[str, str]:
    return {code: barcode_kind(code) for code in (part.strip() for part in text.split("|")) if code}


def barcode_kind(code: str) -> str:
    """'gtin' for a GTIN with a correct check digit, 'supplier' for a code not shaped like a GTIN."""
    if EXCEL_SHORTENED.fullmatch(code):
        raise BadValue("a number Excel shortened: format the column as Text and type the codes again", code)
    if not (code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS):
        return "supplier"
    expected = gtin_check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise BadValue(f"wrong GTIN check digit {code[-1]}, expected {expected}", code)
    return "gtin"


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10: weights 3, 1, 3, ... from the rightmost digit of `body` (the code without its check digit)."""
    total = 3 * sum(map(int, body[::-2])) + sum(map(int, body[-2::-2]))
    return -total % 10
