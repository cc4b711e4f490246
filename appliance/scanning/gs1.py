"""GS1 element strings (GS1-128, GS1 DataMatrix, GS1 QR, DataBar) turned into checked values.

biip supplies the catalogue of Application Identifiers: every AI GS1 has defined, its format and whether a
separator must follow it. GS1 adds AIs every year and real case labels carry many beyond the dozen we use
(240, 400, 422, 7003, 8008, 90-99 ...); without the catalogue any one of them would stop the parse. The loop
that walks the message is ours, because biip stops at the first problem (we want every problem and the
fields that were fine), silently reads a lot whose separator was dropped as `ABC17261231`, and takes the
century of a YYMMDD date from the wall clock rather than from a reference date a test can fix.

Nothing here raises on bad data: problems come back as human messages naming the AI, the value and why.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from biip import ParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier

from appliance.scanning.scan import GS

# Words used in messages; any other AI is named by its GS1 data title.
NAMES = {
    "00": "SSCC", "01": "GTIN", "02": "contained GTIN", "03": "GTIN", "10": "lot", "11": "production date",
    "12": "due date", "13": "packaging date", "15": "best before", "16": "sell by", "17": "expiry",
    "21": "serial", "30": "count", "37": "count",
}
DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})
# AIs whose last digit is a check digit over the whole value.
CHECKED_AIS = {"00": "SSCC", "01": "GTIN", "02": "GTIN", "03": "GTIN",
               **{f"41{n}": "GLN" for n in "01234567"}}
# 31nn-36nn are measures, 390n/392n amounts, 391n/393n amounts after an ISO 4217 currency code.
DECIMAL_PREFIXES = ("31", "32", "33", "34", "35", "36", "390", "391", "392", "393", "394")
_CSET82 = re.compile(r"[!\"%-?A-Z_a-z]")
_HRI_AI = re.compile(r"\((\d{2,4})\)")


@dataclass(frozen=True)
class Ai:
    """What the catalogue says about one AI, in the shape the parser needs."""
    ai: str
    name: str
    pattern: re.Pattern[str]
    separator_required: bool    # False only for GS1's predefined-length AIs (00-03, 11-17, 20, 31-36, 41)
    length: int | None          # the fixed length of the value, None when variable
    max_length: int
    numeric: bool
    format: str


@dataclass(frozen=True)
class Element:
    """One AI and its value as read; `value` is typed and checked, `raw` is kept for the scan log."""
    ai: str
    name: str
    raw: str
    value: object = None        # date, Decimal, int or str; None when the raw value is wrong


@dataclass(frozen=True)
class Message:
    """Every element read, including the wrong ones (value None), and every problem found, in data order."""
    elements: tuple[Element, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def get(self, ai: str) -> Element | None:
        return next((element for element in self.elements if element.ai == ai), None)


@lru_cache(maxsize=4096)
def ai_info(prefix: str) -> Ai | None:
    """The AI that `prefix` (the next up to 4 characters of a message) starts with, or None."""
    try:
        entry = GS1ApplicationIdentifier.extract(prefix)
    except ParseError:
        return None
    parts = entry.format.split("+")[1:]
    sizes = [int(n) for n in re.findall(r"\d+", "+".join(parts))]
    fixed = len(parts) == 1 and ".." not in parts[0] and "[" not in parts[0]
    return Ai(ai=entry.ai, name=NAMES.get(entry.ai, entry.data_title.lower()),
              pattern=re.compile(entry.pattern, re.ASCII),  # \d must not accept Arabic-Indic digits
              separator_required=entry.separator_required, length=sizes[0] if fixed else None,
              max_length=sum(sizes), numeric=all(part.lstrip("[").startswith("N") for part in parts),
              format=entry.format)


def check_digit(payload: str) -> int:
    """GS1 mod-10 check digit of `payload` (the number without its check digit): weights 3,1,3... from the right."""
    total = 3 * sum(map(int, payload[::-2])) + sum(map(int, payload[-2::-2]))
    return -total % 10


def check_digit_problem(number: str) -> str | None:
    """'check digit should be N' when the last digit of `number` is wrong, else None."""
    expected = check_digit(number[:-1])
    return None if int(number[-1]) == expected else f"check digit should be {expected}"


def century_year(yy: int, today: date) -> int:
    """GS1 General Specifications 7.12: a two-digit year lies from 49 years before `today` to 50 years after."""
    century = today.year - today.year % 100
    difference = yy - today.year % 100
    if 51 <= difference <= 99:
        century -= 100
    elif -99 <= difference <= -50:
        century += 100
    return century + yy


def parse_date(yymmdd: str, today: date) -> date:
    """A GS1 YYMMDD date; day 00 means the last day of the month. Raises ValueError with the reason."""
    if len(yymmdd) != 6 or not (yymmdd.isascii() and yymmdd.isdigit()):
        raise ValueError("a date needs 6 digits YYMMDD")
    yy, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    if not 1 <= month <= 12:
        raise ValueError(f"month {month:02d} does not exist")
    year = century_year(yy, today)
    last = calendar.monthrange(year, month)[1]
    if day > last:
        raise ValueError(f"day {day:02d} does not exist in {year}-{month:02d}")
    return date(year, month, day or last)


def normalise(data: str, substitutes: Iterable[str] = ()) -> str:
    """Replace each configured stand-in for the group separator (e.g. `<GS>`, `~`) with GS (0x1D)."""
    for substitute in substitutes:
        if substitute:
            data = data.replace(substitute, GS)
    return data


def looks_like_hri(text: str) -> bool:
    """`(01)09501101530003(17)...`: the human-readable form printed under the bars, typed in by people."""
    return _HRI_AI.match(text) is not None


def parse(data: str, *, today: date, substitutes: Iterable[str] = ()) -> Message:
    """Parse an element string as a scanner sends it (AIM identifier already stripped)."""
    return _walk(normalise(data, substitutes), today, spot_dropped_separators=True)


def parse_hri(text: str, *, today: date) -> Message:
    """Parse the bracketed form. The brackets mark every boundary, so no separator can be missing."""
    text = "".join(text.split())
    marks = list(_HRI_AI.finditer(text))
    errors = []
    if not marks or marks[0].start() != 0:
        return Message(errors=(f"{_show(text)} is not in the (AI)value form",))
    pieces = []
    for mark, following in zip(marks, marks[1:] + [None]):
        ai, value = mark.group(1), text[mark.end():following.start() if following else len(text)]
        info = ai_info(ai)
        if info is None or info.ai != ai:
            errors.append(f"({ai}) is not a GS1 Application Identifier; {_show(value)} not interpreted")
            continue
        pieces.append(ai + value + (GS if info.separator_required else ""))
    message = _walk("".join(pieces), today, spot_dropped_separators=False)
    return Message(message.elements, tuple(errors) + message.errors, message.warnings)


def _walk(text: str, today: date, *, spot_dropped_separators: bool) -> Message:
    elements: list[Element] = []
    problems: list[str | None] = []         # one per element, so a later finding can replace it
    starts: list[int] = []
    errors: list[tuple[int, str]] = []      # (position, message): reported in the order of the data
    tails: dict[int, list[Element]] = {}    # element index -> the elements its value seems to have swallowed
    pos = 0
    while pos < len(text):
        if text[pos] == GS:     # also accepted after fixed-length AIs (GenSpecs 7.8.6), and doubled
            pos += 1
            continue
        info = ai_info(text[pos:pos + 4])
        if info is None:
            end = _next_separator(text, pos)
            rest = "; skipped up to the next separator" if end < len(text) else ""
            errors.append((pos, f"unknown AI: {_show(text[pos:end])} at position {pos + 1} does not start with "
                                f"a GS1 Application Identifier{rest}"))
            pos = end
            continue
        start = pos + len(info.ai)
        end = _next_separator(text, start)
        if not info.separator_required:
            end = min(end, start + (info.length or 0))
        raw = text[start:end]
        pos = end
        if info.length and not info.separator_required and len(raw) < info.length:
            value, problem = None, f"{len(raw)} characters, {info.length} required (truncated?)"
        else:
            value, problem = _check(info, raw, today)
        if info.separator_required and spot_dropped_separators:
            tail = _swallowed(raw, today)
            if tail:
                tails[len(elements)] = tail
        elements.append(Element(info.ai, info.name, raw, value))
        problems.append(problem)
        starts.append(start)
    present = {element.ai for element in elements}
    for index, tail in tails.items():
        # A tail AI that the message also carries on its own is part of the value, not a lost separator.
        if present.isdisjoint(element.ai for element in tail):
            element = elements[index]
            elements[index] = Element(element.ai, element.name, element.raw)
            read = ", ".join(f"AI {part.ai} {part.name} {_plain(part.value)}" for part in tail)
            problems[index] = (f"ends with {''.join(part.ai + part.raw for part in tail)}, which reads as {read}: "
                               "the separator (GS) after this variable-length field is probably missing")
    errors += [(start, f"AI {element.ai} {element.name}{' ' + _show(element.raw) if element.raw else ''}: {problem}")
               for element, problem, start in zip(elements, problems, starts) if problem]
    found = [message for _, message in sorted(errors)] + _duplicates(elements)
    if not elements and not found:
        found.append("no GS1 data: the element string is empty")
    return Message(tuple(elements), tuple(found), tuple(_warnings(elements)))


def _check(info: Ai, raw: str, today: date) -> tuple[object, str | None]:
    """The typed value of one element, or None and the reason it is wrong."""
    if not raw:
        return None, "empty"
    if info.ai in DATE_AIS:
        try:
            return parse_date(raw, today), None
        except ValueError as exc:
            return None, str(exc)
    if not info.pattern.fullmatch(info.ai + raw):
        return None, _why_not(info, raw)
    if info.ai in CHECKED_AIS:
        problem = check_digit_problem(raw)
        return (None, problem) if problem else (raw, None)
    if info.ai in ("30", "37"):
        return int(raw), None
    if info.ai.startswith(DECIMAL_PREFIXES) and len(info.ai) == 4:
        digits = raw[3:] if info.ai[:3] in ("391", "393") else raw
        decimals = int(info.ai[3])
        return Decimal(digits).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals)), None
    return raw, None


def _why_not(info: Ai, raw: str) -> str:
    if not raw:
        return "empty"
    if len(raw) > info.max_length:
        return (f"{len(raw)} characters, at most {info.max_length} allowed: the separator (GS) after it is "
                "probably missing")
    if info.numeric and not (raw.isascii() and raw.isdigit()):
        return "must be digits only"
    bad = next((char for char in raw if not _CSET82.fullmatch(char)), None)
    if bad is not None:
        return f"character {bad!r} is not allowed in GS1 data"
    if info.length and len(raw) != info.length:
        return f"{len(raw)} characters, {info.length} required"
    return f"does not match the GS1 format {info.format}"


def _swallowed(raw: str, today: date) -> list[Element] | None:
    """The complete element strings a variable-length value seems to end with, if any.

    GS1 needs a separator after a variable-length field that is not last. Scanners and keyboard wedges drop
    it (GS has no key on most layouts), and then `10ABC` + `17261231` arrives as one lot `ABC17261231`.
    Only a tail made of fixed-length elements that all check out (a real date, a correct check digit),
    optionally ending in one variable-length element, counts: anything looser would flag ordinary lots.
    """
    for cut in range(1, len(raw) - 7):
        tail = _fixed_chain(raw[cut:], today)
        if tail:
            return tail
    return None


def _fixed_chain(text: str, today: date) -> list[Element] | None:
    chain: list[Element] = []
    pos = 0
    while pos < len(text):
        info = ai_info(text[pos:pos + 4])
        if info is None or (info.separator_required and not chain):
            return None
        start = pos + len(info.ai)
        end = len(text) if info.separator_required else start + (info.length or 0)
        raw = text[start:end]
        value, problem = _check(info, raw, today)
        if problem or (info.length and len(raw) != info.length):
            return None
        chain.append(Element(info.ai, info.name, raw, value))
        pos = end
    return chain or None


def _duplicates(elements: list[Element]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for element in elements:
        if element.ai in seen and seen[element.ai] != element.raw:
            problems.append(f"AI {element.ai} {element.name} appears twice with different values "
                            f"{_show(seen[element.ai])} and {_show(element.raw)}")
        seen.setdefault(element.ai, element.raw)
    return problems


def _warnings(elements: list[Element]) -> list[str]:
    ais = {element.ai for element in elements}
    warnings = []
    if "02" in ais and "37" not in ais:
        warnings.append("AI 02 (GTIN of the contained items) without AI 37 (their count): quantity unknown")
    if "01" in ais and "02" in ais:
        warnings.append("AI 01 and AI 02 together: GS1 allows only one of them in a message")
    return warnings


def _next_separator(text: str, start: int) -> int:
    found = text.find(GS, start)
    return len(text) if found < 0 else found


def _show(value: str) -> str:
    """Values as they are in messages; quoted when blank or spaced so the reader sees where they end."""
    return value if value and not any(char.isspace() for char in value) else repr(value)


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
