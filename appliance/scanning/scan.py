"""A scan as every reader delivers it: which station, which device, the raw text, when (DESIGN.md §4).

Readers (HID via evdev, serial via pyserial, replay) produce `Scan`s; interpretation (barcodes.py) and the
station workflows consume them. Raw text keeps control characters (GS = 0x1D) exactly as decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

GS = "\x1d"


@dataclass(frozen=True)
class Scan:
    station: str      # e.g. dock-1
    device: str       # e.g. hid:/dev/input/by-id/usb-Zebra..., serial:/dev/ttyUSB0, replay:demo
    raw: str
    at: float         # time.time() when the terminator arrived

    def visible(self) -> str:
        """The raw text with control characters made visible (<GS>, <CR>, <0x07>) for logs and the scan log."""
        return visible(self.raw)


_NAMES = {0x1D: "<GS>", 0x1E: "<RS>", 0x04: "<EOT>", 0x0D: "<CR>", 0x0A: "<LF>", 0x09: "<TAB>"}


def visible(text: str) -> str:
    return "".join(_NAMES.get(ord(c), f"<0x{ord(c):02X}>") if ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in text)
