"""Key events from a USB HID barcode gun -> the scanned text, with the layout the gun emulates (DESIGN.md §4).

Pure: events in, text out, no device I/O (hid_reader.py opens and grabs the devices). Time is the events' own
timestamps, so a replayed or injected event stream decodes exactly as it did live.

What a gun sends, and what this decoder therefore handles:
- letters and symbols as key + Shift / AltGr (KEY_RIGHTALT; Left Ctrl + Left Alt counts as AltGr, as on
  Windows, where some guns rely on it), dead keys followed by a space or a letter;
- Caps Lock toggles, which some guns send around upper-case runs;
- control characters as Ctrl + key (GS = Ctrl + the key at the US `]` position, see keymaps.py) or as
  Alt held + keypad digits + Alt released (decimal code: below 128 ASCII, so Alt+0029 is GS; 128-255 with a
  leading 0 is Windows-1252, without it code page 437, the Windows convention guns copy);
- a terminator key (Enter, Tab or a configured key) that ends the scan.
Key-up and auto-repeat (value 2) events only change modifier state; EV_SYN, EV_MSC, EV_LED and keys the layout
does not know are ignored and counted. A scan whose key presses are more than `timeout_s` apart was not sent
by one trigger pull (a half read, a gun unplugged mid-code, someone typing): its text is discarded, logged
and kept in `discarded` with the reason and the partial text made visible.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.scanning.keymaps import KEY, KEY_NAMES, LAYOUTS, compose, get_layout
from appliance.scanning.scan import visible

if TYPE_CHECKING:
    import evdev

logger = logging.getLogger(__name__)

EV_KEY = 1   # linux/input-event-codes.h; the other event types are only counted
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
DISCARDED_KEPT = 100

_SHIFTS = frozenset({KEY["KEY_LEFTSHIFT"], KEY["KEY_RIGHTSHIFT"]})
_CTRLS = frozenset({KEY["KEY_LEFTCTRL"], KEY["KEY_RIGHTCTRL"]})
_LALT, _RALT, _CAPS = KEY["KEY_LEFTALT"], KEY["KEY_RIGHTALT"], KEY["KEY_CAPSLOCK"]
_HELD = _SHIFTS | _CTRLS | {_LALT, _RALT}
_KP_DIGITS = {KEY[f"KEY_KP{d}"]: str(d) for d in range(10)}
# Lock and OS keys a gun may toggle or send; they type nothing and are not worth an "unknown key" warning.
_SILENT = frozenset(KEY[n] for n in ("KEY_NUMLOCK", "KEY_SCROLLLOCK", "KEY_LEFTMETA", "KEY_RIGHTMETA"))
_TERMINATOR_NAMES = {"enter": ("KEY_ENTER", "KEY_KPENTER"), "tab": ("KEY_TAB",)}
# A key that is not a terminator still types its character into the scan.
_TEXT_KEYS = {KEY["KEY_ENTER"]: "\r", KEY["KEY_KPENTER"]: "\r", KEY["KEY_TAB"]: "\t"}


def layouts() -> tuple[str, ...]:
    """The layout names HidDecoder accepts."""
    return tuple(sorted(LAYOUTS))


@dataclass(frozen=True)
class Discarded:
    reason: str
    partial: str    # the text read so far, control characters made visible (<GS>)
    at: float       # event timestamp of the key press that showed the scan was broken


class HidDecoder:
    """Turns one gun's evdev key events into scans. One instance per device; not thread-safe."""

    def __init__(self, layout: str, *, terminators: Iterable[str] = ("enter",), timeout_s: float = 0.5) -> None:
        self.layout = get_layout(layout)
        self.terminators = _terminator_codes(terminators)
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self.discarded: deque[Discarded] = deque(maxlen=DISCARDED_KEPT)
        self.counts: Counter[str] = Counter()         # scans, discarded, ignored_event, key_repeat, ...
        self.unknown_keys: Counter[str] = Counter()   # key name -> presses the layout could not type
        self._held: set[int] = set()
        self._caps = False
        self._text: list[str] = []
        self._dead: str | None = None     # accent of a dead key waiting for the next character
        self._alt_digits = ""
        self._last_press: float | None = None

    def feed(self, event: evdev.InputEvent) -> str | None:
        """Take one event; the scan's text when this event is the terminator's key press, else None."""
        if event.type != EV_KEY:
            self.counts["ignored_event"] += 1
            return None
        code, value = event.code, event.value
        if value == KEY_REPEAT:
            self.counts["key_repeat"] += 1
            return None
        if code in _HELD:
            if value == KEY_DOWN:
                self._press(event.timestamp())
                self._held.add(code)
            else:
                self._held.discard(code)
                if code in (_LALT, _RALT) and not self._held & {_LALT, _RALT}:
                    self._end_alt_code()
            return None
        if value != KEY_DOWN:
            return None
        broken = self._press(event.timestamp())
        if code == _CAPS:
            self._caps = not self._caps
        elif code in self.terminators:
            return None if broken else self._finish()
        else:
            self._key(code)
        return None

    def expire(self, now: float) -> Discarded | None:
        """Discard a scan left half-way when no key came for `timeout_s` (`now` on the events' clock); lets
        the reader log a broken read while the line is quiet instead of at the next trigger pull."""
        if self._in_progress() and self._last_press is not None and now - self._last_press > self.timeout_s:
            return self._discard(f"no key for {now - self._last_press:.3f}s (timeout {self.timeout_s}s)", now)
        return None

    def reset(self, reason: str = "device closed", at: float = 0.0) -> Discarded | None:
        """Forget all state (the device went away: its held keys will never be released); a half-read scan
        is discarded with `reason`."""
        found = self._discard(reason, at) if self._in_progress() else None
        self._held.clear()
        self._caps = False
        self._last_press = None
        return found

    # -- internals -------------------------------------------------------------------------------------

    def _press(self, at: float) -> bool:
        """Note a key press at `at`; True when it came too late for the scan in progress, which is dropped."""
        late = self._in_progress() and self._last_press is not None and at - self._last_press > self.timeout_s
        if late:
            self._discard(f"keys {at - self._last_press:.3f}s apart (timeout {self.timeout_s}s)", at)
        self._last_press = at
        return late

    def _key(self, code: int) -> None:
        shift = bool(self._held & _SHIFTS)
        ctrl = bool(self._held & _CTRLS)
        altgr = _RALT in self._held or (ctrl and _LALT in self._held)
        if code in _KP_DIGITS and self._held & {_LALT, _RALT} and not ctrl:
            self._alt_digits += _KP_DIGITS[code]
            return
        if code in _SILENT:
            self.counts["ignored_key"] += 1
            return
        if code in _TEXT_KEYS and not altgr:
            self._emit(_TEXT_KEYS[code])
            return
        if _LALT in self._held and not altgr:
            self._unknown(code, "alt_combination")   # a menu shortcut on a PC, no character
            return
        if ctrl and not altgr:
            char = self.layout.control_char(code, shift=shift)
            if char is None:
                self._unknown(code, "ctrl_combination")
            else:
                self._emit(char)
            return
        found = self.layout.char(code, shift=shift, altgr=altgr, caps=self._caps)
        if found is None:
            self._unknown(code, "unknown_key")
        elif not found[0]:
            self._unknown(code, "no_character")
        else:
            self._emit(*found)

    def _emit(self, char: str, dead: bool = False) -> None:
        if self._dead is not None:
            accent, self._dead = self._dead, None
            self._text.append(compose(accent, char))
        elif dead:
            self._dead = char
        else:
            self._text.append(char)

    def _end_alt_code(self) -> None:
        digits, self._alt_digits = self._alt_digits, ""
        if digits:
            self._emit(_alt_code_char(digits))

    def _unknown(self, code: int, what: str) -> None:
        self.counts[what] += 1
        self.unknown_keys[KEY_NAMES.get(code, f"code {code}")] += 1

    def _in_progress(self) -> bool:
        return bool(self._text or self._dead or self._alt_digits)

    def _finish(self) -> str | None:
        if self._dead is not None:   # Windows types a pending accent before the Enter
            self._text.append(self._dead)
        text = "".join(self._text)
        self._text, self._dead, self._alt_digits = [], None, ""
        if not text:
            self.counts["empty"] += 1
            return None
        self.counts["scans"] += 1
        return text

    def _discard(self, reason: str, at: float) -> Discarded:
        found = Discarded(reason, visible("".join(self._text) + (self._dead or "")), at)
        self._text, self._dead, self._alt_digits = [], None, ""
        self.discarded.append(found)
        self.counts["discarded"] += 1
        logger.warning("scan discarded (layout %s): %s; partial text %r", self.layout.name, reason, found.partial)
        return found


