"""Import the product catalog from a CSV file as Excel or LibreOffice write it (Germany, Poland, UK).

The format (encoding, delimiter, columns, re-import rules) is the README's "CSV formats / Products" section;
change the two together. Every row is validated (`csv_rows`) before anything is written; all writes are one
`BEGIN IMMEDIATE` transaction whose database-dependent checks run inside the lock (`catalog_writer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import peewee

# `_Writer` keeps the name it had when it lived here: private to the import, and tests patch it by that name.
from appliance.catalog.catalog_writer import CASE_PACK, Catalog, ImportReport, check_against
from appliance.catalog.catalog_writer import Writer as _Writer
from appliance.catalog.csv_rows import (COLUMNS, CsvImportError, Progress, RowError, barcode_kind, decode,
                                        gtin_check_digit, parse)

__all__ = ["CASE_PACK", "COLUMNS", "CsvImportError", "ImportReport", "Progress", "RowError", "barcode_kind",
           "gtin_check_digit", "import_products"]


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
