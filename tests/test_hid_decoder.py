"""HID gun decoding from real `evdev.InputEvent` sequences, for every layout a gun may emulate (issue 4).

The events are built the way the kernel reports a USB keyboard report: EV_MSC/MSC_SCAN with the HID usage,
then EV_KEY for the modifiers and the key, then EV_SYN; the release report likewise; reports 2 ms apart.
Which keys a gun presses for each character comes from GUN_KEYS below, written by hand from the keycaps of
each national keyboard, NOT from appliance.scanning.keymaps (inverting the decoder's own table could never
fail). GS is Ctrl + the key at the US `]` position on every layout, as the Windows tables have it.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from evdev import InputEvent, ecodes

from appliance.scanning import hid_decoder, keymaps
from appliance.scanning.hid_decoder import HidDecoder, layouts

GS, RS, EOT = "\x1d", "\x1e", "\x04"
LAYOUTS = ("us", "uk", "de", "fr", "pl")


def _keys(letters_on: dict[str, str], digits_need_shift: bool, **chars: str) -> dict[str, str]:
    """A gun's key table: character -> "modifiers KEY_NAME" (modifiers: shift, altgr, ctrl, in any order)."""
    table = {" ": "KEY_SPACE"}
    for c in string.ascii_lowercase:
        key = "KEY_" + letters_on.get(c, c.upper())
        table[c] = key
        table[c.upper()] = "shift " + key
        table[chr(ord(c) - 0x60)] = "ctrl " + key   # Ctrl + the key with that letter printed on it
    for d in string.digits:
        table[d] = ("shift " if digits_need_shift else "") + f"KEY_{d}"
    table.update(chars)
    return table


_US_SYMBOLS = {
    "-": "KEY_MINUS", "/": "KEY_SLASH", "(": "shift KEY_9", ")": "shift KEY_0", "=": "KEY_EQUAL",
    "@": "shift KEY_2", "#": "shift KEY_3", "<": "shift KEY_COMMA", ">": "shift KEY_DOT",
    "|": "shift KEY_BACKSLASH", '"': "shift KEY_APOSTROPHE", "'": "KEY_APOSTROPHE", "[": "KEY_LEFTBRACE",
    "]": "KEY_RIGHTBRACE", ".": "KEY_DOT", GS: "ctrl KEY_RIGHTBRACE", RS: "ctrl shift KEY_6",
}

GUN_KEYS = {
    "us": _keys({}, False, **_US_SYMBOLS),
    "pl": _keys({}, False, **_US_SYMBOLS, **{
        "ą": "altgr KEY_A", "ć": "altgr KEY_C", "ę": "altgr KEY_E", "ł": "altgr KEY_L", "ń": "altgr KEY_N",
        "ó": "altgr KEY_O", "ś": "altgr KEY_S", "ź": "altgr KEY_X", "ż": "altgr KEY_Z", "Ł": "shift altgr KEY_L",
        "Ż": "shift altgr KEY_Z"}),
    "uk": _keys({}, False, **{
        "-": "KEY_MINUS", "/": "KEY_SLASH", "(": "shift KEY_9", ")": "shift KEY_0", "=": "KEY_EQUAL",
        "@": "shift KEY_APOSTROPHE", "#": "KEY_BACKSLASH", "~": "shift KEY_BACKSLASH", "<": "shift KEY_COMMA",
        ">": "shift KEY_DOT", "\\": "KEY_102ND", "|": "shift KEY_102ND", '"': "shift KEY_2", "£": "shift KEY_3",
        "'": "KEY_APOSTROPHE", "[": "KEY_LEFTBRACE", "]": "KEY_RIGHTBRACE", ".": "KEY_DOT",
        GS: "ctrl KEY_RIGHTBRACE", RS: "ctrl shift KEY_6"}),
    "de": _keys({"y": "Z", "z": "Y"}, False, **{
        "-": "KEY_SLASH", "/": "shift KEY_7", "(": "shift KEY_8", ")": "shift KEY_9", "=": "shift KEY_0",
        "@": "altgr KEY_Q", "#": "KEY_BACKSLASH", "'": "shift KEY_BACKSLASH", "<": "KEY_102ND",
        ">": "shift KEY_102ND", "|": "altgr KEY_102ND", '"': "shift KEY_2", "[": "altgr KEY_8",
        "]": "altgr KEY_9", ".": "KEY_DOT", "ß": "KEY_MINUS", "ü": "KEY_LEFTBRACE", "ö": "KEY_SEMICOLON",
        "ä": "KEY_APOSTROPHE", "Ä": "shift KEY_APOSTROPHE", "+": "KEY_RIGHTBRACE",
        GS: "ctrl KEY_RIGHTBRACE",   # Ctrl + the + key: Windows' German table puts GS there, like US Ctrl+]
        RS: "ctrl shift KEY_6"}),
    "fr": _keys({"a": "Q", "q": "A", "z": "W", "w": "Z", "m": "SEMICOLON"}, True, **{
        "-": "KEY_6", "/": "shift KEY_DOT", "(": "KEY_5", ")": "KEY_MINUS", "=": "KEY_EQUAL", "@": "altgr KEY_0",
        "#": "altgr KEY_3", "<": "KEY_102ND", ">": "shift KEY_102ND", "|": "altgr KEY_6", '"': "KEY_3",
        "'": "KEY_4", "[": "altgr KEY_5", "]": "altgr KEY_MINUS", ".": "shift KEY_COMMA", "é": "KEY_2",
        "è": "KEY_7", "ç": "KEY_9", "à": "KEY_0", "ù": "KEY_APOSTROPHE",
        GS: "ctrl KEY_RIGHTBRACE",   # Ctrl + the $ key
        RS: "ctrl shift KEY_9"}),
}

