"""Product CSV import and export against real SQLite files, with files as Excel and LibreOffice write them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from appliance.catalog import money
from appliance.catalog.csv_export import export_products
from appliance.catalog.csv_import import COLUMNS, CsvImportError, RowError, import_products
from appliance.errors import InvalidInput
from appliance.ledger.db import open_db
from appliance.ledger.models import MODELS, Barcode, Pack, Product, Variant

GERMAN_EXCEL = (
    "sku;product_sku;name;variant_name;barcode;category;supplier;cost_price;sale_price;unit;pack_size;"
    "reorder_point;reorder_qty\r\n"
    "DOG-DRY-5;DOG-DRY;Trockenfutter Huhn;5kg;4006381333931;Dog food;Tierfutter Nord GmbH;12,40;1.021,99;each;4;"
    "20;40\r\n"
    "DOG-DRY-15;DOG-DRY;Trockenfutter Huhn;15kg;4006381333948|TN-15;Dog food;Tierfutter Nord GmbH;29,9;49,99;"
    "each;;10;20\r\n"
    ";;;;;;;;;;;;\r\n"
    "\r\n"
    "LEASH-RED-M;;Leine Nylon;rot M;;Accessories;;3,20;9,90;;;;\r\n"
)
UK_EXCEL = (
    "SKU, Name ,Cost_Price,Sale_Price,Barcode\n"
    'TEA-100,"Tea, black",0.99,"1,234.50",036000291452\n'
    "MUG-1,Mug,2,3.5,96385074\n"
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = open_db(tmp_path / "x.db")
    yield database
    database.close()


def csv_file(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "products.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def catalog(db: peewee.SqliteDatabase) -> dict[str, tuple]:
    """Every variant with its product, supplier, case pack and barcodes, without ids or timestamps."""
    result = {}
    with db.bind_ctx(MODELS, bind_refs=False, bind_backrefs=False):
        for v in Variant.select().order_by(Variant.sku):
            p = v.product
            case = Pack.get_or_none(Pack.variant == v, Pack.name == "case")
            codes = sorted((b.code, b.kind) for b in Barcode.select().where(Barcode.variant == v))
            result[v.sku] = (p.sku, p.name, p.description, p.category, p.supplier.name if p.supplier else None,
                             p.image_url, v.name, v.cost_price, v.sale_price, v.unit, v.reorder_point,
                             v.reorder_qty, v.active, case.qty if case else None, codes)
    return result


def import_error(db, path, **kwargs) -> CsvImportError:
    with pytest.raises(CsvImportError) as caught:
        import_products(db, path, **kwargs)
    return caught.value


@pytest.mark.parametrize(("text", "digits", "minor"), [
    ("12,50", 2, 1250), ("12.50", 2, 1250), ("12,5", 2, 1250), ("12", 2, 1200), ("0,10", 2, 10),
    ("1.234,50", 2, 123450), ("1,234.50", 2, 123450), ("1 234,50", 2, 123450), ("1\u00a0234,50", 2, 123450),
    ("1.234.567", 2, 123456700), (" 7,05 ", 2, 705), ("-3,5", 2, -350), ("1500", 0, 1500), ("1,234", 3, 1234),
    ("0,125", 3, 125),
])
def test_parse_amount(text, digits, minor):
    assert money.parse_amount(text, digits) == minor


@pytest.mark.parametrize(("text", "digits", "reason"), [
    ("12,5x", 2, "not a number"), ("", 2, "not a number"), ("12,", 2, "not a number"), ("€12", 2, "not a number"),
    ("1.234", 2, "ambiguous"), ("1,234", 2, "ambiguous"), ("12,505", 2, "ambiguous"), ("0,125", 2, "decimal places"),
    ("12,50", 0, "no decimal places"), ("1,2,3", 2, "thousands separator"), ("1.23,4", 2, "thousands separator"),
    ("1.234,5.6", 2, "not a number"),
])
def test_parse_amount_refuses(text, digits, reason):
    with pytest.raises(ValueError, match=reason):
        money.parse_amount(text, digits)


@pytest.mark.parametrize(("minor", "digits", "text"), [(123450, 2, "1234.50"), (5, 2, "0.05"), (-5, 2, "-0.05"),
                                                       (12, 0, "12"), (7, 3, "0.007")])
def test_format_amount(minor, digits, text):
    assert money.format_amount(minor, digits) == text
    assert money.parse_amount(text, digits) == minor


def test_german_excel_bom_semicolons_decimal_commas(db, tmp_path):
    path = tmp_path / "de.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GERMAN_EXCEL.encode())
    calls = []
    report = import_products(db, path, progress=lambda *args: calls.append(args))
    assert (report.created, report.updated, report.skipped, report.errors) == (3, 0, 0, [])
    assert calls == [(3, 3, "validate"), (3, 3, "write")]
    rows = catalog(db)
    assert rows["DOG-DRY-5"] == ("DOG-DRY", "Trockenfutter Huhn", "", "Dog food", "Tierfutter Nord GmbH", None,
                                 "5kg", 1240, 102199, "each", 20, 40, True, 4, [("4006381333931", "gtin")])
    assert rows["DOG-DRY-15"][7:9] == (2990, 4999)
    assert rows["DOG-DRY-15"][-1] == [("4006381333948", "gtin"), ("TN-15", "supplier")]
    assert rows["DOG-DRY-15"][-2] is None
    assert rows["LEASH-RED-M"][:2] == ("LEASH-RED-M", "Leine Nylon")   # empty product_sku: its own sku
    assert rows["LEASH-RED-M"][4] is None and rows["LEASH-RED-M"][9] == "each"
    assert Product.select().count() == 2


def test_uk_excel_commas_and_quotes(db, tmp_path):
    report = import_products(db, csv_file(tmp_path, UK_EXCEL))
    assert report.created == 2
    rows = catalog(db)
    assert rows["TEA-100"][1] == "Tea, black"
    assert rows["TEA-100"][7:9] == (99, 123450)
    assert rows["MUG-1"][7:9] == (200, 350)
    assert rows["MUG-1"][-1] == [("96385074", "gtin")]


def test_quoted_fields_hold_delimiters_and_line_breaks_and_lines_count_physically(db, tmp_path):
    text = ('sku;name;description\n'
            'A-1;"Bowl; steel";"Two lines:\nfirst\nsecond"\n'
            'A-2;"He said ""hi""";x\n'
            'A 3;Bad;y\n')
    error = import_error(db, csv_file(tmp_path, text))
    assert error.errors == [RowError(6, "sku", "A 3", "only letters, digits and - _ . / are allowed (no spaces)")]
    import_products(db, csv_file(tmp_path, text.replace("A 3", "A-3")))
    rows = catalog(db)
    assert rows["A-1"][1:3] == ("Bowl; steel", "Two lines:\nfirst\nsecond")
    assert rows["A-2"][1] == 'He said "hi"'


