"""Import the product catalog from a CSV file as Excel or LibreOffice write it (Germany, Poland, UK).

The format (encoding, delimiter, columns, re-import rules) is the README's "CSV formats / Products" section;
change the two together. Every row is validated before anything is written; all writes are one
`BEGIN IMMEDIATE` transaction whose database-dependent checks run inside the lock.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import peewee

from appliance import clock
from appliance.catalog import money
from appliance.errors import InvalidInput

Progress = Callable[[int, int, str], None]

COLUMNS = ("sku", "name", "product_sku", "variant_name", "barcode", "category", "supplier", "cost_price",
           "sale_price", "unit", "pack_size", "reorder_point", "reorder_qty", "description", "image_url", "active")
REQUIRED = ("sku", "name")
PRODUCT_COLUMNS = ("name", "description", "category", "supplier", "image_url")   # named as the fields
VARIANT_COLUMNS = {"variant_name": "name", "cost_price": "cost_price", "sale_price": "sale_price", "unit": "unit",
                   "reorder_point": "reorder_point", "reorder_qty": "reorder_qty", "active": "active"}
PRODUCT_FIELDS = ("name", "description", "category", "supplier_id", "image_url")
VARIANT_FIELDS = ("product_id", "name", "cost_price", "sale_price", "unit", "reorder_point", "reorder_qty", "active")
PRODUCT_DEFAULTS = {"description": "", "category": "", "supplier_id": None, "image_url": None}
VARIANT_DEFAULTS = {"name": "", "cost_price": None, "sale_price": None, "unit": "each", "reorder_point": None,
                    "reorder_qty": None, "active": True}
CASE_PACK = "case"
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


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


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


def import_products(db: peewee.SqliteDatabase, path: str | Path | BinaryIO, *, currency_digits: int = 2,
                    skip_bad: bool = False, encoding: str | None = None,
                    progress: Progress | None = None) -> ImportReport:
    """Create or update products and variants from the CSV file at `path` (format: this module's docstring).

    Raises CsvImportError listing every problem (nothing written) unless `skip_bad`; then the report lists them.
    """
    progress = progress or _quiet
    source = str(path) if isinstance(path, (str, Path)) else str(getattr(path, "name", "<input>"))
    data = path.read() if hasattr(path, "read") else Path(path).read_bytes()
    present, rows, errors = parse(decode(data, encoding, source), source, currency_digits, progress)
    with db.atomic("IMMEDIATE"):
        conn = db.connection()
        catalog = Catalog(conn)
        errors = sorted(errors + check_against(catalog, present, rows), key=lambda error: error.line)
        if errors and not skip_bad:
            raise CsvImportError(source, errors)
        good = [row for row in rows if not row.bad]
        report = ImportReport(skipped=len(rows) - len(good), errors=errors)
        _Writer(conn, catalog, present, report).write(good, progress)
    return report


def _quiet(done: int, total: int, phase: str) -> None:
    pass


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


# Phase one: the file alone, no database.

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


# Phase two, inside the write transaction: the rows against the catalog, then the writes.

class Catalog:
    """The catalog as dicts, read once, so that checks and writes need no query per row."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.suppliers: dict[str, int] = dict(conn.execute("SELECT name, id FROM supplier"))
        self.products = {sku: (id_, dict(zip(PRODUCT_FIELDS, rest))) for id_, sku, *rest in conn.execute(
            f"SELECT id, sku, {', '.join(PRODUCT_FIELDS)} FROM product")}
        self.variants = {sku: (id_, dict(zip(VARIANT_FIELDS, rest))) for id_, sku, *rest in conn.execute(
            f"SELECT id, sku, {', '.join(VARIANT_FIELDS)} FROM variant")}
        self.product_sku = {id_: sku for sku, (id_, _) in self.products.items()}
        self.variant_sku = {id_: sku for sku, (id_, _) in self.variants.items()}
        self.cases: dict[int, tuple[int, int]] = {variant_id: (id_, qty) for id_, variant_id, qty in conn.execute(
            "SELECT id, variant_id, qty FROM pack WHERE name = ?", (CASE_PACK,))}
        self.barcodes: dict[str, tuple[int, int | None]] = {
            code: (variant_id, pack_id)
            for code, variant_id, pack_id in conn.execute("SELECT code, variant_id, pack_id FROM barcode")}


def check_against(catalog: Catalog, present: set[str], rows: list[Row]) -> list[RowError]:
    """Problems of the rows with the catalog: barcode owners, product fields that disagree, case packs in use.

    Fills in `product_sku` where the file has no such column, and flags the rows it finds bad.
    """
    errors: list[RowError] = []
    first_of_product: dict[str, Row] = {}
    packs_with_codes = {pack_id for _, pack_id in catalog.barcodes.values() if pack_id is not None}
    skus: set[str] = set()
    for row in rows:
        if row.sku is None or row.sku in skus:   # a repeated SKU is reported already; its product need not agree
            continue
        skus.add(row.sku)
        found = []
        existing = catalog.variants.get(row.sku)
        if "product_sku" not in present:
            row.product_sku = catalog.product_sku[existing[1]["product_id"]] if existing else row.sku
        if row.product_sku is not None:
            first = first_of_product.setdefault(row.product_sku, row)
            for name, value in row.product.items():
                if name in first.product and first.product[name] != value:
                    found.append(RowError(row.line, name, value or "", f"product {row.product_sku} has {name} "
                                          f"{first.product[name] or ''!r} on line {first.line}"))
        for code in row.barcodes:
            owner = catalog.barcodes.get(code)
            if owner is not None and catalog.variant_sku[owner[0]] != row.sku:
                found.append(RowError(row.line, "barcode", code, f"already belongs to SKU "
                                      f"{catalog.variant_sku[owner[0]]}, cannot also go to {row.sku}"))
        case = catalog.cases.get(existing[0]) if existing and "pack_size" in present else None
        # A bad row may hold no pack_size because its cell did not parse, not because it was empty.
        if case and not row.bad and (row.pack_size or 1) == 1 and case[0] in packs_with_codes:
            found.append(RowError(row.line, "pack_size", "", f"the case pack of {row.sku} has barcodes; "
                                  "it cannot be removed"))
        row.bad = row.bad or bool(found)
        errors += found
    return errors


class _Writer:
    """Bulk writes of the good rows, a chunk at a time: executemany, and one id lookup per chunk of new rows."""

    def __init__(self, conn: sqlite3.Connection, catalog: Catalog, present: set[str], report: ImportReport) -> None:
        self.conn, self.catalog, self.present, self.report = conn, catalog, present, report
        self.now = clock.now_ts()
        self.products_done: set[str] = set()
        self.products_changed: set[str] = set()

    def write(self, rows: list[Row], progress: Progress) -> None:
        names = {row.product.get("supplier") for row in rows} - {None} - self.catalog.suppliers.keys()
        self.conn.executemany("INSERT INTO supplier (name, created_at) VALUES (?, ?)",
                              [(name, self.now) for name in sorted(names)])
        self.catalog.suppliers = dict(self.conn.execute("SELECT name, id FROM supplier"))
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            self._products(chunk)
            self._variants(chunk)
            progress(start + len(chunk), len(rows), "write")

    def _products(self, rows: list[Row]) -> None:
        new, changed = {}, []
        for row in rows:
            if row.product_sku in self.products_done:
                continue
            self.products_done.add(row.product_sku)
            given = dict(row.product)
            if "supplier" in given:
                supplier = given.pop("supplier")
                given["supplier_id"] = self.catalog.suppliers[supplier] if supplier else None
            id_, old = self.catalog.products.get(row.product_sku, (None, None))
            if old is None:
                new[row.product_sku] = {**PRODUCT_DEFAULTS, **given}
            elif {**old, **given} != old:
                changed.append((*({**old, **given}[name] for name in PRODUCT_FIELDS), self.now, id_))
                self.products_changed.add(row.product_sku)
        self.conn.executemany(
            f"INSERT INTO product (sku, {', '.join(PRODUCT_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(PRODUCT_FIELDS))}, ?, ?)",
            [(sku, *(values[name] for name in PRODUCT_FIELDS), self.now, self.now) for sku, values in new.items()])
        self.conn.executemany(
            f"UPDATE product SET {', '.join(f'{name} = ?' for name in PRODUCT_FIELDS)}, updated_at = ? WHERE id = ?",
            changed)
        for sku, id_ in self._ids("product", new):
            self.catalog.products[sku] = (id_, new[sku])

    def _variants(self, rows: list[Row]) -> None:
        given = {row.sku: {**row.variant, "product_id": self.catalog.products[row.product_sku][0]} for row in rows}
        new = {sku: {**VARIANT_DEFAULTS, **values} for sku, values in given.items() if sku not in self.catalog.variants}
        self.conn.executemany(
            f"INSERT INTO variant (sku, {', '.join(VARIANT_FIELDS)}, created_at, updated_at) "
            f"VALUES (?, {', '.join('?' * len(VARIANT_FIELDS))}, ?, ?)",
            [(sku, *(values[name] for name in VARIANT_FIELDS), self.now, self.now) for sku, values in new.items()])
        ids = dict(self._ids("variant", new))
        changed, packs_new, packs_qty, packs_gone, codes = [], [], [], [], []
        for row in rows:
            if row.sku in new:
                id_, touched = ids[row.sku], False
                self.report.created += 1
            else:
                id_, old = self.catalog.variants[row.sku]
                values = {**old, **given[row.sku]}
                touched = values != old or row.product_sku in self.products_changed
            if "pack_size" in self.present:
                case = self.catalog.cases.get(id_)
                qty = row.pack_size if (row.pack_size or 1) > 1 else None
                if case is None and qty is not None:
                    packs_new.append((id_, CASE_PACK, qty))
                elif case is not None and qty is None:
                    packs_gone.append((case[0],))
                elif case is not None and case[1] != qty:
                    packs_qty.append((qty, case[0]))
                touched = touched or (case[1] if case else None) != qty
            added = [(code, id_, kind) for code, kind in row.barcodes.items() if code not in self.catalog.barcodes]
            codes += added
            if row.sku not in new and (touched or added):
                changed.append((*(values[name] for name in VARIANT_FIELDS), self.now, id_))
                self.report.updated += 1
            elif row.sku not in new:
                self.report.unchanged += 1
        self.conn.executemany(
            f"UPDATE variant SET {', '.join(f'{name} = ?' for name in VARIANT_FIELDS)}, updated_at = ? WHERE id = ?",
            changed)
        self.conn.executemany("DELETE FROM pack WHERE id = ?", packs_gone)
        self.conn.executemany("UPDATE pack SET qty = ? WHERE id = ?", packs_qty)
        self.conn.executemany("INSERT INTO pack (variant_id, name, qty) VALUES (?, ?, ?)", packs_new)
        self.conn.executemany("INSERT INTO barcode (code, variant_id, kind) VALUES (?, ?, ?)", codes)

    def _ids(self, table: str, skus: dict[str, Any]) -> list[tuple[str, int]]:
        if not skus:
            return []
        return self.conn.execute(f"SELECT sku, id FROM {table} WHERE sku IN ({', '.join('?' * len(skus))})",
                                 list(skus)).fetchall()
