"""What a scan means: GS1 data, a GTIN, one of the appliance's own codes, or free text (DESIGN.md §4).

`interpret()` is pure and total: any string in, an `Interpretation` out. Problems come back in `errors`
(naming the field, the value and why), never as exceptions, because every scan at the dock must end in
something the person sees and hears, and an unknown barcode must still reach the scan log.

Without an AIM symbology identifier the symbology has to be inferred from the data alone. Where the data
allows two readings, the rules below take the likelier one and say so in `warnings` rather than guess silently;
damage from a mismatched keyboard layout is undone only where exactly one reading is left.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

from appliance.scanning import gs1
from appliance.scanning.scan import GS, visible

logger = logging.getLogger(__name__)

KINDS = ("gs1", "gtin", "location", "document", "badge", "command", "quantity", "text", "invalid")
COMMANDS = ("RECEIVE", "SHIP", "MOVE", "COUNT", "PICK", "TRANSFER", "LOOKUP", "PRINT", "DONE", "CANCEL", "UNDO")
DOCUMENT_TYPES = {"PO": "purchase_order", "TR": "transfer", "CT": "count"}
MAX_QUANTITY = 99999

# AIM symbology identifiers (ISO/IEC 15424): "]", a symbology letter, a modifier character.
_AIM = re.compile(r"\]([A-Za-z])([0-9A-Za-z])")
_AIM_FAMILIES = {"A": "Code 39", "C": "Code 128", "d": "Data Matrix", "Q": "QR Code", "E": "EAN/UPC", "I": "ITF",
                 "e": "GS1 DataBar", "F": "Codabar", "G": "Code 93", "L": "PDF417", "z": "Aztec", "J": "DotCode"}
# Modifiers that announce FNC1 in first position: the data is a GS1 element string.
_AIM_GS1 = {"C1": "GS1-128", "d2": "GS1 DataMatrix", "d5": "GS1 DataMatrix", "Q3": "GS1 QR Code",
            "Q5": "GS1 QR Code", "e0": "GS1 DataBar", "J1": "GS1 DotCode"}
_TRIM = " \t\r\n\v\f"   # not str.strip(): Python counts GS (0x1D) as whitespace and would eat a trailing separator

# GS1 measures by AI prefix (the 4th digit is the number of decimals).
_MEASURES = {"310": "net_weight_kg", "311": "length_m", "312": "width_m", "313": "depth_m", "314": "area_m2",
             "315": "net_volume_l", "316": "net_volume_m3", "320": "net_weight_lb", "330": "gross_weight_kg",
             "390": "amount", "391": "amount", "392": "price", "393": "price"}

# The appliance's own codes use upper-case letters, digits, "-" and "." only: they survive every keyboard layout.
# CMD-, QTY- and USR- are reserved, so no site may be called CMD, QTY or USR.
_OWN = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,39}")
_LOCATION = re.compile(r"[A-Z][A-Z0-9]{1,7}-[A-Z0-9.-]+")
# Six or more digits keep a document apart from a location in an aisle called PO, TR or CT (BER-PO-01).
_DOCUMENT = re.compile(r"([A-Z][A-Z0-9]{1,7})-(PO|TR|CT)-([0-9]{6,12})")
_LOGIN = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,35}")


@dataclass(frozen=True)
class Interpretation:
    """One scan, interpreted. Besides raw, symbology and text, only the fields that belong to `kind` are set;
    a partial GS1 result keeps the fields that checked out. Usable when `ok`: a kind other than invalid, no errors."""
    kind: str
    raw: str                            # the whole input, control characters shown as <GS>, <CR> ...
    symbology: str | None = None        # from the AIM identifier, or inferred from the data
    text: str | None = None             # the data without AIM identifier and surrounding whitespace
    gtin: str | None = None             # always 14 digits, check digit verified
    lot: str | None = None
    expiry: str | None = None           # ISO dates
    best_before: str | None = None
    production_date: str | None = None
    serial: str | None = None
    quantity: int | None = None         # GS1 AI 37 (else 30), or a QTY- code
    sscc: str | None = None
    measures: dict[str, Any] = field(default_factory=dict)  # e.g. {"net_weight_kg": Decimal("1.250")}
    location: str | None = None
    document_type: str | None = None    # purchase_order, transfer, count
    document: str | None = None
    command: str | None = None          # lower case: receive, ship, ..., undo
    login: str | None = None            # lower case, as badges carry it upper case
    ais: dict[str, str] = field(default_factory=dict)     # every GS1 AI read -> its raw value
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind != "invalid" and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: decimals as strings (exact), tuples as lists."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "measures":
                value = {key: str(amount) for key, amount in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[item.name] = value
        return out


def interpret(raw: str, *, gs_substitutes: Iterable[str] = ("<GS>",), today: date | None = None) -> Interpretation:
    """Interpret one scan. `gs_substitutes`: what the scanner sends instead of GS (0x1D); `today` anchors the
    century of two-digit years (GS1: 49 years back to 50 ahead)."""
    substitutes = (gs_substitutes,) if isinstance(gs_substitutes, str) else tuple(gs_substitutes)
    try:
        return _interpret(raw, substitutes, today or date.today())
    except Exception as exc:  # a bug here must not cost the scan: the caller still logs it and answers the user
        logger.exception("interpreting scan %r failed", raw)
        return Interpretation(kind="invalid", raw=visible(str(raw)),
                              errors=(f"internal error while interpreting this barcode: {exc!r}",))


def _interpret(raw: str, substitutes: tuple[str, ...], today: date) -> Interpretation:
    data = raw.strip(_TRIM)
    aim = None
    match = _AIM.match(data)
    if match:
        aim, data = match.group(1) + match.group(2), data[3:].strip(_TRIM)
    base: dict[str, Any] = {"raw": visible(raw), "symbology": _symbology(aim), "text": data}
    if not data:
        return Interpretation(kind="invalid", errors=("empty scan: no data after the symbology identifier"
                                                      if aim else "empty scan",), **base)
    if aim in _AIM_GS1 or (aim is None and _looks_gs1(data, substitutes)):
        return _from_gs1(data, substitutes, today, base)
    if data.isascii() and data.isdigit() and (aim is None or aim[0] in "EI"):
        found = _from_digits(data, aim, base)
        if found:
            return found
    if aim and aim[0] == "E":
        return Interpretation(kind="invalid", errors=(f"{base['symbology']} {data}: EAN/UPC carries digits only",),
                              **base)
    return _own_code(data, base) or _repaired(data, base) or Interpretation(kind="text", **base)


def _symbology(aim: str | None) -> str | None:
    if aim is None:
        return None
    if aim in _AIM_GS1:
        return _AIM_GS1[aim]
    if aim == "E4":
        return "EAN-8"
    return _AIM_FAMILIES.get(aim[0], f"]{aim}")


def _looks_gs1(data: str, substitutes: tuple[str, ...]) -> bool:
    """GS1 data from a scanner that sends no AIM identifier.

    Evidence: a leading GS (FNC1 in first position), the bracketed HRI form, a separator after leading digits,
    or an SSCC/GTIN AI followed by its full 18/14 digits and more. A bare 14-digit GTIN is not GS1 data.
    """
    if data.startswith(GS) or gs1.looks_like_hri(data):
        return True
    if not (data[:2].isascii() and data[:2].isdigit()):
        return False
    if GS in data or any(substitute and substitute in data for substitute in substitutes):
        return True
    digits = {"00": 18, "01": 14, "02": 14}.get(data[:2])
    key = data[2:2 + digits] if digits else ""
    return bool(digits) and len(key) == digits and key.isascii() and key.isdigit()


def _from_gs1(data: str, substitutes: tuple[str, ...], today: date, base: dict[str, Any]) -> Interpretation:
    body = gs1.normalise(data, substitutes).lstrip(GS)
    if gs1.looks_like_hri(body):
        message = gs1.parse_hri(body, today=today)
    else:
        message = gs1.parse(body, today=today)
    values: dict[str, Any] = {}
    ais: dict[str, str] = {}
    measures: dict[str, Any] = {}
    for element in message.elements:
        ais.setdefault(element.ai, element.raw)
        if element.value is None:
            continue
        values.setdefault(element.ai, element.value)
        key = _MEASURES.get(element.ai[:3])
        if key and len(element.ai) == 4 and key not in measures:
            measures[key] = element.value
            if element.ai[:3] in ("391", "393"):
                measures["currency"] = element.raw[:3]    # ISO 4217 numeric, e.g. 978 = EUR
    iso = {ai: value.isoformat() for ai, value in values.items() if isinstance(value, date)}
    return Interpretation(
        kind="gs1" if values else "invalid", **{**base, "text": body},
        gtin=values.get("01") or values.get("02"), lot=values.get("10"), expiry=iso.get("17"),
        best_before=iso.get("15"), production_date=iso.get("11"), serial=values.get("21"),
        quantity=values.get("37", values.get("30")), sscc=values.get("00"), measures=measures, ais=ais,
        errors=message.errors, warnings=message.warnings)


def _from_digits(data: str, aim: str | None, base: dict[str, Any]) -> Interpretation | None:
    """EAN-8/13, UPC-A/E and ITF-14 as GTIN-14; None when the digits are not meant as a GTIN (other lengths)."""
    warnings: list[str] = []
    if aim == "E3" and len(data) in (14, 15, 17, 18):   # EAN/UPC with a 2- or 5-digit add-on
        addon = data[-2:] if len(data) in (14, 15) else data[-5:]
        data = data[:-len(addon)]
        warnings.append(f"add-on {addon} ignored")
    if aim in ("E0", "E3"):
        forms = {13: ["EAN-13"], 12: ["UPC-A"], 8: ["UPC-E"]}.get(len(data), [])
    elif aim == "E4":
        forms = ["EAN-8"] if len(data) == 8 else []
    elif aim and aim[0] == "I":
        forms = ["ITF-14"] if len(data) == 14 else []
    else:
        forms = {8: ["EAN-8", "UPC-E"], 12: ["UPC-A"], 13: ["EAN-13"], 14: ["ITF-14"]}.get(len(data), [])
    if not forms:
        if aim and aim[0] == "E":
            return Interpretation(kind="invalid", errors=(
                f"{base['symbology']} {data}: {len(data)} digits, a GTIN has 8, 12 or 13 here",), **base)
        return None
    readings = {form: _gtin(form, data) for form in forms}
    good = [form for form, (gtin, _) in readings.items() if gtin]
    if not good:
        return Interpretation(kind="invalid", errors=tuple(f"{form} {data}: {problem}"
                                                           for form, (_, problem) in readings.items()), **base)
    form = good[0]
    if len(good) > 1:
        # EAN-8 and UPC-E both check out and only an AIM identifier could tell. UPC-E always starts with 0 or 1;
        # an EAN-8 starting with 0 is a restricted-circulation number, so 0 leans UPC-E and 1 (US EAN-8) EAN-8.
        form = "UPC-E" if data[0] == "0" else "EAN-8"
        warnings.append(f"{data} reads as EAN-8 (GTIN {readings['EAN-8'][0]}) and as UPC-E (GTIN "
                        f"{readings['UPC-E'][0]}); taken as {form}. Turn on AIM symbology identifiers in the "
                        "scanner to settle it")
    gtin = readings[form][0]
    if gtin[1] == "2" or gtin[1:3] in ("02", "04"):
        warnings.append(f"GTIN {gtin} is a restricted circulation number: its meaning (often a weight or price) "
                        "is set by the retailer or country, not globally")
    if form == "EAN-13" and data.startswith("0"):
        form = "UPC-A"      # a UPC-A sent in its 13-digit EAN form
    return Interpretation(kind="gtin", gtin=gtin, warnings=tuple(warnings), **{**base, "symbology": form})


def _gtin(form: str, digits: str) -> tuple[str | None, str | None]:
    """(GTIN-14, None) or (None, the problem)."""
    if form == "UPC-E":
        if digits[0] not in "01":
            return None, "UPC-E starts with number system 0 or 1"
        digits = upc_e_to_upc_a(digits)
    problem = gs1.check_digit_problem(digits)
    return (None, problem) if problem else (digits.zfill(14), None)


def upc_e_to_upc_a(upc_e: str) -> str:
    """Expand an 8-digit UPC-E (number system, 6 digits, check digit) to its 12-digit UPC-A."""
    system, d, check = upc_e[0], upc_e[1:7], upc_e[7]
    last = d[5]
    if last in "012":
        middle = d[:2] + last + "0000" + d[2:5]
    elif last == "3":
        middle = d[:3] + "00000" + d[3:5]
    elif last == "4":
        middle = d[:4] + "00000" + d[4]
    else:
        middle = d[:5] + "0000" + last
    return system + middle + check


def _own_code(data: str, base: dict[str, Any]) -> Interpretation | None:
    """Commands, quantity codes, badges, documents and locations; None for anything else."""
    if data.startswith("CMD-"):
        if data[4:] in COMMANDS:
            return Interpretation(kind="command", command=data[4:].lower(), **base)
        known = ", ".join(f"CMD-{name}" for name in COMMANDS)
        return Interpretation(kind="invalid", errors=(f"command {data}: unknown (known: {known})",), **base)
    if data.startswith("QTY-"):
        number = data[4:]
        if len(number) <= len(str(MAX_QUANTITY)) and number.isascii() and number.isdigit() and int(number) >= 1:
            return Interpretation(kind="quantity", quantity=int(number), **base)
        return Interpretation(kind="invalid", errors=(
            f"quantity code {data}: {number or 'nothing'} is not a whole number from 1 to {MAX_QUANTITY}",), **base)
    if data.startswith("USR-"):
        if _LOGIN.fullmatch(data[4:]):
            return Interpretation(kind="badge", login=data[4:].lower(), **base)
        return Interpretation(kind="invalid", errors=(
            f"badge {data}: the login must be upper-case letters, digits, '.' or '-'",), **base)
    if not _OWN.fullmatch(data):
        return None
    match = _DOCUMENT.fullmatch(data)
    if match:
        return Interpretation(kind="document", document_type=DOCUMENT_TYPES[match.group(2)], document=data, **base)
    if _LOCATION.fullmatch(data):
        return Interpretation(kind="location", location=data, **base)
    return None


# Damage a mismatched keyboard layout does to own codes: (sign it happened, undo, cause, may a location be
# rebuilt). The sign is a character no intact own code contains. "ß" never appears in a barcode, so a code
# carrying it may be rebuilt whatever it becomes; "/" and lower case do appear in suppliers' free text, so
# those are undone only into the reserved prefixes (CMD-, QTY-, USR-) and document numbers.
_DAMAGE = (
    (lambda text: "ß" in text, str.maketrans("ßYZyz", "-ZYzy"),
     "the scanner typed a US layout that was decoded as German (QWERTZ)", True),
    (lambda text: "/" in text, str.maketrans("/YZyz", "-ZYzy"),
     "the scanner typed a German (QWERTZ) layout that was decoded as US", False),
    (lambda text: text != text.upper() and text == text.lower(), str.maketrans(
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "caps lock was on", False),
)


def _repaired(data: str, base: dict[str, Any]) -> Interpretation | None:
    """An own code rebuilt from layout damage when exactly one undo yields one; else free text with a hint."""
    rebuilt: dict[str, tuple[str, Interpretation]] = {}
    hints = []
    for damaged, undo, cause, locations_too in _DAMAGE:
        if not damaged(data):
            continue
        fixed = data.translate(undo)
        found = _own_code(fixed, {**base, "text": fixed})
        if found is None or found.kind == "invalid":
            continue
        if found.kind == "location" and not locations_too:
            hints.append(f"would be location {fixed} if {cause}; not rebuilt, as free text can look like this")
        else:
            rebuilt.setdefault(fixed, (cause, found))
    if len(rebuilt) == 1:
        fixed, (cause, found) = next(iter(rebuilt.items()))
        return replace(found, warnings=found.warnings + (
            f"read as {fixed} from {data}, as if {cause}: check the scanner's keyboard layout",))
    if len(rebuilt) > 1:
        hints.append(f"could be {' or '.join(sorted(rebuilt))} after keyboard-layout damage; not guessed")
    return Interpretation(kind="text", warnings=tuple(hints), **base) if hints else None