def test_a_bad_row_in_the_middle_imports_nothing(db, tmp_path):
    text = "sku,name,cost_price\nA-1,One,1.00\nA-2,Two,\"12,5x\"\nA-3,Three,3.00\n"
    error = import_error(db, csv_file(tmp_path, text))
    assert isinstance(error, InvalidInput) and error.code == "invalid_csv"
    assert [(e.line, e.column, e.value) for e in error.errors] == [(3, "cost_price", "12,5x")]
    assert str(error.errors[0]) == "line 3, column cost_price, value '12,5x': not a number (write e.g. 12.50 or 12,50)"
    assert "nothing was imported" in error.message and "line 3, column cost_price" in error.message
    assert Variant.select().count() == 0 and Product.select().count() == 0


def test_every_bad_row_is_reported(db, tmp_path):
    text = ("sku;name;cost_price;reorder_point;reorder_qty;pack_size;active;barcode\n"
            "A-1;One;1,00;5;10;6;1;\n"
            "A-2;;-1;x;0;0;maybe;4006381333932\n"
            "A-3;Three;0,125;-2;;;no;\n"
            "A-1;Again;;;;;;\n"
            "A-4;Four;1.234;;;;;4.00638E+12\n")
    errors = import_error(db, csv_file(tmp_path, text)).errors
    assert [(e.line, e.column, e.value) for e in errors] == [
        (3, "name", ""), (3, "cost_price", "-1"), (3, "reorder_point", "x"), (3, "reorder_qty", "0"),
        (3, "pack_size", "0"), (3, "active", "maybe"), (3, "barcode", "4006381333932"),
        (4, "cost_price", "0,125"), (4, "reorder_point", "-2"),
        (5, "sku", "A-1"),
        (6, "cost_price", "1.234"), (6, "barcode", "4.00638E+12"),
    ]
    reasons = {(e.line, e.column): e.reason for e in errors}
    assert reasons[(3, "barcode")] == "wrong GTIN check digit 2, expected 1"
    assert reasons[(5, "sku")] == "duplicate: SKU already on line 2"
    assert "ambiguous" in reasons[(6, "cost_price")]
    assert Variant.select().count() == 0


