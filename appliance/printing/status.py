"""Asking a ZPL printer how it is: `query(printer)` sends `~HS` and `parse_hs` reads the three-line answer.

The Host Status answer is three strings, each `<STX>fields<ETX><CR><LF>`, with comma-separated numeric fields:
- string 1 `aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`: b paper out, c paused, eee formats waiting in the receive buffer
  (h says a format is only partly received);
- string 2 `mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`: o print head up (open), p ribbon out;
- string 3 `xxxx,y`: password and RAM; not used here.
Only the fields above are read, so firmware that appends fields still parses. Some models do not answer `~HS`
at all while paper or ribbon is out or the head is open: silence is reported as StatusUnavailable, not as "ok".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from appliance.config.printers import PrinterConfig
from appliance.errors import InvalidInput
from appliance.printing.transport import SendError, connect, where

HOST_STATUS = b"~HS"
_STRING = re.compile(rb"\x02([^\x02\x03]*)\x03")


class StatusUnavailable(SendError):
    """The printer took the connection but gave no (complete) answer to ~HS in time."""


@dataclass(frozen=True)
class PrinterStatus:
    paper_out: bool
    paused: bool
    head_open: bool
    ribbon_out: bool
    labels_queued: int   # complete formats waiting in the printer's buffer (string 1, eee)
    raw: str

    @property
    def problems(self) -> list[str]:
        """What stops it printing, in words for the queue and alerts; [] when it is ready."""
        flags = (("paper out", self.paper_out), ("ribbon out", self.ribbon_out), ("head open", self.head_open),
                 ("paused", self.paused))
        return [words for words, on in flags if on]


def parse_hs(reply: bytes) -> PrinterStatus:
    """The PrinterStatus in a ~HS answer; ValueError saying what is wrong when it is not one."""
    strings = _STRING.findall(reply)
    if len(strings) < 3:
        raise ValueError(f"not a ~HS answer: expected 3 <STX>…<ETX> strings, got {len(strings)} in {reply[:80]!r}")
    first = _fields(strings[0], 1, minimum=12)
    second = _fields(strings[1], 2, minimum=11)
    return PrinterStatus(
        paper_out=_flag(first, 1, "paper out"), paused=_flag(first, 2, "pause"),
        head_open=_flag(second, 2, "head up"), ribbon_out=_flag(second, 3, "ribbon out"),
        labels_queued=int(first[4]),
        raw="\n".join(s.decode("ascii", "replace") for s in strings[:3]),
    )


def _fields(string: bytes, number: int, *, minimum: int) -> list[str]:
    fields = string.decode("ascii", "replace").split(",")
    if len(fields) < minimum or not all(f.strip().isdigit() for f in fields[:minimum]):
        raise ValueError(f"not a ~HS answer: string {number} should be {minimum} numbers separated by commas, got "
                         f"{string[:80]!r}")
    return [f.strip() for f in fields]


def _flag(fields: list[str], index: int, what: str) -> bool:
    if fields[index] not in ("0", "1"):
        raise ValueError(f"not a ~HS answer: the {what} flag is {fields[index]!r}, expected 0 or 1")
    return fields[index] == "1"


def query(printer: PrinterConfig, timeout: float | None = None) -> PrinterStatus:
    """Ask a zpl_tcp printer for its status. SendError when it cannot be reached (StatusUnavailable when it stays
    silent), ValueError when it answers something that is not a ~HS answer."""
    if printer.kind != "zpl_tcp":
        raise InvalidInput(f"{printer.name} ({printer.kind}): only zpl_tcp printers answer status queries (~HS)",
                           field="kind")
    timeout = printer.timeout_s if timeout is None else timeout
    deadline = time.monotonic() + timeout
    reply = bytearray()
    with connect(printer, timeout) as sock:
        try:
            sock.sendall(HOST_STATUS)
            while reply.count(b"\x03") < 3:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
        except TimeoutError:
            got = "an incomplete answer" if reply else "no answer"
            raise StatusUnavailable(f"{where(printer)}: {got} to ~HS within {timeout:g} s — some models stay "
                                    "silent while paper or ribbon is out or the head is open") from None
        except OSError as exc:
            raise SendError(f"{where(printer)}: the status query failed: {exc.strerror or exc}") from None
    if not reply:
        raise StatusUnavailable(f"{where(printer)}: closed the connection without answering ~HS — does it speak "
                                "ZPL on this port?")
    return parse_hs(bytes(reply))