# HID usages (USB HID Usage Tables, keyboard page) for the MSC_SCAN events the kernel sends with each key.
_USAGE = {f"KEY_{c}": 0x04 + i for i, c in enumerate(string.ascii_uppercase)}
_USAGE |= {f"KEY_{d}": 0x1E + i for i, d in enumerate("1234567890")}
_USAGE |= {f"KEY_KP{d}": 0x59 + i for i, d in enumerate("1234567890")}
_USAGE |= {
    "KEY_ENTER": 0x28, "KEY_TAB": 0x2B, "KEY_SPACE": 0x2C, "KEY_MINUS": 0x2D, "KEY_EQUAL": 0x2E,
    "KEY_LEFTBRACE": 0x2F, "KEY_RIGHTBRACE": 0x30, "KEY_BACKSLASH": 0x32, "KEY_SEMICOLON": 0x33,
    "KEY_APOSTROPHE": 0x34, "KEY_GRAVE": 0x35, "KEY_COMMA": 0x36, "KEY_DOT": 0x37, "KEY_SLASH": 0x38,
    "KEY_CAPSLOCK": 0x39, "KEY_F5": 0x3E, "KEY_F12": 0x45, "KEY_102ND": 0x64, "KEY_LEFTCTRL": 0xE0,
    "KEY_LEFTSHIFT": 0xE1, "KEY_LEFTALT": 0xE2, "KEY_RIGHTSHIFT": 0xE5, "KEY_RIGHTALT": 0xE6,
}
_MODIFIER_KEYS = {"shift": "KEY_LEFTSHIFT", "altgr": "KEY_RIGHTALT", "ctrl": "KEY_LEFTCTRL", "alt": "KEY_LEFTALT"}


class Gun:
    """Produces the events a gun emulating `layout` sends, on its own clock (event timestamps)."""

    def __init__(self, layout: str, *, t: float = 1_760_000_000.0, report_s: float = 0.002,
                 shift_key: str = "KEY_LEFTSHIFT") -> None:
        self.table = GUN_KEYS[layout]
        self.t = t
        self.report_s = report_s
        self.modifiers = _MODIFIER_KEYS | {"shift": shift_key}

    def raw(self, type_: int, code: int, value: int) -> InputEvent:
        """One event at the gun's current time."""
        sec = int(self.t)
        return InputEvent(sec, round((self.t - sec) * 1_000_000), type_, code, value)

    def report(self, keys: list[str], value: int) -> list[InputEvent]:
        """One HID report: the keys' MSC_SCAN + EV_KEY events, then SYN_REPORT; advances the clock."""
        events = []
        for name in keys:
            events.append(self.raw(ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70000 + _USAGE.get(name, 0)))
            events.append(self.raw(ecodes.EV_KEY, ecodes.ecodes[name], value))
        events.append(self.raw(ecodes.EV_SYN, ecodes.SYN_REPORT, 0))
        self.t += self.report_s
        return events

    def stroke(self, spec: str) -> list[InputEvent]:
        """Press and release one key with its modifiers, e.g. "shift altgr KEY_L"."""
        *mods, key = spec.split()
        held = [self.modifiers[m] for m in mods]
        return self.report(held + [key], 1) + self.report(held + [key], 0)

    def type(self, text: str, *, end: str | None = "KEY_ENTER", gs: str = "ctrl") -> list[InputEvent]:
        events: list[InputEvent] = []
        for char in text:
            if char == GS and gs == "alt":
                events += self.alt_code("0029")
            else:
                events += self.stroke(self.table[char])
        if end is not None:
            events += self.stroke(end)
        return events

    def alt_code(self, digits: str) -> list[InputEvent]:
        """Alt held, the digits on the keypad, Alt released: how guns send characters by number."""
        events = self.report(["KEY_LEFTALT"], 1)
        for d in digits:
            events += self.report(["KEY_LEFTALT", f"KEY_KP{d}"], 1) + self.report([f"KEY_KP{d}"], 0)
        return events + self.report(["KEY_LEFTALT"], 0)

    def pause(self, seconds: float) -> None:
        self.t += seconds