def test_the_message_lists_fifty_problems_and_counts_the_rest(db, tmp_path):
    text = "sku,name\n" + "".join(f"B {i},x\n" for i in range(60))
    error = import_error(db, csv_file(tmp_path, text))
    assert len(error.errors) == 60
    lines = error.message.splitlines()
    assert lines[0].endswith("nothing was imported, 60 problems:")
    assert len(lines) == 52 and lines[-1].strip() == "... and 10 more"


def test_skip_bad_imports_the_good_rows(db, tmp_path):
    text = "sku,name,sale_price\nA-1,One,1.00\nA-2,Two,abc\nA-3,Three,3.00\nA-1,Dup,1\n"
    report = import_products(db, csv_file(tmp_path, text), skip_bad=True)
    assert (report.created, report.updated, report.skipped) == (2, 0, 2)
    assert [(e.line, e.column) for e in report.errors] == [(3, "sale_price"), (5, "sku")]
    assert sorted(catalog(db)) == ["A-1", "A-3"]
    assert catalog(db)["A-1"][1] == "One"


def test_reimport_updates_present_columns_and_leaves_absent_ones(db, tmp_path):
    import_products(db, csv_file(tmp_path, "sku,name,variant_name,category,supplier,cost_price,sale_price,unit,"
                                           "pack_size,barcode,reorder_point\n"
                                           "A-1,One,small,Bowls,Acme,1.00,2.00,box,6,4006381333931,5\n"))
    before = Variant.get(Variant.sku == "A-1").updated_at
    report = import_products(db, csv_file(tmp_path, "sku,name,sale_price,barcode,pack_size,unit,supplier\n"
                                                    "A-1,One v2,2.50,X-99,12,,Other\n", name="b.csv"))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    row = catalog(db)["A-1"]
    assert row[1] == "One v2" and row[3] == "Bowls" and row[4] == "Other"   # category untouched
    assert row[6] == "small" and row[7:10] == (100, 250, "each")            # empty unit: the default
    assert row[10] == 5 and row[13] == 12                                     # case pack updated
    assert row[14] == [("4006381333931", "gtin"), ("X-99", "supplier")]    # barcodes only added
    assert Variant.get(Variant.sku == "A-1").updated_at >= before
    report = import_products(db, csv_file(tmp_path, "sku,name,pack_size,cost_price\nA-1,One v2,,\n", name="c.csv"))
    assert report.updated == 1
    row = catalog(db)["A-1"]
    assert row[13] is None and row[7] is None and row[8] == 250
    assert Pack.select().count() == 0


def test_reimport_of_the_same_file_changes_nothing(db, tmp_path):
    path = csv_file(tmp_path, GERMAN_EXCEL)
    import_products(db, path)
    stamps = [v.updated_at for v in Variant.select().order_by(Variant.id)]
    report = import_products(db, path)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert [v.updated_at for v in Variant.select().order_by(Variant.id)] == stamps


def test_product_sku_moves_a_variant_and_rows_of_one_product_must_agree(db, tmp_path):
    import_products(db, csv_file(tmp_path, "sku,name\nA-1,One\n"))
    import_products(db, csv_file(tmp_path, "sku,product_sku,name\nA-1,A,Family A\nA-2,A,Family A\n", name="b.csv"))
    assert {sku: row[0] for sku, row in catalog(db).items()} == {"A-1": "A", "A-2": "A"}
    text = "sku,product_sku,name,category\nA-1,A,Family A,x\nA-2,A,Family B,x\n"
    [error] = import_error(db, csv_file(tmp_path, text, name="c.csv")).errors
    assert error == RowError(3, "name", "Family B", "product A has name 'Family A' on line 2")
    # Without a product_sku column a known variant stays with its product.
    import_products(db, csv_file(tmp_path, "sku,name\nA-2,Family C\n", name="d.csv"))
    assert catalog(db)["A-1"][:2] == ("A", "Family C")


@pytest.mark.parametrize(("code", "kind"), [
    ("96385074", "gtin"), ("036000291452", "gtin"), ("4006381333931", "gtin"), ("00012345600012", "gtin"),
    ("ACME-123", "supplier"), ("12345", "supplier"), ("123456789", "supplier"),
])
def test_barcode_kinds(db, tmp_path, code, kind):
    import_products(db, csv_file(tmp_path, f"sku,name,barcode\nA-1,One,{code}\n"))
    assert catalog(db)["A-1"][-1] == [(code, kind)]


