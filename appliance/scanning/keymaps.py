"""Keyboard layouts a USB HID barcode gun can emulate, as data (DESIGN.md §4).

A HID gun sends key presses, not characters: it picks the keys that a PC set to layout L would turn into the
barcode's text. Decoding therefore needs the host's table for L, including the host's quirks (Caps Lock
rules, dead keys, which key gives which control character with Ctrl).

Sources. Guns are built and tested against Windows hosts, so the Windows layout tables are the reference:
`us`, `de`, `fr` are taken from Microsoft's keyboard layout sources (Windows-driver-samples,
input/layout/kbdus/kbdus.c and all_kbds/kbdgr, all_kbds/kbdfr: characters per shift state, the CAPLOK flag,
dead keys and the Ctrl column). `uk` (kbduk) and `pl` (kbdpl1, "Polish (Programmers)") are not in those
samples; they are written from the X11 xkb symbol files on this machine (/usr/share/X11/xkb/symbols/gb and
pl, package xkb-data) with the Windows differences known for those layouts applied (102nd key `\\|`, AltGr+
vowel accents on uk, AltGr+U = € on pl). Where xkb and Windows differ the Windows value is used:
- us, pl: the ISO 102nd key gives `\\|` (xkb pc105: `<>`);
- de, fr: Caps Lock also shifts the digit row and punctuation (Windows CAPLOK; xkb shifts letters only),
  so with Caps Lock on a French `&` key types `1`;
- fr: AltGr+2 (`~`) and AltGr+7 (`` ` ``) are dead keys (xkb: plain characters); `²` has no Shift level;
- de: AltGr extras that only xkb has (`»`, `«`, `…`) are absent.

Control characters. On all five layouts Windows puts ESC, FS and GS with Ctrl on the keys at the US `[`, `\\`
and `]` positions, whatever those keys print (de: Ctrl+Ü, Ctrl+#, Ctrl++; fr: Ctrl+^, Ctrl+*, Ctrl+$), and
Ctrl+letter gives 0x01-0x1A by the letter printed on the key (de Ctrl+Z is the key US calls Y). Ctrl with a
key that only produces `]` through AltGr (de AltGr+9) gives `]` on Windows, not GS. Alt + keypad digits
(decimal code) is the other way guns send control and non-ASCII characters; the decoder handles that.

Key codes are the Linux input codes (include/uapi/linux/input-event-codes.h), a stable kernel ABI written out
here so that this module imports without evdev; a test checks them against `evdev.ecodes`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_IN_CODE_ORDER = (
    "ESC 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL BACKSPACE TAB Q W E R T Y U I O P LEFTBRACE RIGHTBRACE ENTER LEFTCTRL "
    "A S D F G H J K L SEMICOLON APOSTROPHE GRAVE LEFTSHIFT BACKSLASH Z X C V B N M COMMA DOT SLASH RIGHTSHIFT "
    "KPASTERISK LEFTALT SPACE CAPSLOCK F1 F2 F3 F4 F5 F6 F7 F8 F9 F10 NUMLOCK SCROLLLOCK "
    "KP7 KP8 KP9 KPMINUS KP4 KP5 KP6 KPPLUS KP1 KP2 KP3 KP0 KPDOT"
).split()
_KEY = {f"KEY_{name}": code for code, name in enumerate(_IN_CODE_ORDER, start=1)}
_KEY.update(KEY_102ND=86, KEY_F11=87, KEY_F12=88, KEY_KPENTER=96, KEY_RIGHTCTRL=97, KEY_KPSLASH=98,
            KEY_RIGHTALT=100, KEY_LEFTMETA=125, KEY_RIGHTMETA=126)
KEY: Mapping[str, int] = MappingProxyType(_KEY)
KEY_NAMES: Mapping[int, str] = MappingProxyType({code: name for name, code in _KEY.items()})

NUL, ESC, FS, GS, RS, US = "\x00", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f"

# The spacing form of each dead key's accent and the combining mark it adds to the next letter.
DEAD_ACCENTS: Mapping[str, str] = MappingProxyType(
    {"^": "\u0302", "`": "\u0300", "´": "\u0301", "¨": "\u0308", "~": "\u0303"})

# Main block in the order of the row strings below; a space in a row string means "no character".
_ROWS = (
    "GRAVE 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL",
    "Q W E R T Y U I O P LEFTBRACE RIGHTBRACE",
    "A S D F G H J K L SEMICOLON APOSTROPHE BACKSLASH",
    "102ND Z X C V B N M COMMA DOT SLASH",
)
_KEYPAD = {"KP0": "0", "KP1": "1", "KP2": "2", "KP3": "3", "KP4": "4", "KP5": "5", "KP6": "6", "KP7": "7",
           "KP8": "8", "KP9": "9", "KPMINUS": "-", "KPPLUS": "+", "KPASTERISK": "*", "KPSLASH": "/", "SPACE": " "}

PLAIN, SHIFT, ALTGR, SHIFT_ALTGR = range(4)


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    keys: Mapping[int, tuple[str, str, str, str]]   # code -> characters at PLAIN..SHIFT_ALTGR ("" = none)
    caps: frozenset[int]          # Caps Lock acts as Shift on the plain/Shift pair of these keys
    caps_altgr: frozenset[int]    # ... and on the AltGr/Shift+AltGr pair of these
    dead: frozenset[tuple[int, int]]   # (code, level) whose character is a dead accent
    control: Mapping[tuple[int, bool], str]   # (code, shift) -> character with Ctrl, for non-letter keys

    def char(self, code: int, *, shift: bool, altgr: bool, caps: bool) -> tuple[str, bool] | None:
        """(character, is_dead) for `code` in this modifier state; None for a key this layout does not know,
        ("", False) for a known key with nothing on that level."""
        levels = self.keys.get(code)
        if levels is None:
            return None
        if caps and code in (self.caps_altgr if altgr else self.caps):
            shift = not shift
        level = (ALTGR if altgr else PLAIN) + (1 if shift else 0)
        return levels[level], (code, level) in self.dead

    def control_char(self, code: int, *, shift: bool) -> str | None:
        """What Ctrl (+Shift) with `code` types: 0x01-0x1A by the letter on the key, else the layout's table.
        Shift falls back to the unshifted entry: some guns send control characters as Ctrl+Shift+key."""
        plain = self.keys.get(code, ("",))[0]
        if len(plain) == 1 and "a" <= plain <= "z":
            return chr(ord(plain) - 0x60)
        found = self.control.get((code, shift))
        if found is None and shift:
            found = self.control.get((code, False))
        return found


def compose(accent: str, char: str) -> str:
    """What a Windows host types for dead key `accent` followed by `char`: the accented letter where Latin-1
    has one, the accent alone after a space, otherwise both characters."""
    if char == " ":
        return accent
    combined = unicodedata.normalize("NFC", char + DEAD_ACCENTS[accent])
    if len(combined) == 1 and ord(combined) < 0x100:
        return combined
    return accent + char


def _layout(name: str, title: str, plain: tuple[str, ...], shift: tuple[str, ...], *,
            altgr: Mapping[str, str] = MappingProxyType({}), caps_extra: str = "", caps_altgr: str = "",
            dead: tuple[tuple[str, int], ...] = (), control: Mapping[tuple[str, bool], str],
            kp_decimal: str = ".") -> Layout:
    keys: dict[int, tuple[str, str, str, str]] = {}
    caps = {_KEY[f"KEY_{n}"] for n in caps_extra.split()}
    for row, low, high in zip(_ROWS, plain, shift, strict=True):
        names = row.split()
        if not len(names) == len(low) == len(high):
            raise ValueError(f"layout {name}: row {row!r} has {len(names)} keys, got {low!r} / {high!r}")
        for key_name, p, s in zip(names, low, high):
            code = _KEY[f"KEY_{key_name}"]
            g = altgr.get(key_name, "")
            keys[code] = (p.strip(), s.strip(), g[:1], g[1:2])
            if p.isalpha() and p.upper() == s:   # a letter, as Windows and xkb mark them for Caps Lock
                caps.add(code)
    for key_name, char in (_KEYPAD | {"KPDOT": kp_decimal}).items():
        keys[_KEY[f"KEY_{key_name}"]] = (char, char, char, char)
    return Layout(
        name=name, title=title, keys=MappingProxyType(keys), caps=frozenset(caps),
        caps_altgr=frozenset(_KEY[f"KEY_{n}"] for n in caps_altgr.split()),
        dead=frozenset((_KEY[f"KEY_{n}"], level) for n, level in dead),
        control=MappingProxyType({(_KEY[f"KEY_{n}"], s): c for (n, s), c in control.items()}),
    )


_US_CONTROL = {("LEFTBRACE", False): ESC, ("RIGHTBRACE", False): GS, ("BACKSLASH", False): FS,
               ("102ND", False): FS, ("2", True): NUL, ("6", True): RS, ("MINUS", True): US}

_US_PLAIN = ("`1234567890-=", "qwertyuiop[]", "asdfghjkl;'\\", "\\zxcvbnm,./")
_US_SHIFT = ("~!@#$%^&*()_+", "QWERTYUIOP{}", 'ASDFGHJKL:"|', "|ZXCVBNM<>?")

_LAYOUTS = (
    _layout("us", "English (US)", _US_PLAIN, _US_SHIFT, control=_US_CONTROL),
    _layout(
        "uk", "English (UK)",
        ("`1234567890-=", "qwertyuiop[]", "asdfghjkl;'#", "\\zxcvbnm,./"),
        ("¬!\"£$%^&*()_+", "QWERTYUIOP{}", "ASDFGHJKL:@~", "|ZXCVBNM<>?"),
        altgr={"GRAVE": "¦", "4": "€", "E": "éÉ", "U": "úÚ", "I": "íÍ", "O": "óÓ", "A": "áÁ"},
        control=_US_CONTROL,   # kbduk keeps the US Ctrl positions; its # key is the US \ position
    ),
    _layout(
        "pl", "Polish (programmers)", _US_PLAIN, _US_SHIFT,
        altgr={"A": "ąĄ", "C": "ćĆ", "E": "ęĘ", "L": "łŁ", "N": "ńŃ", "O": "óÓ", "S": "śŚ", "X": "źŹ",
               "Z": "żŻ", "U": "€"},
        caps_altgr="A C E L N O S X Z",
        control=_US_CONTROL,
        kp_decimal=",",   # xkb pl uses kpdl(comma); unverified against kbdpl1
    ),
    _layout(
        "de", "German (QWERTZ)",
        ("^1234567890ß´", "qwertzuiopü+", "asdfghjklöä#", "<yxcvbnm,.-"),
        ("°!\"§$%&/()=?`", "QWERTZUIOPÜ*", "ASDFGHJKLÖÄ'", ">YXCVBNM;:_"),
        altgr={"2": "²", "3": "³", "7": "{", "8": "[", "9": "]", "0": "}", "MINUS": "\\", "Q": "@", "E": "€",
               "RIGHTBRACE": "~", "102ND": "|", "M": "µ"},
        caps_extra="1 2 3 4 5 6 7 8 9 0 MINUS RIGHTBRACE BACKSLASH COMMA DOT",
        dead=(("GRAVE", PLAIN), ("EQUAL", PLAIN), ("EQUAL", SHIFT)),
        control={("LEFTBRACE", False): ESC, ("RIGHTBRACE", False): GS, ("BACKSLASH", False): FS,
                 ("2", True): NUL, ("6", True): RS, ("SLASH", True): US},
        kp_decimal=",",
    ),
    _layout(
        "fr", "French (AZERTY)",
        ("²&é\"'(-è_çà)=", "azertyuiop^$", "qsdfghjklmù*", "<wxcvbn,;:!"),
        (" 1234567890°+", "AZERTYUIOP¨£", "QSDFGHJKLM%µ", ">WXCVBN?./§"),
        altgr={"2": "~", "3": "#", "4": "{", "5": "[", "6": "|", "7": "`", "8": "\\", "9": "^", "0": "@",
               "MINUS": "]", "EQUAL": "}", "E": "€", "RIGHTBRACE": "¤"},
        caps_extra="1 2 3 4 5 6 7 8 9 0 MINUS EQUAL LEFTBRACE RIGHTBRACE APOSTROPHE BACKSLASH M COMMA DOT SLASH",
        dead=(("LEFTBRACE", PLAIN), ("LEFTBRACE", SHIFT), ("2", ALTGR), ("7", ALTGR)),
        control={("LEFTBRACE", False): ESC, ("RIGHTBRACE", False): GS, ("BACKSLASH", False): FS,
                 ("102ND", False): FS, ("0", False): NUL, ("5", True): ESC, ("6", True): US, ("8", True): FS,
                 ("9", True): RS},
    ),
)

LAYOUTS: Mapping[str, Layout] = MappingProxyType({layout.name: layout for layout in _LAYOUTS})
_ALIASES = {"gb": "uk"}   # the xkb name, which people who set up Linux desktops know


def get_layout(name: str) -> Layout:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return LAYOUTS[key]
    except KeyError:
        raise ValueError(f"unknown keyboard layout {name!r}; known layouts: {', '.join(sorted(LAYOUTS))}") \
            from None