def decode(decoder: HidDecoder, events: list[InputEvent]) -> list[str]:
    return [text for event in events if (text := decoder.feed(event)) is not None]


ALPHABET = string.ascii_lowercase + string.ascii_uppercase
MOVING_SYMBOLS = "-/()=@#<>|\"'"
GS1 = f"]C101095011015300031714123110AB-123{GS}21XYZ"
LOCATION = "BER-A-01-03"


def test_the_layouts_the_issue_lists_are_supported():
    assert set(LAYOUTS) <= set(layouts())


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("text", [ALPHABET, string.digits, MOVING_SYMBOLS, GS1, LOCATION, "Ab 9.Z"],
                         ids=["letters", "digits", "moving-symbols", "gs1", "location", "mixed"])
def test_a_scan_decodes_to_what_the_gun_typed(layout, text):
    decoder = HidDecoder(layout)
    assert decode(decoder, Gun(layout).type(text)) == [text]
    assert decoder.counts["scans"] == 1
    assert not decoder.discarded and not decoder.unknown_keys


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gs1_with_gs_sent_as_alt_keypad_0029(layout):
    assert decode(HidDecoder(layout), Gun(layout).type(GS1, gs="alt")) == [GS1]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_iso_15434_envelope_with_rs_gs_eot(layout):
    text = f"[)>{RS}06{GS}1PABC{GS}Q12{RS}{EOT}"
    assert decode(HidDecoder(layout), Gun(layout).type(text)) == [text]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_scans_follow_each_other_and_right_shift_counts(layout):
    gun = Gun(layout, shift_key="KEY_RIGHTSHIFT")
    events = gun.type(LOCATION) + gun.type("CMD-DONE") + gun.type(GS1)
    assert decode(HidDecoder(layout), events) == [LOCATION, "CMD-DONE", GS1]


@pytest.mark.parametrize("layout, text, wrong_layout, wrong_text", [
    ("de", "Y", "us", "Z"),
    ("de", "Zy", "us", "Yz"),
    ("de", LOCATION, "us", "BER/A/01/03"),
    ("de", "@", "us", ""),            # AltGr+Q types nothing on a US keyboard
    ("us", "Z-1", "de", "Yß1"),
    ("fr", "A1", "us", "Q!"),
    ("fr", "AZ-M", "de", "QW6Ö"),
    ("uk", '@"#', "us", '"@\\'),
    ("us", '@"#', "uk", '"@£'),
    ("pl", "ł", "us", ""),
])
def test_the_same_events_with_the_wrong_layout_give_the_wrong_text(layout, text, wrong_layout, wrong_text):
    events = Gun(layout).type(text)
    assert decode(HidDecoder(layout), events) == [text]
    assert decode(HidDecoder(wrong_layout), events) == ([wrong_text] if wrong_text else [])


def test_key_repeat_and_stray_events_are_ignored():
    gun = Gun("de")
    events = gun.stroke("shift KEY_B") + gun.report(["KEY_LEFTSHIFT", "KEY_Q"], 1)
    events += [gun.raw(ecodes.EV_KEY, ecodes.KEY_Q, 2)] * 3 + [gun.raw(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 2)]
    events += gun.report(["KEY_LEFTSHIFT", "KEY_Q"], 0)
    events += [gun.raw(ecodes.EV_LED, ecodes.LED_NUML, 1), gun.raw(ecodes.EV_MSC, ecodes.MSC_SCAN, 0x7003E)]
    events += gun.stroke("KEY_F5") + gun.stroke("KEY_NUMLOCK") + gun.type("-1")
    decoder = HidDecoder("de")
    assert decode(decoder, events) == ["BQ-1"]
    assert decoder.counts["key_repeat"] == 4
    assert decoder.counts["unknown_key"] == 1 and decoder.unknown_keys == {"KEY_F5": 1}
    assert decoder.counts["ignored_key"] == 1      # Num Lock
    assert decoder.counts["ignored_event"] >= 10   # MSC_SCAN, SYN_REPORT, LED


