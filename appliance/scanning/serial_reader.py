"""Serial barcode guns (pyserial): bytes in, `Scan`s out, surviving unplug and replug (DESIGN.md §4).

The port may be a stable `/dev/serial/by-id/...` link: it is opened by that name on every reconnect, so a
gun that comes back as ttyUSB1 instead of ttyUSB0 is found again. A terminator splits scans (CR, LF, CRLF or
any one byte); a configured prefix and suffix (some guns add STX/ETX or a code-ID letter) are stripped.
Bytes are decoded as Latin-1 so that no byte is ever lost to a decoding error; interpretation decides what
they mean.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import serial

from appliance.scanning.scan import Scan, visible

logger = logging.getLogger(__name__)

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "TAB": b"\t", "ETX": b"\x03"}
MAX_SCAN_BYTES = 4096   # a runaway stream without terminators must not grow without bound


def terminator_bytes(name: str) -> bytes:
    """CR, LF, CRLF, TAB, ETX, or one byte written 0xNN."""
    upper = name.upper()
    if upper in TERMINATORS:
        return TERMINATORS[upper]
    if upper.startswith("0X") and len(upper) == 4:
        try:
            return bytes([int(upper[2:], 16)])
        except ValueError:
            pass
    raise ValueError(f"terminator {name!r} is not one of {', '.join(TERMINATORS)} or a byte written 0xNN")


class SerialReader:
    def __init__(self, port: str, station: str, on_scan: Callable[[Scan], None], *, baud: int = 9600,
                 parity: str = "N", terminator: str = "CR", strip_prefix: str = "", strip_suffix: str = "",
                 reconnect_s: float = 1.0) -> None:
        if parity.upper() not in ("N", "E", "O", "M", "S"):
            raise ValueError(f"parity {parity!r} is not one of N, E, O, M, S")
        self.port = port
        self.station = station
        self.on_scan = on_scan
        self.baud = baud
        self.parity = parity.upper()
        self.terminator = terminator_bytes(terminator)
        self.prefix = strip_prefix.encode("latin-1")
        self.suffix = strip_suffix.encode("latin-1")
        self.reconnect_s = reconnect_s
        self.device = f"serial:{port}"
        self.connected = threading.Event()
        self.reconnects = 0
        self._buffer = b""
        # The open port, for reply() from the scan worker thread while this reader's thread reads it.
        self._link: serial.Serial | None = None
        self._write_lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Read until `stop` is set; a missing or vanished port is retried every `reconnect_s`."""
        announced = False
        while not stop.is_set():
            try:
                # write_timeout: a reply to a gun that holds flow control must not stall the scan worker.
                link = serial.Serial(self.port, self.baud, parity=self.parity, timeout=0.1, write_timeout=1.0)
            except (serial.SerialException, OSError) as exc:
                if not announced:
                    logger.warning("scanner %s at %s not available (%s); retrying every %.0fs",
                                   self.station, self.port, exc, self.reconnect_s)
                    announced = True
                stop.wait(self.reconnect_s)
                continue
            announced = False
            logger.info("scanner %s connected at %s", self.station, self.port)
            with self._write_lock:
                self._link = link
            self.connected.set()
            try:
                self._read(link, stop)
            except (serial.SerialException, OSError) as exc:
                # Unplugged: a half-read scan is worthless (the gun will not resend it), say so.
                if self._buffer:
                    logger.warning("scanner %s unplugged mid-scan; discarded %s", self.station,
                                   visible(self._buffer.decode("latin-1")))
                logger.warning("scanner %s at %s lost: %s", self.station, self.port, exc)
                self._buffer = b""
                self.reconnects += 1
            finally:
                self.connected.clear()
                with self._write_lock:
                    self._link = None
                link.close()
            stop.wait(self.reconnect_s)

    def reply(self, data: bytes) -> bool:
        """Write `data` to the gun (a beep or LED command after a scan's feedback); thread-safe. False when the
        gun is not connected or the write failed: a missed beep is logged, never an error for the scan."""
        if not data:
            return False
        with self._write_lock:
            link = self._link
            if link is None:
                logger.info("scanner %s not connected; reply %s not sent", self.station, data.hex(" "))
                return False
            try:
                link.write(data)   # no flush(): tcdrain would wait for the bytes to leave the UART
            except (serial.SerialException, OSError) as exc:
                logger.warning("scanner %s: cannot send reply %s: %s", self.station, data.hex(" "), exc)
                return False
        return True

    def _read(self, link: serial.Serial, stop: threading.Event) -> None:
        while not stop.is_set():
            chunk = link.read(link.in_waiting or 1)
            if chunk:
                self.feed(chunk)

    def feed(self, chunk: bytes, at: float | None = None) -> None:
        """Split buffered bytes into scans at each terminator (public for tests and the replay reader)."""
        self._buffer += chunk
        while self.terminator in self._buffer:
            raw, self._buffer = self._buffer.split(self.terminator, 1)
            self._emit(raw, at)
        if len(self._buffer) > MAX_SCAN_BYTES:
            logger.warning("scanner %s sent %d bytes without a terminator; discarded (is the terminator %r "
                           "right?)", self.station, len(self._buffer), self.terminator)
            self._buffer = b""

    def _emit(self, raw: bytes, at: float | None) -> None:
        if self.prefix and raw.startswith(self.prefix):
            raw = raw[len(self.prefix):]
        if self.suffix and raw.endswith(self.suffix):
            raw = raw[:-len(self.suffix)]
        if not raw.strip():
            return   # a bare terminator (some guns send CR LF as two terminators)
        self.on_scan(Scan(self.station, self.device, raw.decode("latin-1"), at or time.time()))
