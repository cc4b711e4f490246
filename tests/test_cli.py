"""The command line as tools and people use it: real config file, real database, real exit statuses."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main

REPO = Path(__file__).resolve().parent.parent
DEMO_CSV = REPO / "scripts" / "demo" / "products.csv"


class Cli:
    def __init__(self, config: Path, capsys) -> None:
        self.config = config
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, f"{args} exited {code}: {err}"
        return out

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(tmp_path, capsys) -> Cli:
    config = tmp_path / "etc" / "appliance.toml"
    run = Cli(config, capsys)
    run.ok("init", "--site", "BER", "--site-name", "Berlin")
    for code in ("BER-A-01", "BER-A-02", "BER-DOCK"):
        run.ok("location", "add", code)
    run.ok("import", "products", str(DEMO_CSV))
    return run


def test_init_writes_a_config_beside_its_database(tmp_path, capsys):
    config = tmp_path / "etc" / "appliance.toml"
    run = Cli(config, capsys)
    out = run.ok("init", "--site", "WAW", "--site-name", "Warszawa")
    assert config.exists()
    assert Path(out.strip()) == tmp_path / "etc" / "data" / "appliance.db"
    assert Path(out.strip()).exists()
    # A second init changes nothing; a different site id is refused.
    assert run.ok("init").strip() == out.strip()
    code, _, err = run("init", "--site", "BER")
    assert code == 2 and "WAW" in err
    assert [u["login"] for u in run.json("user", "list")] == ["admin"]


def test_init_rejects_a_bad_site_id(tmp_path, capsys):
    code, _, err = Cli(tmp_path / "a.toml", capsys)("init", "--site", "berlin")
    assert code == 2 and "upper-case" in err
    assert not (tmp_path / "a.toml").exists()


def test_missing_config_is_explained(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    assert main(["stock"]) == 2
    assert "appliance init" in capsys.readouterr().err


def test_receive_ship_and_the_rules_exit_statuses(cli):
    out = cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10")
    first_id = int(out.strip())
    code, out, err = cli("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "11")
    assert code == 3 and "10 available" in err and "insufficient_stock" in err and out == ""
    code, _, err = cli("move", "ship", "--sku", "NOPE", "--location", "BER-A-01", "--qty", "1")
    assert code == 2 and "unknown SKU 'NOPE'" in err
    code, _, err = cli("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-Z-99", "--qty", "1")
    assert code == 2 and "unknown location" in err
    code, _, err = cli("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01")
    assert code == 2 and "--qty is required" in err
    code, _, err = cli("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "0")
    assert code == 2 and "positive" in err
    code, _, _ = cli("move", "teleport", "--sku", "DOG-DRY-5")
    assert code == 2
    second = int(cli.ok("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "4").strip())
    assert second > first_id
    [line] = cli.json("stock", "--sku", "DOG-DRY-5")
    assert {k: line[k] for k in ("sku", "location", "on_hand", "reserved", "available", "in_transit")} == {
        "sku": "DOG-DRY-5", "location": "BER-A-01", "on_hand": 6, "reserved": 0, "available": 6, "in_transit": 0}


def test_adjust_takes_a_signed_quantity_and_count_sets_it(cli):
    cli.ok("move", "receive", "--sku", "LEASH-RED-M", "--location", "BER-A-01", "--qty", "5")
    cli.ok("move", "adjust", "--sku", "LEASH-RED-M", "--location", "BER-A-01", "--qty", "-2", "--reason", "lost")
    cli.ok("move", "count", "--sku", "LEASH-RED-M", "--location", "BER-A-01", "--qty", "7")
    assert cli.json("stock", "--sku", "LEASH-RED-M")[0]["on_hand"] == 7
    kinds = [(m["kind"], m["d_on_hand"]) for m in cli.json("history", "--sku", "LEASH-RED-M", "--oldest-first")]
    assert kinds == [("receive", 5), ("adjust", -2), ("count", 4)]


def test_op_id_replays_the_earlier_movement(cli):
    args = ("move", "receive", "--sku", "DOG-WET-400", "--location", "BER-A-02", "--qty", "24", "--op-id", "gun-7")
    first = cli.ok(*args)
    code, again, err = cli(*args)
    assert code == 0 and again == first and "seen before" in err
    assert cli.json("stock", "--sku", "DOG-WET-400")[0]["on_hand"] == 24
    code, _, err = cli("move", "receive", "--sku", "DOG-WET-400", "--location", "BER-A-02", "--qty", "25",
                       "--op-id", "gun-7")
    assert code == 3 and "op_id_reused" in err


def test_reservation_lifecycle(cli):
    cli.ok("move", "receive", "--sku", "CAT-LITTER-10", "--location", "BER-A-01", "--qty", "10")
    cli.ok("move", "reserve", "--sku", "CAT-LITTER-10", "--location", "BER-A-01", "--qty", "6", "--ref", "ORD-9",
           "--expires", "2d")
    code, _, err = cli("move", "ship", "--sku", "CAT-LITTER-10", "--location", "BER-A-01", "--qty", "5")
    assert code == 3 and "4 available" in err
    [reservation] = cli.json("reservations", "list")
    assert reservation["ref"] == "ORD-9" and reservation["status"] == "held"
    cli.ok("move", "ship", "--reservation", str(reservation["id"]), "--qty", "4")
    cli.ok("move", "release", "--reservation", str(reservation["id"]))
    [reservation] = cli.json("reservations", "list")
    assert (reservation["consumed"], reservation["released"], reservation["status"]) == (4, 2, "released")
    [line] = cli.json("stock", "--sku", "CAT-LITTER-10")
    assert (line["on_hand"], line["reserved"], line["available"]) == (6, 0, 6)


def test_transfer_out_and_in_with_a_shortfall(cli):
    cli.ok("move", "receive", "--sku", "DOG-DRY-15", "--location", "BER-A-01", "--qty", "20")
    [moved] = cli.json("move", "transfer", "--sku", "DOG-DRY-15", "--from", "BER-A-01", "--to", "BER-DOCK",
                       "--qty", "8")["movements"]
    code = moved["ref_id"]
    assert code.startswith("BER-TR-")
    lines = {ln["location"]: ln for ln in cli.json("stock", "--sku", "DOG-DRY-15")}
    assert (lines["BER-A-01"]["on_hand"], lines["BER-DOCK"]["in_transit"]) == (12, 8)
    cli.ok("move", "transfer-in", "--transfer", code, "--qty", "5")
    assert cli.json("transfers", "list", "--open")[0]["status"] == "partial"
    cli.ok("move", "transfer-in", "--transfer", code, "--qty", "2", "--close")
    [transfer] = cli.json("transfers", "list")
    assert (transfer["received"], transfer["short"], transfer["status"]) == (7, 1, "closed")
    lines = {ln["location"]: ln for ln in cli.json("stock", "--sku", "DOG-DRY-15")}
    assert (lines["BER-DOCK"]["on_hand"], lines["BER-DOCK"]["in_transit"]) == (7, 0)
    code_, _, err = cli("move", "transfer-in", "--transfer", code, "--qty", "1")
    assert code_ == 3 and "closed" in err
    assert cli.ok("check").startswith("consistent")


def test_reverse_and_history_filters(cli):
    ship_id = None
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10", "--user", "admin")
    ship_id = cli.ok("move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "3",
                     "--ref", "ORD:1001").strip()
    cli.ok("reverse", ship_id, "--reason", "wrong parcel")
    code, _, err = cli("reverse", ship_id, "--reason", "again")
    assert code == 3 and "already reversed" in err
    assert cli.json("stock", "--sku", "DOG-DRY-5")[0]["on_hand"] == 10
    [reversal] = cli.json("history", "--kind", "reversal")
    assert reversal["reverses_id"] == int(ship_id) and reversal["reason"] == "wrong parcel"
    assert [m["id"] for m in cli.json("history", "--ref", "ORD:1001", "--kind", "ship")] == [int(ship_id)]
    assert [m["kind"] for m in cli.json("history", "--user", "admin")] == ["receive"]
    code, _, err = cli("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "1",
                       "--user", "ghost")
    assert code == 2 and "unknown user" in err


def test_stock_per_site_and_in_total(cli):
    cli.ok("location", "add", "BER-B-01")
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10")
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-B-01", "--qty", "5")
    cli.ok("move", "reserve", "--sku", "DOG-DRY-5", "--location", "BER-B-01", "--qty", "2")
    # Another site as the sync issue's site registry will add it: here by hand.
    with sqlite3.connect(cli.config.parent / "data" / "appliance.db") as conn:
        conn.execute("INSERT INTO site (id, name, created_at) VALUES ('WAW', 'Warszawa', '2026-01-01')")
        conn.execute("INSERT INTO location (code, site_id, created_at) VALUES ('WAW-A-01', 'WAW', '2026-01-01')")
    cli.ok("move", "transfer", "--sku", "DOG-DRY-5", "--from", "BER-A-01", "--to", "WAW-A-01", "--qty", "3")
    rows = cli.json("stock", "--sku", "DOG-DRY-5", "--by-site")
    assert [(r["site"], r["on_hand"], r["reserved"], r["available"], r["in_transit"]) for r in rows] == [
        ("BER", 12, 2, 10, 0), ("WAW", 0, 0, 0, 3), ("ALL", 12, 2, 10, 3)]


def test_stock_as_of_a_past_moment(cli):
    assert cli.json("stock", "--as-of", "2001-01-01") == []
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10")
    [line] = cli.json("stock", "--as-of", "2999-12-31", "--sku", "DOG-DRY-5")
    assert line["on_hand"] == 10
    code, _, err = cli("stock", "--as-of", "last tuesday")
    assert code == 2 and "--as-of" in err


def _csv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_exports(cli, tmp_path):
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10", "--lot", "L1",
           "--expiry", "2027-01-31")
    cli.ok("export", "stock", "--out", str(tmp_path / "stock.csv"))
    rows = _csv_rows(tmp_path / "stock.csv")
    assert [(r["sku"], r["lot"], r["on_hand"], r["expiry"]) for r in rows] == [("DOG-DRY-5", "L1", "10", "2027-01-31")]
    cli.ok("export", "movements", "--out", str(tmp_path / "mv.csv"))
    [row] = _csv_rows(tmp_path / "mv.csv")
    assert (row["kind"], row["sku"], row["d_on_hand"], row["origin"], row["seq"]) == ("receive", "DOG-DRY-5", "10",
                                                                                     "BER", "1")
    cli.ok("export", "products", "--out", str(tmp_path / "products.csv"))
    skus = {r["sku"] for r in _csv_rows(tmp_path / "products.csv")}
    assert "CAT-TOY-MOUSE" in skus and len(skus) == 6


def test_check_reports_a_tampered_projection(cli):
    cli.ok("move", "receive", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "10")
    assert cli.json("check")["consistent"] is True
    db_path = cli.config.parent / "data" / "appliance.db"
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE stock SET on_hand = 9")
    code, out, _ = cli("check")
    assert code == 1 and "DOG-DRY-5 at BER-A-01" in out and "10/0/0" in out


def test_bad_location_code_is_refused(cli):
    code, _, err = cli("location", "add", "ber-a-01")
    assert code == 2 and "upper-case" in err
    code, _, err = cli("location", "add", "BER-A-01")
    assert code == 2 and "exists" in err


def test_the_console_script_runs_as_a_process(cli):
    """The installed `appliance` entry point, with the config from the environment, and real exit codes."""
    env = dict(os.environ, APPLIANCE_CONFIG=str(cli.config))
    exe = Path(sys.executable).with_name("appliance")
    done = subprocess.run([str(exe), "move", "ship", "--sku", "DOG-DRY-5", "--location", "BER-A-01", "--qty", "1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("appliance ")


def _commands_and_flags(parser, prefix=()):
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), None
                yield from _commands_and_flags(sub, (*prefix, name))
        else:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help",):
                    yield prefix, flag


def test_every_command_and_flag_is_in_the_readme():
    from appliance.cli import build_parser
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = []
    for command, flag in _commands_and_flags(build_parser()):
        if flag is None:
            if f"appliance {' '.join(command)}" not in readme:
                missing.append(" ".join(command))
        elif flag not in readme:
            missing.append(f"{' '.join(command)} {flag}")
    assert missing == []
