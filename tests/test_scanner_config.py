"""`[[scanner]]` entries and the `[scanning]` section as an administrator writes them: real files in tmp_path,
every error naming the file, the entry (1-based, as people count), the key, the value and the reason."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from appliance.config import (
    ConfigError, ScannerConfig, ScanningConfig, load_config, parse_config, reference_markdown, render_effective,
    starter_config,
)
from appliance.config import loader
from appliance.config.schema import arrays, keys
from test_config import load_errors, write

REPO = Path(__file__).resolve().parent.parent
MINIMAL = '[site]\nid = "BER"\n\n[database]\npath = "data/appliance.db"\n'
HID = '[[scanner]]\nkind = "hid"\nstation = "dock-1"\ndevice = "0c2e:0b61"\n'
SERIAL = '[[scanner]]\nkind = "serial"\nstation = "packing"\nport = "/dev/ttyUSB0"\n'
REPLAY = '[[scanner]]\nkind = "replay"\nstation = "demo"\npath = "scans.txt"\n'


def entry(text: str, *lines: str) -> str:
    """A `[[scanner]]` block with `lines` added (a line `-key` removes that key)."""
    for line in lines:
        if line.startswith("-"):
            text = re.sub(rf"(?m)^{line[1:]} = .*\n", "", text)
        else:
            text += line + "\n"
    return text


# Loading ---------------------------------------------------------------------------------------------------

def test_no_scanners_by_default_and_scanning_defaults(tmp_path):
    config = load_config(write(tmp_path / "a.toml", MINIMAL))
    assert config.scanners == ()
    assert config.scanning == ScanningConfig(idle_timeout_s=300.0)


def test_each_kind_with_its_defaults(tmp_path):
    config = load_config(write(tmp_path / "etc" / "a.toml", MINIMAL + HID + SERIAL + REPLAY))
    hid, serial, replay = config.scanners
    assert hid == ScannerConfig(kind="hid", station="dock-1", device="0c2e:0b61", layout="us", terminator="enter",
                                timeout_ms=500, gs="<GS>")
    assert serial == ScannerConfig(kind="serial", station="packing", port="/dev/ttyUSB0", terminator="CR",
                                   baud=9600, parity="N")
    # A relative path is relative to the config file, like every other path.
    assert replay == ScannerConfig(kind="replay", station="demo", path=tmp_path / "etc" / "scans.txt")
    assert (replay.socket, replay.terminator) == (False, "")
    assert hid.gs_substitutes == ("<GS>",) and hid.reply("ok") == b""


@pytest.mark.parametrize("block, line, key, expected", [
    (HID, 'kind = "HID"', None, None),
    (HID, 'layout = "DE"', "layout", "de"),
    (HID, 'layout = "gb"', "layout", "uk"),                  # the xkb name of the UK layout
    (HID, 'terminator = "Tab"', "terminator", "tab"),
    (HID, 'terminator = "key_f12"', "terminator", "KEY_F12"),
    (HID, "timeout_ms = 80", "timeout_ms", 80),
    (HID, 'gs = "~"', "gs", "~"),
    (SERIAL, 'terminator = "crlf"', "terminator", "CRLF"),
    (SERIAL, 'terminator = "0x04"', "terminator", "0X04"),
    (SERIAL, "baud = 115200", "baud", 115200),
    (SERIAL, 'parity = "e"', "parity", "E"),
    (SERIAL, 'strip_prefix = "\\u0002"', "strip_prefix", "\x02"),
    (SERIAL, 'ok_reply = "07"', "ok_reply", "07"),
    (SERIAL, 'error_reply = "1b42 07"', "error_reply", "1B 42 07"),
    (REPLAY, "socket = true", "socket", True),
    (REPLAY, 'gs = ""', "gs", ""),
])
def test_valid_values_are_normalised(tmp_path, block, line, key, expected):
    text = MINIMAL + (block.replace('kind = "hid"', line) if key is None else entry(block, line))
    scanner = load_config(write(tmp_path / "a.toml", text)).scanners[0]
    if key is None:
        assert scanner.kind == "hid"
    else:
        assert getattr(scanner, key) == expected


def test_vendor_product_is_matched_in_lower_case(tmp_path):
    text = MINIMAL + HID.replace("0c2e:0b61", "0C2E:0B61")
    assert load_config(write(tmp_path / "a.toml", text)).scanners[0].device == "0c2e:0b61"


def test_reply_bytes_and_gs_substitutes():
    scanner = ScannerConfig(kind="serial", station="packing", port="/dev/ttyUSB0", ok_reply="07",
                            error_reply="1B 42 07", gs="")
    assert (scanner.reply("ok"), scanner.reply("warning"), scanner.reply("error")) == (b"\x07", b"", b"\x1bB\x07")
    assert scanner.gs_substitutes == ()


# Errors: file, scanner[N].key, value, reason ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    pytest.param(entry(HID, "-kind"), "scanner[1].kind is required: hid (a USB gun", id="kind missing"),
    pytest.param(HID.replace('"hid"', '"usb"'), "scanner[1].kind = 'usb': must be one of hid, serial, replay",
                 id="kind unknown"),
    pytest.param(entry(HID, "-station"), "scanner[1].station is required: the station", id="station missing"),
    pytest.param(HID.replace('"dock-1"', '"Dock 1"'),
                 "scanner[1].station = 'Dock 1': must be 1-32 lower-case letters, digits and -", id="station bad"),
    pytest.param(HID.replace('"dock-1"', '"-dock"'), "scanner[1].station = '-dock': must be", id="station dash"),
    pytest.param(entry(HID, "-device"), "scanner[1].device is required for kind hid: which input device",
                 id="hid without device"),
    pytest.param(HID.replace("0c2e:0b61", "0c2e:zz61"),
                 "scanner[1].device = '0c2e:zz61': scanner '0c2e:zz61': vendor:product is two 4-digit hex",
                 id="bad vendor:product"),
    pytest.param(HID.replace('"0c2e:0b61"', '"  "'), "scanner[1].device = '  ': scanner: empty device",
                 id="blank device"),
    pytest.param(entry(HID, 'layout = "dvorak"'),
                 "scanner[1].layout = 'dvorak': unknown keyboard layout 'dvorak'; known layouts: de, fr, pl, uk, "
                 "us", id="bad layout"),
    pytest.param(entry(HID, 'terminator = "semicolon"'),
                 "scanner[1].terminator = 'semicolon': unknown scan terminator 'semicolon'", id="bad hid term"),
    pytest.param(entry(HID, 'terminator = "KEY_LEFTSHIFT"'),
                 "scanner[1].terminator = 'KEY_LEFTSHIFT': a modifier key", id="modifier terminator"),
    pytest.param(entry(HID, 'terminator = "CRLF"'), "scanner[1].terminator = 'CRLF': unknown scan terminator",
                 id="serial terminator on hid"),
    pytest.param(entry(SERIAL, 'terminator = "enter"'),
                 "scanner[1].terminator = 'enter': terminator 'enter' is not one of CR, LF, CRLF, TAB, ETX",
                 id="hid terminator on serial"),
    pytest.param(entry(HID, "timeout_ms = 5"), "scanner[1].timeout_ms = 5: must be between 20 and 10000",
                 id="timeout too short"),
    pytest.param(entry(HID, 'timeout_ms = "500"'),
                 "scanner[1].timeout_ms = '500': must be an integer, not a string", id="timeout string"),
    pytest.param(entry(SERIAL, "-port"), "scanner[1].port is required for kind serial: serial port",
                 id="serial without port"),
    pytest.param(SERIAL.replace('"/dev/ttyUSB0"', '""'), "scanner[1].port = '': must name a port",
                 id="empty port"),
    pytest.param(entry(SERIAL, "baud = 9601"), "scanner[1].baud = 9601: must be one of 1200, 2400", id="baud"),
    pytest.param(entry(SERIAL, 'parity = "X"'), "scanner[1].parity = 'X': must be one of N, E, O, M, S",
                 id="parity"),
    pytest.param(entry(SERIAL, 'strip_prefix = "€"'), "scanner[1].strip_prefix = '€': must be bytes 0x00-0xFF",
                 id="prefix not a byte"),
    pytest.param(entry(SERIAL, 'ok_reply = "beep"'), "scanner[1].ok_reply = 'beep': must be bytes in hex",
                 id="reply not hex"),
    pytest.param(entry(SERIAL, 'warning_reply = "7"'), "scanner[1].warning_reply = '7': must be bytes in hex",
                 id="reply odd digits"),
    pytest.param(entry(SERIAL, "error_reply = 7"), "scanner[1].error_reply = 7: must be a string, not an integer",
                 id="reply integer"),
    pytest.param(entry(REPLAY, "-path"), "scanner[1].path is required for kind replay: a file of scans",
                 id="replay without path"),
    pytest.param(REPLAY.replace('"scans.txt"', '""'), "scanner[1].path = '': must not be empty", id="empty path"),
    pytest.param(entry(REPLAY, 'socket = "yes"'), "scanner[1].socket = 'yes': must be a boolean (true or false)",
                 id="socket not bool"),
    pytest.param(entry(HID, "gs = 29"), "scanner[1].gs = 29: must be a string, not an integer", id="gs int"),
    pytest.param(entry(HID, "baudrate = 9600"),
                 "unknown key scanner[1].baudrate; known keys: kind, station, device, layout", id="unknown key"),
    # Keys of another kind: named with the kind of the entry and the kinds they belong to.
    pytest.param(entry(HID, 'port = "/dev/ttyUSB0"'),
                 "scanner[1].port = '/dev/ttyUSB0': not a key of kind hid; it is for kind serial", id="port on hid"),
    pytest.param(entry(HID, 'ok_reply = "07"'), "scanner[1].ok_reply = '07': not a key of kind hid; it is for "
                 "kind serial", id="reply on hid"),
    pytest.param(entry(SERIAL, 'layout = "de"'), "scanner[1].layout = 'de': not a key of kind serial; it is for "
                 "kind hid", id="layout on serial"),
    pytest.param(entry(SERIAL, "socket = true"), "scanner[1].socket = True: not a key of kind serial; it is for "
                 "kind replay", id="socket on serial"),
    pytest.param(entry(REPLAY, 'terminator = "CR"'), "scanner[1].terminator = 'CR': not a key of kind replay; "
                 "it is for kind hid or serial", id="terminator on replay"),
    pytest.param(entry(REPLAY, 'device = "0c2e:0b61"'), "scanner[1].device = '0c2e:0b61': not a key of kind "
                 "replay; it is for kind hid", id="device on replay"),
    # The whole array.
    pytest.param('[scanner]\nkind = "hid"\n', "[scanner] must be written [[scanner]]: an array of tables",
                 id="single table"),
    pytest.param('[[scaner]]\nkind = "hid"\n', "unknown array [[scaner]]; known sections: site, database, log, "
                 "mqtt, web, scanning, smtp, alerts, purchasing, jobs, webhook, scanner", id="misspelt array"),
    pytest.param('[scanning]\nidle_timeout_s = 5\n', "scanning.idle_timeout_s = 5: must be between 10 and 86400",
                 id="idle timeout"),
    pytest.param('[scanning]\nidle_timeout_s = "300"\n',
                 "scanning.idle_timeout_s = '300': must be a number, not a string", id="idle timeout string"),
    pytest.param('[scanning]\nsocket = "x"\n', "unknown key scanning.socket; known keys: idle_timeout_s",
                 id="scanning unknown key"),
])
def test_each_error_names_file_entry_key_value_and_reason(tmp_path, text, expected):
    path = write(tmp_path / "appliance.toml", MINIMAL + text)
    errors = load_errors(path)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}: ")
    assert expected in errors[0]


def test_scanner_as_a_plain_key_is_an_error(tmp_path):
    path = write(tmp_path / "a.toml", 'scanner = "hid"\n' + MINIMAL)
    assert load_errors(path) == [f"{path}: scanner = 'hid': must be an array of tables, written [[scanner]]"]


def test_entries_are_numbered_from_one_and_every_error_is_reported(tmp_path):
    path = write(tmp_path / "a.toml", MINIMAL + HID + entry(SERIAL, "baud = 1", "-port") +
                 entry(REPLAY, 'layout = "us"') + '[[scanner]]\nkind = "serial"\nstation = "X"\nport = "/dev/a"\n')
    assert [e.removeprefix(f"{path}: ").split(":")[0] for e in load_errors(path)] == [
        "scanner[2].port is required for kind serial",
        "scanner[2].baud = 1",
        "scanner[3].layout = 'us'",
        "scanner[4].station = 'X'",
    ]


@pytest.mark.parametrize("first, second, expected", [
    pytest.param(HID, HID.replace('"dock-1"', '"dock-2"').replace("0c2e:0b61", "0C2E:0B61"),
                 "scanner[2].device = '0C2E:0B61': already used by scanner[1]", id="one HID gun twice"),
    pytest.param(SERIAL, SERIAL.replace('"packing"', '"dock-2"'),
                 "scanner[2].port = '/dev/ttyUSB0': already used by scanner[1]", id="one port twice"),
    pytest.param(REPLAY, entry(REPLAY.replace('"scans.txt"', '"./scans.txt"'), "socket = true"),
                 "scanner[2].path = './scans.txt': already used by scanner[1]", id="one replay path twice"),
])
def test_two_scanners_on_one_device_are_an_error(tmp_path, first, second, expected):
    path = write(tmp_path / "a.toml", MINIMAL + first + HID.replace("0c2e:0b61", "*Other*") + second)
    assert load_errors(path) == [f"{path}: {expected.replace('[2]', '[3]')}"]


def test_two_guns_may_share_a_station(tmp_path):
    text = MINIMAL + HID + SERIAL.replace('"packing"', '"dock-1"')
    assert [s.station for s in load_config(write(tmp_path / "a.toml", text)).scanners] == ["dock-1", "dock-1"]


# Writing it back out ----------------------------------------------------------------------------------------

FULL = MINIMAL + """
[scanning]
idle_timeout_s = 120

