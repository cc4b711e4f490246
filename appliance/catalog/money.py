"""Amounts of money as integer minor units, read from what spreadsheets in Germany, Poland and the UK write.

`parse_amount` accepts a decimal comma or point, with optional thousands grouping by `.`, `,`, a space or a
(narrow) no-break space; `format_amount` always writes a plain point decimal, so exports read back everywhere.
Floats never take part: "0,10" becomes 10 exactly.
"""

from __future__ import annotations

import re

# Polish and French spreadsheets group thousands with a no-break or narrow no-break space.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})
_SHAPE = re.compile(r"[0-9](?:[0-9., ]*[0-9])?")
NOT_A_NUMBER = "not a number (write e.g. 12.50 or 12,50)"


def parse_amount(text: str, digits: int = 2) -> int:
    """`text` in major units ("1.234,50", "1,234.50", "12,5", "-3") as an int of minor units (123450 for 2 digits).

    Raises ValueError with a reason for anything else, including more decimal places than `digits` and a lone
    separator followed by exactly three digits ("1.234", "1,234"), which is a decimal in one country and a
    thousands separator in another (with `digits` >= 3 it is read as a decimal, as those currencies write it).
    """
    body = text.strip().translate(_SPACES)
    negative = body.startswith("-")
    if negative:
        body = body[1:]
    if not _SHAPE.fullmatch(body):
        raise ValueError(NOT_A_NUMBER)
    separators = [c for c in body if not c.isdigit()]
    decimal = _decimal_separator(body, separators, digits)
    whole, _, fraction = body.rpartition(decimal) if decimal else (body, "", "")
    whole = _ungroup(whole)
    if len(fraction) > digits:
        raise ValueError(f"too many decimal places: {digits} at most" if digits else
                         "whole amounts only: this currency has no decimal places")
    value = int(whole) * 10 ** digits + int(fraction.ljust(digits, "0") or "0")
    return -value if negative else value


def format_amount(minor: int, digits: int = 2) -> str:
    """Minor units as major units with a point decimal: 123450 -> "1234.50" (digits=2), 5 -> "5" (digits=0)."""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10 ** digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def _decimal_separator(body: str, separators: list[str], digits: int) -> str | None:
    """The decimal separator of `body`, or None when every separator in it groups thousands."""
    if not separators:
        return None
    last = separators[-1]
    if last == " " or separators.count(last) > 1:
        return None
    if len(set(separators)) > 1:
        return last
    whole, fraction = body.split(last)
    if len(fraction) == 3 and len(whole) <= 3 and not whole.startswith("0") and digits < 3:
        raise ValueError(f"ambiguous: could be {whole}{fraction} or {whole}.{fraction}; "
                         f"write {whole}{fraction} without a thousands separator")
    return last


def _ungroup(whole: str) -> str:
    """`whole` without its thousands separators, which must be a single kind and split off groups of three."""
    marks = {c for c in whole if not c.isdigit()}
    if not marks:
        return whole
    if len(marks) > 1:
        raise ValueError(NOT_A_NUMBER)
    groups = whole.split(marks.pop())
    if len(groups[0]) > 3 or any(len(group) != 3 for group in groups[1:]):
        raise ValueError("misplaced thousands separator")
    return "".join(groups)
