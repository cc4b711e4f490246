"""`[[printer]]` entries: every kind loads with its own keys, mistakes name the entry, key, value and reason."""

from __future__ import annotations

import pytest

from appliance.config import ConfigError, load_config
from appliance.config.printers import PRINTER_EXAMPLES
from appliance.printing.media import Media
from appliance.printing.service import NoPrinter, choose_printer

BASE = '[site]\nid = "BER"\n\n[database]\npath = "ledger.db"\n'


def load(tmp_path, *entries: str):
    path = tmp_path / "appliance.toml"
    path.write_text(BASE + "".join(f"\n[[printer]]\n{entry}\n" for entry in entries), encoding="utf-8")
    return load_config(path)


def entry(**keys) -> str:
    return "\n".join(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else
                     f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in keys.items())


def test_the_documented_examples_load(tmp_path):
    config = load(tmp_path, *(entry(**example) for example in PRINTER_EXAMPLES))
    assert [(p.name, p.language) for p in config.printers] == [("dock-zebra", "zpl"), ("office-epson", "escpos"),
                                                               ("demo", "zpl")]
    assert config.printers[2].path == tmp_path / "printed"   # relative to the config file


@pytest.mark.parametrize("keys, expected", [
    ({"name": "z", "kind": "zpl_tcp"}, "printer[1].host is required for kind zpl_tcp"),
    ({"name": "z", "kind": "laser"}, "printer[1].kind = 'laser'"),
    ({"name": "z", "kind": "zpl_tcp", "host": "10.0.0.5", "dpi": 250}, "must be one of 203, 300, 600"),
    ({"name": "z", "kind": "zpl_tcp", "host": "10.0.0.5", "labels": "variant, shelf"},
     "'shelf' is not a label type"),
    ({"name": "z", "kind": "zpl_tcp", "host": "10.0.0.5", "stations": "Dock 1"}, "'Dock 1' is not a station name"),
    ({"name": "z", "kind": "escpos_usb"}, "printer[1].usb is required for kind escpos_usb"),
    ({"name": "z", "kind": "escpos_usb", "usb": "epson"}, "must be vendor:product in hex"),
    ({"name": "z", "kind": "zpl_device", "device": "/dev/usb/lp0", "host": "10.0.0.5"}, "printer[1].host"),
    ({"name": "z", "kind": "zpl_tcp", "host": "10.0.0.5", "speed": 20}, "must be 0 or 2-14"),
    ({"name": "z", "kind": "zpl_tcp", "host": "10.0.0.5", "width_mm": 500}, "printer[1].width_mm"),
])
def test_mistakes_are_reported_with_entry_key_and_reason(tmp_path, keys, expected):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, entry(**keys))
    assert expected in str(caught.value)


def test_two_printers_with_one_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="name"):
        load(tmp_path, entry(name="z", kind="capture", path="a"), entry(name="z", kind="capture", path="b"))


def test_media_follows_the_printer(tmp_path):
    (printer,) = load(tmp_path, entry(name="z", kind="zpl_tcp", host="10.0.0.5", dpi=300, width_mm=100,
                                      height_mm=150, media="mark", offset_x_mm=1.5)).printers
    media = Media.from_printer(printer)
    assert (media.dpi, media.width_mm, media.height_mm, media.language, media.media) == (300, 100, 150, "zpl", "mark")
    assert media.dots(25.4) == 300


def test_which_printer_a_label_goes_to(tmp_path):
    config = load(tmp_path, entry(name="office", kind="capture", path="o", default=True),
                  entry(name="bins", kind="capture", path="b", labels="location"),
                  entry(name="dock", kind="capture", path="d", stations="dock-1"),
                  entry(name="dock-bins", kind="capture", path="e", stations="dock-1", labels="location"))
    pick = lambda label, **kw: choose_printer(config, label, **kw).name  # noqa: E731
    assert pick("variant") == "office"
    assert pick("location") == "bins"
    assert pick("variant", station="dock-1") == "dock"
    assert pick("location", station="dock-1") == "dock-bins"
    assert pick("location", station="packing") == "bins"
    assert pick("variant", name="bins") == "bins"
    with pytest.raises(NoPrinter, match="no printer 'x'"):
        pick("variant", name="x")
    lonely = load(tmp_path, entry(name="only", kind="capture", path="o"))
    assert choose_printer(lonely, "sscc").name == "only"
    with pytest.raises(NoPrinter, match="no printer is configured"):
        choose_printer(load(tmp_path), "variant")