[[scanner]]
kind = "hid"
station = "dock-1"
device = "/dev/input/by-id/usb-Honeywell_1900-event-kbd"
layout = "de"
terminator = "tab"
timeout_ms = 150
gs = "~"

[[scanner]]
kind = "serial"
station = "packing"
port = "/dev/serial/by-id/usb-Datalogic-if00"
terminator = "0x03"
baud = 115200
parity = "E"
strip_prefix = "\\u0002"
strip_suffix = "\\r"
ok_reply = "07"
warning_reply = "07 07"
error_reply = "1b42"

[[scanner]]
kind = "replay"
station = "demo"
path = "run/scan.sock"
socket = true
gs = ""
"""


def test_render_effective_writes_every_entry_and_round_trips(tmp_path):
    config = load_config(write(tmp_path / "etc" / "a.toml", FULL))
    rendered = render_effective(config)
    assert rendered.splitlines().count("[[scanner]]") == 3
    again = load_config(write(tmp_path / "other" / "effective.toml", rendered))
    assert again == config
    assert again.scanners[2].path == tmp_path / "etc" / "run" / "scan.sock"
    assert again.scanning.idle_timeout_s == 120.0


def test_render_effective_without_scanners_shows_the_examples_commented_out(tmp_path):
    config = load_config(write(tmp_path / "a.toml", MINIMAL))
    rendered = render_effective(config)
    assert "[[scanner]]" not in rendered.splitlines() and "# [[scanner]]" in rendered.splitlines()
    assert load_config(write(tmp_path / "again.toml", rendered)) == config


def uncommented_examples(text: str) -> str:
    """The `# [[scanner]]` blocks of a starter config with their key lines uncommented, as an admin would."""
    out, inside = [], False
    for line in text.splitlines():
        if line == "# [[scanner]]":
            inside = True
        elif not line:
            inside = False
        if inside and re.match(r"# (\[\[scanner\]\]|\w+ = )", line):
            out.append(line.removeprefix("# "))
    return "\n".join(out) + "\n"


def test_starter_config_loads_and_its_examples_are_one_working_entry_per_kind(tmp_path):
    text = starter_config("BER", "Berlin", "data/appliance.db")
    config = load_config(write(tmp_path / "etc" / "appliance.toml", text))
    assert config.scanners == ()
    examples = uncommented_examples(text)
    assert examples.count("[[scanner]]") == 3
    config = load_config(write(tmp_path / "etc" / "appliance.toml", text + examples))
    assert [s.kind for s in config.scanners] == ["hid", "serial", "replay"]
    assert config.scanners[2].path == tmp_path / "etc" / "scan.sock"


# Documentation ----------------------------------------------------------------------------------------------

def test_every_scanner_key_has_a_one_line_description_and_a_supported_type():
    for _, cls in arrays():
        for f, type_ in keys(cls):
            assert f.metadata["doc"].strip() and "\n" not in f.metadata["doc"], f.name
            assert type_ in loader._EXPECTED, f.name
            assert set(f.metadata.get("required_for", ())) <= set(f.metadata.get("kinds") or ("hid", "serial",
                                                                                              "replay")), f.name


def test_reference_markdown_lists_scanner_keys_with_their_kinds():
    table = reference_markdown()
    assert "| `[scanning] idle_timeout_s` | `300.0` |" in table
    assert "| `[[scanner]] kind` | **required** | hid (a USB gun" in table
    assert "| `[[scanner]] device` | **required** (hid) | hid: which input device" in table
    assert "| `[[scanner]] terminator` | enter (hid), CR (serial) | hid and serial: what ends a scan" in table
    assert "| `[[scanner]] gs` | `\"<GS>\"` | what this gun sends" in table
    assert "| `[[scanner]] ok_reply` | `\"\"` | serial: bytes in hex" in table


def test_the_readme_reference_is_up_to_date():
    """The README's configuration table is reference_markdown() verbatim: regenerate it when a key changes."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme


def test_the_readme_scanner_examples_load(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[[scanner]]" in b]
    assert blocks, "the README shows no [[scanner]] example"
    for block in blocks:
        config = parse_config(tomllib.loads(MINIMAL + block), label="README", base_dir=tmp_path)
        assert {s.kind for s in config.scanners} == {"hid", "serial", "replay"}