@pytest.mark.parametrize(("code", "expected"), [("96385075", 4), ("036000291453", 2), ("4006381333930", 1),
                                                ("00012345600013", 2)])
def test_barcode_check_digit(db, tmp_path, code, expected):
    [error] = import_error(db, csv_file(tmp_path, f"sku,name,barcode\nA-1,One,X-1|{code}\n")).errors
    assert (error.line, error.column, error.value) == (2, "barcode", code)
    assert error.reason == f"wrong GTIN check digit {code[-1]}, expected {expected}"


def test_barcode_conflicts_name_both_skus(db, tmp_path):
    import_products(db, csv_file(tmp_path, "sku,name,barcode\nA-1,One,4006381333931\n"))
    [error] = import_error(db, csv_file(tmp_path, "sku,name,barcode\nA-2,Two,4006381333931\n", name="b.csv")).errors
    assert error == RowError(2, "barcode", "4006381333931", "already belongs to SKU A-1, cannot also go to A-2")
    [error] = import_error(db, csv_file(tmp_path, "sku,name,barcode\nB-1,x,X-7\nB-2,y,X-7|X-8\n", name="c.csv")).errors
    assert (error.line, error.value) == (3, "X-7") and "line 2 for SKU B-1" in error.reason
    # The owner itself may list it again.
    assert import_products(db, csv_file(tmp_path, "sku,name,barcode\nA-1,One,4006381333931\n", name="d.csv"))


def test_polish_excel_cp1250(db, tmp_path):
    text = "sku;name;supplier;cost_price\nZ-1;Żwirek dla kota;Łódzka Hurtownia;4,10\nZ-2;Miska ząbkowana;;1,00\n"
    path = csv_file(tmp_path, text, encoding="cp1250")
    [error] = import_error(db, path).errors
    assert error.line == 2 and error.value.startswith("Z-1;")
    assert "not valid UTF-8" in error.reason and "--encoding cp1250" in error.reason
    assert "--encoding cp1252" in str(import_error(db, path))
    report = import_products(db, path, encoding="cp1250")
    assert report.created == 2
    rows = catalog(db)
    assert rows["Z-1"][1] == "Żwirek dla kota" and rows["Z-1"][4] == "Łódzka Hurtownia"
    assert rows["Z-2"][1] == "Miska ząbkowana"


def test_western_excel_cp1252_and_a_bad_encoding_name(db, tmp_path):
    path = csv_file(tmp_path, "sku,name\nK-1,Käse\n", encoding="cp1252")
    assert import_products(db, path, encoding="cp1252").created == 1
    assert catalog(db)["K-1"][1] == "Käse"
    with pytest.raises(InvalidInput, match="unknown encoding"):
        import_products(db, path, encoding="klingon")


@pytest.mark.parametrize(("header", "problems"), [
    ("sku,name,colour,size", [(1, "colour", "unknown column"), (1, "size", "unknown column")]),
    ("sku;variant_name", [(1, "name", "required column is missing")]),
    ("Name,SKU,name", [(1, "name", "column appears more than once")]),
])
def test_header_problems_fail_before_any_row(db, tmp_path, header, problems):
    error = import_error(db, csv_file(tmp_path, header + "\nnot even;a;row;!!,,,\n"))
    assert [(e.line, e.column, e.reason.split(";")[0]) for e in error.errors] == problems


def test_broken_files(db, tmp_path):
    [error] = import_error(db, csv_file(tmp_path, "sku,name\nA-1,\"One\nA-2,Two\n")).errors
    assert error.line == 2 and "never closed" in error.reason
    [error] = import_error(db, csv_file(tmp_path, "sku,name,cost_price\nA-1,One,12,50\nA-2,Two\n")).errors[:1]
    assert error.line == 2 and "needs quotes" in error.reason
    assert import_error(db, csv_file(tmp_path, "")).errors[0].reason.startswith("the file is empty")
    assert "UTF-16" in str(import_error(db, csv_file(tmp_path, "\ufeffsku\tname\n", encoding="utf-16-le")))
    # Trailing empty cells, as Excel writes after a column that was deleted, are fine.
    assert import_products(db, csv_file(tmp_path, "sku,name,\nA-1,One,,\n")).created == 1