def _alt_code_char(digits: str) -> str:
    code = int(digits) % 256   # Windows keeps the low byte of longer numbers
    if code < 0x80:
        return chr(code)
    try:
        return bytes([code]).decode("cp1252" if digits.startswith("0") else "cp437")
    except UnicodeDecodeError:   # the five holes of cp1252 come through as C1 controls on Windows
        return chr(code)


def _terminator_codes(names: Iterable[str]) -> frozenset[int]:
    if isinstance(names, str):
        names = (names,)
    codes: set[int] = set()
    for name in names:
        for key_name in _TERMINATOR_NAMES.get(name.strip().lower(), (name.strip().upper(),)):
            codes.add(_key_code(key_name, name))
    if not codes:
        raise ValueError("at least one scan terminator is needed (enter, tab or a key name like KEY_F12)")
    if codes & (_HELD | {_CAPS}):
        raise ValueError("a modifier key (Shift, Ctrl, Alt, Caps Lock) cannot end a scan")
    return frozenset(codes)


def _key_code(key_name: str, configured: str) -> int:
    if key_name in KEY:
        return KEY[key_name]
    code = None
    if key_name.startswith("KEY_"):
        try:   # rarer keys (F13-F24, Pause, ...) by evdev's own table, imported only when configured
            from evdev import ecodes
        except ImportError:
            ecodes = None
        code = getattr(ecodes, key_name, None) if ecodes is not None else None
    if not isinstance(code, int):
        raise ValueError(f"unknown scan terminator {configured!r}: use enter, tab or a key name like KEY_F12")
    return code