@pytest.mark.parametrize("layout, keys, expected", [
    ("us", ["KEY_A", "KEY_B", "shift KEY_C", "KEY_1", "shift KEY_1"], "ABc1!"),
    ("de", ["KEY_Y", "KEY_LEFTBRACE", "KEY_SEMICOLON", "shift KEY_Z"], "ZÜÖy"),
    ("pl", ["altgr KEY_L", "shift altgr KEY_Z", "KEY_Q"], "ŁżQ"),
    # Windows' French table lets Caps Lock shift the top row too: & é " give 1 2 3 (the AZERTY habit).
    ("fr", ["KEY_Q", "KEY_1", "KEY_2", "KEY_3"], "A123"),
])
def test_caps_lock_sent_by_the_gun(layout, keys, expected):
    gun = Gun(layout)
    events = gun.report(["KEY_CAPSLOCK"], 1) + [gun.raw(ecodes.EV_KEY, ecodes.KEY_CAPSLOCK, 2)]
    events += gun.report(["KEY_CAPSLOCK"], 0)   # a repeat must not toggle
    for spec in keys:
        events += gun.stroke(spec)
    events += gun.stroke("KEY_CAPSLOCK") + gun.stroke("KEY_B") + gun.stroke("KEY_ENTER")
    assert decode(HidDecoder(layout), events) == [expected + "b"]


@pytest.mark.parametrize("layout, text", [
    ("de", "info@example.de"), ("fr", "x@y#[]|"), ("pl", "żółć ŁŻ źęąśń"), ("de", "[]|<>"),
])
def test_altgr_characters(layout, text):
    assert decode(HidDecoder(layout), Gun(layout).type(text)) == [text]


@pytest.mark.parametrize("layout, spec, expected", [
    ("us", "ctrl shift KEY_RIGHTBRACE", GS),   # "Ctrl + capital key" mode of some guns
    ("us", "ctrl shift KEY_D", EOT),
    ("de", "ctrl altgr KEY_9", "]"),           # Ctrl+AltGr is AltGr on Windows: `]`, not GS
    ("fr", "ctrl KEY_0", "\x00"),
    ("fr", "ctrl KEY_A", "\x11"),              # Ctrl+Q: the key US calls A carries Q on AZERTY
])
def test_other_control_key_forms(layout, spec, expected):
    gun = Gun(layout)
    assert decode(HidDecoder(layout), gun.stroke(spec) + gun.stroke("KEY_ENTER")) == [expected]


def test_left_ctrl_plus_left_alt_works_as_altgr():
    gun = Gun("de")
    events = gun.stroke("KEY_A") + gun.report(["KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_Q"], 1)
    events += gun.report(["KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_Q"], 0) + gun.stroke("KEY_ENTER")
    assert decode(HidDecoder("de"), events) == ["a@"]


@pytest.mark.parametrize("digits, char", [
    ("0029", GS), ("29", GS), ("030", RS), ("065", "A"), ("0228", "ä"), ("132", "ä"), ("0128", "€"),
])
def test_alt_keypad_codes(digits, char):
    gun = Gun("de")
    events = gun.type("X", end=None) + gun.alt_code(digits) + gun.type("Y")
    assert decode(HidDecoder("de"), events) == [f"X{char}Y"]


def test_keypad_digits_without_alt_are_digits():
    gun = Gun("fr")   # on AZERTY the keypad is the way to digits without Shift
    events = gun.stroke("KEY_KP4") + gun.stroke("KEY_KP2") + gun.stroke("KEY_ENTER")
    assert decode(HidDecoder("fr"), events) == ["42"]


@pytest.mark.parametrize("layout, keys, expected", [
    ("de", ["KEY_GRAVE", "KEY_SPACE", "KEY_1"], "^1"),
    ("de", ["KEY_GRAVE", "KEY_A"], "â"),
    ("de", ["shift KEY_EQUAL", "shift KEY_E"], "È"),
    ("de", ["KEY_GRAVE", "KEY_GRAVE"], "^^"),
    ("fr", ["KEY_LEFTBRACE", "KEY_SPACE", "shift KEY_LEFTBRACE", "KEY_U"], "^ü"),
    ("fr", ["altgr KEY_2", "KEY_SPACE"], "~"),
    ("de", ["KEY_GRAVE"], "^"),   # a pending accent is typed before the terminator
])
def test_dead_keys(layout, keys, expected):
    gun = Gun(layout)
    events = [e for spec in keys for e in gun.stroke(spec)] + gun.stroke("KEY_ENTER")
    assert decode(HidDecoder(layout), events) == [expected]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_half_scan_that_times_out_is_discarded_and_the_next_scan_decodes(layout):
    gun = Gun(layout)
    events = gun.type("01095011015300031714123110AB-123" + GS + "2", end=None)
    gun.pause(2.0)
    events += gun.type(LOCATION)
    decoder = HidDecoder(layout)
    assert decode(decoder, events) == [LOCATION]
    assert decoder.counts["discarded"] == 1
    (found,) = decoder.discarded
    assert found.partial == "01095011015300031714123110AB-123<GS>2"
    assert "timeout 0.5s" in found.reason