def test_export_then_import_reproduces_the_catalog(db, tmp_path):
    text = GERMAN_EXCEL.replace("reorder_qty\r\n", "reorder_qty;description;image_url;active\r\n")
    text = text.replace(";20;40\r\n", ";20;40;\"Huhn, \"\"frisch\"\"\nzweite Zeile\";http://x/d.png;0\r\n")
    text = text.replace(";10;20\r\n", ";10;20;\"Huhn, \"\"frisch\"\"\nzweite Zeile\";http://x/d.png;yes\r\n")
    text = text.replace(";;;;\r\n", ";;;;;;;\r\n").replace(";;;;;;;;;;;;\r\n", "")
    import_products(db, csv_file(tmp_path, text))
    exported = io.StringIO(newline="")
    assert export_products(db, exported) == 3
    first = exported.getvalue()
    assert first.splitlines()[0] == ",".join(COLUMNS)
    assert "12.40" in first and "1021.99" in first and "4006381333948|TN-15" in first
    (tmp_path / "export.csv").write_text(first, encoding="utf-8", newline="")
    assert (tmp_path / "export.csv").read_bytes()[:3] == b"sku"   # no byte-order mark

    expected = catalog(db)
    other = open_db(tmp_path / "other.db")
    try:
        assert import_products(other, tmp_path / "export.csv").created == 3
        assert catalog(other) == expected
        assert export_products(other, tmp_path / "again.csv") == 3
        assert (tmp_path / "again.csv").read_text(encoding="utf-8") == first
    finally:
        other.close()
    report = import_products(db, tmp_path / "export.csv")
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert catalog(db) == expected


def test_five_thousand_rows(db, tmp_path):
    lines = ["sku;product_sku;name;variant_name;barcode;supplier;cost_price;sale_price;pack_size;reorder_qty"]
    for i in range(5000):
        body = f"{400000000000 + i:012d}"
        code = body + str((10 - sum(int(d) * (3 if n % 2 == 0 else 1)
                                    for n, d in enumerate(reversed(body))) % 10) % 10)
        lines.append(f"V-{i};P-{i // 5};Product {i // 5};v{i % 5};{code}|S-{i};Supplier {i // 5 % 40};"
                     f"{i % 100},{i % 100:02d};{i},99;{1 + i % 12};{1 + i % 50}")
    calls = []
    report = import_products(db, csv_file(tmp_path, "\n".join(lines) + "\n"),
                             progress=lambda done, total, phase: calls.append((phase, done, total)))
    assert report.created == 5000 and report.errors == []
    assert Product.select().count() == 1000 and Barcode.select().count() == 10000
    assert [c for c in calls if c[0] == "validate"] == [("validate", n, 5000) for n in range(1000, 5001, 1000)]
    assert calls[-1] == ("write", 5000, 5000)
    last = Variant.get(Variant.sku == "V-4999")
    assert (last.cost_price, last.sale_price, last.product.sku) == (9999, 499999, "P-999")


def test_case_pack_with_barcodes_is_not_removed(db, tmp_path):
    import_products(db, csv_file(tmp_path, "sku,name,pack_size\nA-1,One,6\n"))
    with db.bind_ctx(MODELS, bind_refs=False, bind_backrefs=False):
        case = Pack.get(Pack.name == "case")
        Barcode.create(code="14006381333938", variant=case.variant, pack=case, kind="gtin")
    [error] = import_error(db, csv_file(tmp_path, "sku,name,pack_size\nA-1,One,\n", name="b.csv")).errors
    assert (error.line, error.column) == (2, "pack_size") and "has barcodes" in error.reason
    assert import_products(db, csv_file(tmp_path, "sku,name,pack_size\nA-1,One,12\n", name="c.csv")).updated == 1
    assert catalog(db)["A-1"][13] == 12


@pytest.mark.parametrize(("cell", "active"), [("1", True), ("0", False), ("Yes", True), ("no", False),
                                              ("TRUE", True), ("false", False), ("WAHR", True), ("FAŁSZ", False),
                                              ("", True)])
def test_active_flags(db, tmp_path, cell, active):
    import_products(db, csv_file(tmp_path, f"sku;name;active\nA-1;One;{cell}\n"))
    assert catalog(db)["A-1"][12] is active


def test_all_writes_are_one_immediate_transaction(db, tmp_path, monkeypatch):
    from appliance.catalog import csv_import

    statements = []
    db.connection().set_trace_callback(statements.append)

    def fail(self, rows):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(csv_import._Writer, "_variants", fail)
    with pytest.raises(RuntimeError):
        import_products(db, csv_file(tmp_path, GERMAN_EXCEL))
    db.connection().set_trace_callback(None)
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == ["BEGIN IMMEDIATE", "ROLLBACK"]
    assert Product.select().count() == 0 and db.execute_sql("SELECT count(*) FROM supplier").fetchone() == (0,)
