"""A small ZPL II reader for the tests: formats, their commands, and each field with its position and data.

It understands what the renderer emits and decodes it the way a printer would: `^FH` hex escapes (`_XX`),
`^FB` line breaks (`\\&`) and doubled backslashes, and `^BC` invocation codes (start/switch/FNC1) back to the
data a scanner would read, FNC1 separators as "\\x1d".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMMAND = re.compile(rb"([\^~])([A-Z@][A-Z0-9@])")
BARCODES = ("BC", "BE", "BU")


@dataclass
class Field:
    x: int
    y: int
    command: str                  # A0 for text, BC/BE/BU for barcodes, GB for boxes
    params: list[str]
    text: str = ""                # decoded data (text fields: lines joined with "\n")
    lines: list[str] = field(default_factory=list)
    module: int = 0               # ^BY in force (barcodes)
    block: list[str] = field(default_factory=list)   # ^FB params

    @property
    def height(self) -> int:
        return int(self.params[1]) if self.command in BARCODES or self.command == "A0" else 0


@dataclass
class Format:
    commands: list[tuple[str, str]]   # ("^PW", "406"), in order
    fields: list[Field]

    def command(self, name: str) -> str | None:
        """Parameters of the last `name` command ("^PQ"), None when absent."""
        found = [params for command, params in self.commands if command == name]
        return found[-1] if found else None

    def texts(self) -> list[Field]:
        return [f for f in self.fields if f.command == "A0"]

    def barcodes(self) -> list[Field]:
        return [f for f in self.fields if f.command in BARCODES]


def _unhex(data: bytes) -> bytes:
    return re.sub(rb"_([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def code128_data(data: str) -> str:
    """^BC "no mode" field data with invocation codes -> the data a scanner reports."""
    out, i = [], 0
    while i < len(data):
        if data[i] == ">" and i + 1 < len(data):
            code = data[i + 1]
            if code == "8":
                out.append("\x1d")
            elif code not in ":;56":
                raise ValueError(f"unexpected invocation code >{code}")
            i += 2
        else:
            out.append(data[i])
            i += 1
    text = "".join(out)
    return text[1:] if text.startswith("\x1d") else text


def read(zpl: bytes) -> list[Format]:
    formats: list[Format] = []
    current: Format | None = None
    matches = list(_COMMAND.finditer(zpl))
    state: dict = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(zpl)
        name = (match.group(1) + match.group(2)).decode()
        raw = zpl[match.end():end]
        if name == "^FD":
            state["data"] = raw
            continue
        params = raw.decode("utf-8").strip()
        if name == "^XA":
            current = Format([], [])
            state = {}
            continue
        if current is None:
            raise ValueError(f"{name} outside ^XA...^XZ")
        if name == "^XZ":
            formats.append(current)
            current = None
            continue
        current.commands.append((name, params))
        if name == "^FO":
            x, y = params.split(",")[:2]
            state.update(x=int(x), y=int(y), hex=False, block=[], kind=None, data=b"")
        elif name == "^BY":
            state["module"] = int(params.split(",")[0])
        elif name == "^FB":
            state["block"] = params.split(",")
        elif name == "^FH":
            state["hex"] = True
        elif name in ("^A0", "^BC", "^BE", "^BU", "^GB"):
            state["kind"] = (name[1:], params.split(","))
        elif name == "^FS":
            command, args = state.get("kind") or ("", [])
            data = state.get("data", b"")
            if state.get("hex"):
                data = _unhex(data)
            text = data.decode("utf-8")
            found = Field(state["x"], state["y"], command, args, module=state.get("module", 0),
                          block=state.get("block", []))
            if command == "A0":
                found.lines = [line.replace("\\\\", "\\") for line in text.split("\\&")] if found.block else [text]
                found.text = "\n".join(found.lines)
            elif command == "BC":
                found.text = code128_data(text)
            else:
                found.text = text
            current.fields.append(found)
            state.update(kind=None, data=b"", hex=False, block=[])
    if current is not None:
        raise ValueError("a format without ^XZ")
    return formats