def test_the_timeout_uses_event_time_and_a_slow_but_steady_gun_is_fine():
    gun = Gun("us", report_s=0.2)   # 0.4 s between key presses, under the 0.5 s timeout
    assert decode(HidDecoder("us"), gun.type("SLOW-1")) == ["SLOW-1"]
    gun = Gun("us", report_s=0.3)   # 0.6 s between presses: every key is a new scan, none survives
    decoder = HidDecoder("us")
    assert decode(decoder, gun.type("ABC")) == []
    assert [d.partial for d in decoder.discarded] == ["A", "B", "C"]


def test_terminator_alone_after_a_gap_does_not_deliver_the_half_scan(caplog):
    gun = Gun("us")
    events = gun.type("BER-A", end=None)
    gun.pause(1.0)
    events += gun.stroke("KEY_ENTER")
    decoder = HidDecoder("us")
    assert decode(decoder, events) == []
    assert decoder.discarded[0].partial == "BER-A"
    assert "scan discarded" in caplog.text and "BER-A" in caplog.text


def test_expire_and_reset_discard_a_half_scan():
    gun = Gun("us")
    decoder = HidDecoder("us")
    assert decode(decoder, gun.type("AB", end=None)) == []
    assert decoder.expire(gun.t + 0.1) is None
    assert decoder.expire(gun.t + 1.0).partial == "AB"
    decode(decoder, gun.report(["KEY_LEFTSHIFT"], 1) + gun.stroke("KEY_C"))   # unplugged with Shift held
    assert decoder.reset("unplugged").partial == "C"
    assert decode(decoder, gun.type("d")) == ["d"]   # the stuck Shift was forgotten


@pytest.mark.parametrize("terminators, end_key", [
    (("tab",), "KEY_TAB"), (("KEY_F12",), "KEY_F12"), (("enter", "tab"), "KEY_TAB"), ("enter", "KEY_KPENTER"),
])
def test_configured_terminators(terminators, end_key):
    decoder = HidDecoder("us", terminators=terminators)
    assert decode(decoder, Gun("us").type(LOCATION, end=end_key)) == [LOCATION]


def test_with_a_tab_terminator_enter_is_part_of_the_text():
    gun = Gun("us")
    events = gun.type("A", end="KEY_ENTER") + gun.type("B", end="KEY_TAB")
    assert decode(HidDecoder("us", terminators=("tab",)), events) == ["A\rB"]


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(ValueError, match=r"'xx'.*de, fr, pl, uk, us"):
        HidDecoder("xx")


@pytest.mark.parametrize("terminators", [("return",), ("KEY_NO_SUCH_KEY",), (), ("KEY_LEFTSHIFT",)])
def test_bad_terminators_are_refused(terminators):
    with pytest.raises(ValueError):
        HidDecoder("us", terminators=terminators)


def test_key_codes_match_the_kernel_numbers_evdev_knows():
    for name, code in keymaps.KEY.items():
        assert getattr(ecodes, name) == code, name
    assert (hid_decoder.EV_KEY, hid_decoder.KEY_REPEAT) == (ecodes.EV_KEY, 2)


def test_the_decoder_imports_and_decodes_without_evdev(tmp_path):
    # evdev is only needed by the reader; the decoder must work where it cannot be installed.
    (tmp_path / "evdev.py").write_text("raise ImportError('no evdev here')\n")
    code = ("from appliance.scanning.hid_decoder import HidDecoder\n"
            "from types import SimpleNamespace as E\n"
            "d = HidDecoder('de')\n"
            "press = lambda code, t: E(type=1, code=code, value=1, timestamp=lambda: t)\n"
            "print([d.feed(press(21, 1.0)), d.feed(press(28, 1.1))])\n")   # KEY_Y is z on de, KEY_ENTER
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[None, 'z']"
