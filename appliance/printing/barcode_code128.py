"""Code 128 (and GS1-128) encoded by hand, so the printed symbol and the preview are the same symbol.

Printers encode Code 128 themselves, each with its own idea of when to switch code sets; the module count then
differs from what we measured and the preview shows a different symbol. So we choose the code sets (B for
text, C for digit pairs, FNC1 for GS1) and hand every printer the exact sequence: ZPL with invocation codes
(`>:` start B, `>;` start C, `>5`/`>6` switch, `>8` FNC1), ESC/POS with `{B`, `{C`, `{1`. The bar patterns
come from python-barcode's table.
"""

from __future__ import annotations

from dataclasses import dataclass

from barcode.charsets.code128 import CODES

FNC1 = "\x1d"          # stands for FNC1 inside our data strings (GS, as a scanner reports it)
START_B, START_C = 104, 105
CODE_B, CODE_C = 100, 99
FNC1_VALUE = 102
STOP_PATTERN = "1100011101011"     # the stop character with its final two-module bar
QUIET_MODULES = 10
# ZPL treats ^ ~ > specially even inside ^BC data, and \ is the ^FB escape: refusing them keeps the symbol
# what the preview shows. The appliance's own codes never contain them.
UNSAFE = frozenset("^~>\\")


@dataclass(frozen=True)
class Part:
    """One step of the encoding: a start or switch to set B/C, an FNC1, or characters in the current set."""
    kind: str          # start | switch | fnc1 | chars
    value: str = ""    # "B"/"C" for start and switch, the characters for chars


def problem(data: str) -> str | None:
    """Why `data` cannot be a Code 128 symbol here, or None."""
    if not data:
        return "is empty"
    for char in data:
        if char != FNC1 and not " " <= char <= "~":
            return f"contains {char!r}; a Code 128 label carries only printable ASCII"
        if char in UNSAFE:
            return f"contains {char!r}, which label printers treat as a command character"
    return None


def _digit_run(data: str, start: int) -> int:
    end = start
    while end < len(data) and data[end].isdigit():
        end += 1
    return end - start


def encode(data: str) -> tuple[Part, ...]:
    """Code sets for `data` (FNC1 as "\\x1d"): C for runs of 4+ digits (2+ filling the whole rest), else B."""
    if problem(data):
        raise ValueError(f"{data!r} {problem(data)}")
    parts: list[Part] = []
    current = ""
    i = 0

    def use(code_set: str) -> None:
        nonlocal current
        if code_set != current:
            parts.append(Part("start" if not current else "switch", code_set))
            current = code_set

    def chars(text: str) -> None:
        if parts and parts[-1].kind == "chars":
            parts[-1] = Part("chars", parts[-1].value + text)
        else:
            parts.append(Part("chars", text))

    while i < len(data):
        if data[i] == FNC1:
            if not current:
                use("C" if _digit_run(data, i + 1) >= 2 else "B")
            parts.append(Part("fnc1"))
            i += 1
            continue
        run = _digit_run(data, i)
        whole_rest = i + run == len(data) or data[i + run] == FNC1
        if run >= 4 or (run >= 2 and whole_rest and (current == "C" or not current)):
            if run % 2 and current == "B":
                # An odd run met in set B: its first digit stays in B, the pairs go in C.
                chars(data[i])
                i += 1
                run -= 1
            use("C")
            pairs = run - run % 2
            chars(data[i:i + pairs])
            i += pairs
            if run % 2:
                # An odd run at the start or after FNC1: pairs first, its last digit in B.
                use("B")
                chars(data[i])
                i += 1
        else:
            use("B")
            chars(data[i])
            i += 1
    return tuple(parts)


def values(parts: tuple[Part, ...]) -> list[int]:
    """Symbol values from the start character to the check character (without the stop)."""
    out: list[int] = []
    code_set = ""
    for part in parts:
        if part.kind == "start":
            code_set = part.value
            out.append(START_B if code_set == "B" else START_C)
        elif part.kind == "switch":
            code_set = part.value
            out.append(CODE_B if code_set == "B" else CODE_C)
        elif part.kind == "fnc1":
            out.append(FNC1_VALUE)
        elif code_set == "C":
            out.extend(int(part.value[j:j + 2]) for j in range(0, len(part.value), 2))
        else:
            out.extend(ord(char) - 32 for char in part.value)
    check = (out[0] + sum(position * value for position, value in enumerate(out[1:], start=1))) % 103
    return out + [check]


def modules(parts: tuple[Part, ...]) -> str:
    """The symbol as one character per module, '1' bar and '0' space, quiet zones not included."""
    return "".join(CODES[value] for value in values(parts)) + STOP_PATTERN


def zpl_data(parts: tuple[Part, ...]) -> str:
    """`^BC` field data in "no mode" with explicit invocation codes (ZPL II ^BC subset table)."""
    words = {("start", "B"): ">:", ("start", "C"): ">;", ("switch", "B"): ">6", ("switch", "C"): ">5"}
    return "".join(">8" if part.kind == "fnc1" else words.get((part.kind, part.value), part.value)
                   for part in parts)


def escpos_data(parts: tuple[Part, ...]) -> str:
    """`GS k` function B data for CODE128: `{B`/`{C` select, `{1` FNC1, set C digits as one byte per pair."""
    out = []
    code_set = ""
    for part in parts:
        if part.kind in ("start", "switch"):
            code_set = part.value
            out.append("{" + part.value)
        elif part.kind == "fnc1":
            out.append("{1")
        elif code_set == "C":
            out.append("".join(chr(int(part.value[j:j + 2])) for j in range(0, len(part.value), 2)))
        else:
            out.append(part.value.replace("{", "{{"))
    return "".join(out)
