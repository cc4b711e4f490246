"""The barcodes a label can carry, each as one `Symbol`: its modules (for fitting and the preview) and the
data each printer language is sent, derived from the same encoding so print and preview cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import barcode

from appliance.printing import barcode_code128 as c128
from appliance.scanning.gs1 import check_digit

# AIs GS1 predefines as fixed-length: no FNC1 after them, whatever follows.
FIXED_LENGTH_AIS = frozenset({"00", "01", "02", "11", "12", "13", "15", "16", "17", "20"})


@dataclass(frozen=True)
class Symbol:
    kind: str                  # code128 | gs1_128 | ean13 | upca
    text: str                  # what a scanner reports (GS1: FNC1 separators as "\x1d", no leading FNC1)
    modules: str               # "1" bar, "0" space, quiet zones not included
    quiet: int                 # modules of white each side
    zpl: str                   # ^BC/^BE/^BU field data
    escpos_type: str           # python-escpos barcode name
    escpos_data: str

    @property
    def readable(self) -> str:
        """The data for messages: FNC1 separators shown as <GS>."""
        return self.text.replace("\x1d", "<GS>")

    @property
    def width(self) -> int:
        """Modules including both quiet zones."""
        return len(self.modules) + 2 * self.quiet


def code128(text: str) -> Symbol:
    parts = c128.encode(text)
    return Symbol("code128", text, c128.modules(parts), c128.QUIET_MODULES, c128.zpl_data(parts),
                  "CODE128", c128.escpos_data(parts))


def gs1_128(elements: list[tuple[str, str]]) -> Symbol:
    """GS1-128 of (AI, value) pairs in the order given; FNC1 after each variable-length value but the last."""
    data = c128.FNC1
    for index, (ai, value) in enumerate(elements):
        data += ai + value
        if ai not in FIXED_LENGTH_AIS and index < len(elements) - 1:
            data += c128.FNC1
    parts = c128.encode(data)
    # ESC/POS has a GS1-128 type too, but few printers implement it; CODE128 with {1 is the same symbol.
    return Symbol("gs1_128", data[1:], c128.modules(parts), c128.QUIET_MODULES, c128.zpl_data(parts),
                  "CODE128", c128.escpos_data(parts))


def ean13(number: str) -> Symbol:
    """`number`: 13 digits with a valid check digit. Printers compute the check digit, so they get 12."""
    _check_gtin(number, 13)
    return Symbol("ean13", number, barcode.get("ean13", number[:12]).build()[0], 11, number[:12], "EAN13",
                  number[:12])


def upca(number: str) -> Symbol:
    """`number`: 12 digits with a valid check digit. Printers compute the check digit, so they get 11."""
    _check_gtin(number, 12)
    return Symbol("upca", number, barcode.get("upca", number[:11]).build()[0], 9, number[:11], "UPC-A",
                  number[:11])


def _check_gtin(number: str, length: int) -> None:
    if len(number) != length or not number.isdigit():
        raise ValueError(f"{number!r} is not {length} digits")
    if check_digit(number[:-1]) != int(number[-1]):
        raise ValueError(f"{number}: check digit should be {check_digit(number[:-1])}")
