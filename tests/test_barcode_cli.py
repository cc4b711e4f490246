"""`appliance barcode parse` and `appliance scans` through the real CLI, against the demo catalog."""

from __future__ import annotations

from test_cli import cli  # noqa: F401  (the fixture: a box with the demo catalog)

from appliance.config import load_config
from appliance.errors import EXIT_INVALID
from appliance.ledger.db import open_db
from appliance.scanning import gs1, scan_log
from appliance.scanning.scan import Scan


def test_a_retail_code_resolves_to_its_sku(cli):
    result = cli.json("barcode", "parse", "4006381333931")
    assert (result["kind"], result["gtin"], result["sku"], result["units"], result["resolved"]) == (
        "gtin", "04006381333931", "DOG-DRY-5", 1, True)


def test_a_case_code_resolves_to_its_pack_and_counts_its_units(cli):
    case = "1400638133393" + str(gs1.check_digit("1400638133393"))
    db = open_db(load_config(cli.config).database.path)
    try:
        variant = db.execute_sql("SELECT id FROM variant WHERE sku = 'DOG-DRY-5'").fetchone()[0]
        pack = db.execute_sql("INSERT INTO pack (variant_id, name, qty) VALUES (?, 'case of 12', 12)", (variant,)).lastrowid
        db.execute_sql("INSERT INTO barcode (code, variant_id, pack_id) VALUES (?, ?, ?)", (case, variant, pack))
    finally:
        db.close()
    result = cli.json("barcode", "parse", f"]C102{case}3712")     # GS1-128: case GTIN (02) with a count of 12
    assert (result["sku"], result["pack"], result["units"]) == ("DOG-DRY-5", "case of 12", 144)
    text = cli.ok("barcode", "parse", f"]C101{case}")
    assert "sku: DOG-DRY-5" in text and "units: 12" in text


def test_gs_substitutes_and_errors_exit_invalid(cli):
    result = cli.json("barcode", "parse", "]C10109501101530003~21X", "--gs", "~")
    assert (result["gtin"], result["serial"]) == ("09501101530003", "X")
    code, out, _ = cli("barcode", "parse", "4006381333932")
    assert code == EXIT_INVALID and "check digit should be 1" in out


def test_locations_and_commands(cli):
    assert cli.json("barcode", "parse", "BER-A-01")["location_site"] == "BER"
    unknown = cli.json("barcode", "parse", "BER-Z-99")
    assert (unknown["kind"], unknown["resolved"]) == ("location", False)
    assert cli.json("barcode", "parse", "CMD-RECEIVE")["command"] == "receive"


def test_scans_lists_the_log(cli):
    db = open_db(load_config(cli.config).database.path)
    try:
        with db.atomic("IMMEDIATE"):
            scan_id = scan_log.insert(db.connection(), Scan("dock-1", "replay:x", "9999999999994\x1d",
                                                            1_700_000_000.0), kind="gtin", interpretation=None)
            scan_log.finish(db.connection(), scan_id, "unresolved", "unknown barcode")
    finally:
        db.close()
    rows = cli.json("scans", "--unresolved")
    assert [(r["station"], r["raw_visible"], r["outcome"]) for r in rows] == [
        ("dock-1", "9999999999994<GS>", "unresolved")]
    assert "9999999999994<GS>" in cli.ok("scans")
