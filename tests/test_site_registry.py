"""The site registry through the CLI: keys made at init, entries exported by one box and added on another."""

from __future__ import annotations

import json
import stat

import pytest
from test_cli import Cli

from appliance.sync import identity


@pytest.fixture
def boxes(tmp_path, capsys):
    ber = Cli(tmp_path / "ber" / "appliance.toml", capsys)
    waw = Cli(tmp_path / "waw" / "appliance.toml", capsys)
    ber.ok("init", "--site", "BER", "--site-name", "Berlin")
    waw.ok("init", "--site", "WAW", "--site-name", "Warszawa")
    return ber, waw


def key_file(box: Cli):
    return box.config.parent / "data" / "keys" / "site.key"


def test_init_makes_a_private_key_only_the_service_can_read_and_keeps_it(boxes):
    ber, _ = boxes
    path = key_file(ber)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    ber.ok("init")
    assert path.read_text() == before
    [me] = ber.json("site", "list")
    assert (me["site"], me["local"], me["kid"]) == ("BER", True, "BER#1")
    assert me["public_key"] == identity.read_key_file(path).public.text()


def test_an_exported_entry_registers_the_site_on_another_box(boxes, tmp_path):
    ber, waw = boxes
    entry = tmp_path / "ber.json"
    ber.ok("site", "export-key", "--out", str(entry))
    assert json.loads(entry.read_text())["location_prefix"] == "BER"
    assert waw.ok("site", "add", str(entry)).strip() == "BER"
    code, _, err = waw("site", "add", str(entry))
    assert code == 0 and "already known" in err
    assert [(s["site"], s["local"], s["kid"]) for s in waw.json("site", "list")] == [
        ("BER", False, "BER#1"), ("WAW", True, "WAW#1")]


def test_a_changed_key_under_a_known_key_id_is_refused(boxes, tmp_path):
    ber, waw = boxes
    entry = json.loads(ber.ok("site", "export-key"))
    (tmp_path / "ber.json").write_text(json.dumps(entry))
    waw.ok("site", "add", str(tmp_path / "ber.json"))
    entry["public_key"] = identity.generate("BER").public.text()
    (tmp_path / "forged.json").write_text(json.dumps(entry))
    code, _, err = waw("site", "add", str(tmp_path / "forged.json"))
    assert code == 3 and "new key id" in err


def test_a_box_will_not_take_an_entry_for_its_own_site(boxes, tmp_path):
    ber, _ = boxes
    ber.ok("site", "export-key", "--out", str(tmp_path / "me.json"))
    code, _, err = ber("site", "add", str(tmp_path / "me.json"))
    assert code == 3 and "own site" in err


def test_a_replaced_key_file_is_noticed(boxes):
    ber, _ = boxes
    path = key_file(ber)
    path.unlink()
    identity.write_key_file(identity.generate("BER"), path)
    code, _, err = ber("init")
    assert code == 3 and "does not match" in err


@pytest.mark.parametrize("change, field", [
    ({"site": "waw"}, "site"),
    ({"site": "BER\n"}, "site"),
    ({"name": ""}, "name"),
    ({"kid": "WAW-1"}, "must look like"),
    ({"kid": "PAR#1"}, "does not belong"),
    ({"public_key": "ed25519:AAAA"}, "32"),
    ({"location_prefix": "ber a"}, "location_prefix"),
    ({"extra": 1}, "unknown fields"),
])
def test_a_malformed_entry_names_what_is_wrong(boxes, tmp_path, change, field):
    ber, waw = boxes
    entry = {**json.loads(ber.ok("site", "export-key")), **change}
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(entry))
    code, _, err = waw("site", "add", str(path))
    assert code == 2 and field in err
    assert [s["site"] for s in waw.json("site", "list")] == ["WAW"]
