"""The `replay` scanner: scans from a file (one per line) or from a local socket, for demos, tests and the
fake scanner of a box without guns. Lines use the scan log's visible notation for control characters
(`<GS>`, `<RS>`, `<EOT>`, `<0x1D>`), so a scan copied out of the log replays byte for byte."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from appliance.scanning.scan import Scan

logger = logging.getLogger(__name__)

_NAMED = {"GS": 0x1D, "RS": 0x1E, "EOT": 0x04, "CR": 0x0D, "LF": 0x0A, "TAB": 0x09}
_TOKEN = re.compile(r"<(GS|RS|EOT|CR|LF|TAB|0x[0-9A-Fa-f]{2})>")


def unvisible(text: str) -> str:
    """The inverse of scan.visible(): `<GS>` and `<0x1D>` become the byte 0x1D."""
    def char(match: re.Match) -> str:
        name = match.group(1)
        return chr(_NAMED[name] if name in _NAMED else int(name[2:], 16))
    return _TOKEN.sub(char, text)


def replay_file(path: Path, station: str, on_scan: Callable[[Scan], None], *, interval_s: float = 0.0) -> int:
    """Deliver every non-empty line of `path` as a scan (lines starting with # are comments); returns the count."""
    count = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        on_scan(Scan(station, f"replay:{path}", unvisible(line), time.time()))
        count += 1
        if interval_s:
            time.sleep(interval_s)
    return count


class SocketReplay:
    """A unix stream socket at `path`: every line a client writes is a scan (`echo 4006381333931 | nc -U path`)."""

    def __init__(self, path: Path, station: str, on_scan: Callable[[Scan], None]) -> None:
        self.path = Path(path)
        self.station = station
        self.on_scan = on_scan
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(self.path))
            os.chmod(self.path, 0o660)   # the service's group may inject scans, others may not
            server.listen()
            server.settimeout(0.1)
            self.ready.set()
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                with client:
                    self._serve(client, stop)
        self.path.unlink(missing_ok=True)

    def _serve(self, client: socket.socket, stop: threading.Event) -> None:
        client.settimeout(0.1)
        buffer = b""
        while not stop.is_set():
            try:
                chunk = client.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", errors="replace").rstrip("\r")
                if text.strip():
                    self.on_scan(Scan(self.station, f"replay:{self.path}", unvisible(text), time.time()))
        if buffer.strip():
            self.on_scan(Scan(self.station, f"replay:{self.path}", unvisible(buffer.decode("utf-8", "replace")),
                              time.time()))
