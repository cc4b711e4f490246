"""Loopback stand-ins for network label printers: `FakeZebra` (ZPL on port 9100) and `FakeRawPrinter` (ESC/POS).

Both listen on 127.0.0.1 (a free port unless one is given), serve each connection in its own thread, and are
used as `with FakeZebra() as zebra:` or `zebra.start()` … `zebra.stop()` (always stop: it owns sockets).
`zebra.config(**overrides)` is a PrinterConfig pointing at it. Nothing here sleeps to let things happen:
`wait_for(predicate)` / `wait_for_labels(n)` block on a condition until the state is reached or a generous
timeout passes. A network send returns only after the printer closed its side, which FakeZebra does after it
has processed every byte, so right after `transport.send` returns, the job's formats are already recorded.

FakeZebra models what a spooler has to get right about a Zebra:
- ONE input buffer across connections, as on the real printer. A format prints when its `^XZ` arrives; bytes
  outside `^XA…^XZ` (a `~SD` in front, line breaks) are not part of any format and a stray `^XZ` is ignored.
- A format cut off by a dropped connection stays in the buffer, and the next `^XZ` completes it together with
  whatever came next: the partial one and the next one print as ONE corrupt format (`formats[-1]` then starts
  with the partial bytes; the printer ignores the second `^XA`).
- `~JX` ("cancel the current partially input format") discards that partial format. A retry after a partial send
  must therefore start with `~JX`; a `~JX` with no partial format in the buffer does nothing.
- `~HS` is answered at once on the connection that sent it (three STX…ETX strings: paper out, pause, formats
  waiting, partial-format flag, head up, ribbon out), and is never part of a format. Other `~` commands are
  passed through as data, uninterpreted.
- While a fault is set (paper_out, paused, head_open or ribbon_out, see `set_status`), complete formats wait in
  `held` (reported as formats in the buffer) and print, in order, once every fault is cleared.
- `drop_after = n`: the next connection that sends job bytes (anything but `~HS`) is reset (RST) after the
  printer accepted exactly n of them; later bytes of that connection are lost. One-shot: it goes back to None.
- `stop()` is the printer leaving the network (cable pulled): the listener and every open connection are closed
  abruptly, but the buffer, `held`, the status and every record stay; `start()` listens again on the same port.
- Its receive buffer is small (RECEIVE_BUFFER), as on the real printer, so a sender cannot run far ahead of what
  the printer has read.

FakeRawPrinter records the bytes of each connection as one job (`jobs`), for ESC/POS network printers, which
have no formats, buffer semantics or status; `drop_after` works the same way (counting every byte).
"""

from __future__ import annotations

import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.config.printers import PrinterConfig

HOST = "127.0.0.1"
RECEIVE_BUFFER = 64 * 1024
WAIT_S = 10.0
FAULTS = ("paper_out", "paused", "head_open", "ribbon_out")

_START = re.compile(rb"\^XA", re.IGNORECASE)
_END = re.compile(rb"\^XZ", re.IGNORECASE)
_QUANTITY = re.compile(rb"\^PQ(\d+)", re.IGNORECASE)


@dataclass
class _Connection:
    sock: socket.socket
    counted: int = 0               # job bytes accepted (for drop_after)
    drop_at: int | None = None     # this connection's share of drop_after, claimed with its first job byte
    carry: bytes = b""             # an incomplete `~` command at the end of the last chunk
    aborted: bool = False          # stop() is closing it
    replies: list[bytes] = field(default_factory=list)


class _LoopbackPrinter:
    """The listener, the connection threads, stop/start on one port, and waiting; subclasses handle the bytes."""

    host = HOST
    kind = "zpl_tcp"

    def __init__(self, port: int | None = None) -> None:
        self._lock = threading.Condition()
        self._listener: socket.socket | None = self._bind(port or 0)
        self.port: int = self._listener.getsockname()[1]
        self._running = False
        self._accepting: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._open: dict[threading.Thread, _Connection] = {}
        self.connections = 0           # connections accepted, over the printer's whole life
        self.drops = 0                 # connections reset because of drop_after
        self.drop_after: int | None = None

    # --- life cycle --------------------------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        for attempt in range(50):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Inherited by accepted connections: a small window, as on the real printer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            try:
                sock.bind((HOST, port))
                return sock
            except OSError:
                sock.close()
                if port == 0 or attempt == 49:
                    raise
                time.sleep(0.1)   # restarting on a fixed port the kernel has not quite let go of
        raise AssertionError("unreachable")

    def start(self):
        """Listen (again, on the same port). Returns self."""
        with self._lock:
            if self._running:
                return self
            if self._listener is None:
                self._listener = self._bind(self.port)
            self._listener.listen(16)
            self._wake = socket.socketpair()
            self._running = True
            self._accepting = threading.Thread(target=self._accept_loop, args=(self._listener, self._wake[0]),
                                               name=f"{type(self).__name__}-{self.port}", daemon=True)
            self._accepting.start()
        return self

    def stop(self) -> None:
        """Close the listener and reset every open connection; records and buffer stay. Idempotent."""
        with self._lock:
            self._running = False
            accepting, self._accepting = self._accepting, None
            wake, self._wake = self._wake, None
            listener, self._listener = self._listener, None
            open_now = dict(self._open)
            for connection in open_now.values():
                connection.aborted = True
        if wake is not None:
            wake[1].send(b"x")
        if accepting is not None:
            accepting.join(WAIT_S)
        if listener is not None:
            listener.close()
        if wake is not None:
            wake[0].close()
            wake[1].close()
        for thread, connection in open_now.items():
            try:
                # Wakes the thread's recv(); it then resets the connection (a close here would not, while the
                # thread still holds the socket in a system call).
                connection.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            thread.join(WAIT_S)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    def config(self, **overrides) -> PrinterConfig:
        """A PrinterConfig for this printer (name "fake", timeout 5 s unless overridden)."""
        values = {"name": "fake", "kind": self.kind, "host": self.host, "port": self.port, "timeout_s": 5.0}
        values.update(overrides)
        return PrinterConfig(**values)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        """Block until predicate() (called with the printer's state locked) is true; False after `timeout`."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    # --- connections -------------------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        while True:
            readable, _, _ = select.select([listener, wake], [], [])
            if wake in readable:
                return
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            sock.setblocking(True)
            connection = _Connection(sock)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True,
                                      name=f"{type(self).__name__}-{self.port}-conn")
            with self._lock:
                if not self._running:
                    _reset(sock)
                    return
                self.connections += 1
                self._open[thread] = connection
                self._connected(connection)
                self._lock.notify_all()
            thread.start()

    def _serve(self, connection: _Connection) -> None:
        sock = connection.sock
        dropped = False
        try:
            while not dropped:
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    break
                if not chunk or connection.aborted:
                    break
                with self._lock:
                    dropped = not self._received(connection, chunk)
                    replies, connection.replies = connection.replies, []
                    self._lock.notify_all()
                for reply in replies:
                    try:
                        sock.sendall(reply)
                    except OSError:
                        break
        finally:
            with self._lock:
                if dropped:
                    self.drops += 1
                self._closed(connection, dropped or connection.aborted)
                self._open.pop(threading.current_thread(), None)
                self._lock.notify_all()
            if dropped or connection.aborted:
                _reset(sock)
            else:
                sock.close()

    def _take(self, connection: _Connection, data: bytes) -> tuple[bytes, bool]:
        """The part of `data` the printer accepts, and whether drop_after now resets the connection."""
        if not data:
            return data, False
        if connection.drop_at is None and self.drop_after is not None:
            connection.drop_at, self.drop_after = self.drop_after, None
        if connection.drop_at is None:
            connection.counted += len(data)
            return data, False
        accepted = data[:max(0, connection.drop_at - connection.counted)]
        connection.counted += len(accepted)
        return accepted, connection.counted >= connection.drop_at

    # Subclass hooks, called with the lock held.
    def _connected(self, connection: _Connection) -> None:
        pass

    def _received(self, connection: _Connection, chunk: bytes) -> bool:
        """Handle bytes; False: reset the connection now."""
        raise NotImplementedError

    def _closed(self, connection: _Connection, cut_off: bool) -> None:
        """The connection ended; `cut_off`: reset by drop_after or by stop()."""


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a printer that loses power or drops the link does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FakeZebra(_LoopbackPrinter):
    """A ZPL printer on loopback; see the module docstring for what it models."""

    def __init__(self, port: int | None = None, *, status: dict | None = None) -> None:
        super().__init__(port)
        self.formats: list[bytes] = []      # printed formats, each exactly `^XA…^XZ`, in order
        self.labels = 0                     # labels printed: each format counts its ^PQ quantity (default 1)
        self.held: list[bytes] = []         # complete formats waiting while a fault is set
        self.cancelled = 0                  # partial formats discarded by ~JX
        self.status_queries = 0             # ~HS commands received
        self.answers_status = True          # False: ~HS goes unanswered (some models, when faulted)
        self.received = bytearray()         # every job byte accepted (not ~HS), for debugging a test
        self._buffer = bytearray()          # the input buffer: bytes after the last complete format
        self._scan_from = 0
        self._status = dict.fromkeys(FAULTS, False)
        if status:
            self.set_status(**status)

    # --- status ------------------------------------------------------------------------------------------

    def set_status(self, **flags: bool) -> None:
        """Set faults (paper_out, paused, head_open, ribbon_out); clearing the last one prints `held`."""
        unknown = set(flags) - set(FAULTS)
        if unknown:
            raise TypeError(f"unknown status flag(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._status.update({name: bool(value) for name, value in flags.items()})
            if not self.faulted:
                held, self.held = self.held, []
                for fmt in held:
                    self._print(fmt)
            self._lock.notify_all()

    @property
    def status(self) -> dict[str, bool]:
        return dict(self._status)

    @property
    def faulted(self) -> bool:
        return any(self._status.values())

    @property
    def partial(self) -> bytes:
        """The incomplete format in the buffer (from its `^XA`), b"" when there is none."""
        with self._lock:
            start = _START.search(self._buffer)
            return bytes(self._buffer[start.start():]) if start else b""

    def host_status(self) -> bytes:
        """The printer's ~HS answer as it stands."""
        flag = {name: int(on) for name, on in self._status.items()}
        partial = int(_START.search(self._buffer) is not None)
        strings = (
            f"030,{flag['paper_out']},{flag['paused']},0240,{len(self.held):03d},0,0,{partial},000,0,0,0",
            f"001,0,{flag['head_open']},{flag['ribbon_out']},0,2,6,0,00000000,1,000",
            "1234,0",
        )
        return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in strings)

    # --- waiting -----------------------------------------------------------------------------------------

    def wait_for_labels(self, count: int, timeout: float = WAIT_S) -> bool:
        return self.wait_for(lambda: self.labels >= count, timeout)

    def wait_for_formats(self, count: int, timeout: float = WAIT_S) -> bool:
        return self.wait_for(lambda: len(self.formats) >= count, timeout)

    # --- the byte stream ---------------------------------------------------------------------------------

    def _received(self, connection: _Connection, chunk: bytes) -> bool:
        data = connection.carry + chunk
        connection.carry = b""
        at = 0
        while at < len(data):
            tilde = data.find(b"~", at)
            end = len(data) if tilde < 0 else tilde
            if end > at:
                accepted, drop = self._take(connection, data[at:end])
                self._absorb(accepted)
                if drop:
                    return False
                at = end
                continue
            if len(data) - tilde < 3:
                connection.carry = data[tilde:]   # "~" or "~H" so far: wait for the rest
                break
            command = data[tilde:tilde + 3]
            at = tilde + 3
            if command.upper() == b"~HS":
                self.status_queries += 1
                if self.answers_status:
                    connection.replies.append(self.host_status())
                continue
            accepted, drop = self._take(connection, command)
            if len(accepted) < len(command):
                return False   # cut off inside the command: it never arrived whole
            if command.upper() == b"~JX":
                self.received += command
                self._cancel_partial()
            else:
                self._absorb(command)
            if drop:
                return False
        return True

    def _closed(self, connection: _Connection, cut_off: bool) -> None:
        if connection.carry and not cut_off:   # a lone "~" at the very end was just a byte
            accepted, _ = self._take(connection, connection.carry)
            self._absorb(accepted)
        connection.carry = b""

    def _absorb(self, data: bytes) -> None:
        self.received += data
        self._buffer += data
        while True:
            end = _END.search(self._buffer, self._scan_from)
            if end is None:
                self._scan_from = max(0, len(self._buffer) - 2)   # "^X" may be completed by the next bytes
                return
            chunk = bytes(self._buffer[:end.end()])
            del self._buffer[:end.end()]
            self._scan_from = 0
            start = _START.search(chunk)
            if start is not None:   # a ^XZ without ^XA is ignored, as the printer does
                self._complete(chunk[start.start():])

    def _cancel_partial(self) -> None:
        if _START.search(self._buffer) is not None:
            self.cancelled += 1
        self._buffer.clear()
        self._scan_from = 0

    def _complete(self, fmt: bytes) -> None:
        if self.faulted:
            self.held.append(fmt)
        else:
            self._print(fmt)

    def _print(self, fmt: bytes) -> None:
        quantity = _QUANTITY.search(fmt)
        self.formats.append(fmt)
        self.labels += int(quantity.group(1)) if quantity else 1


class FakeRawPrinter(_LoopbackPrinter):
    """An ESC/POS network printer on loopback: records each connection's bytes as one job."""

    kind = "escpos_network"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.jobs: list[bytes] = []         # one entry per finished connection, in the order they ended
        self._pending: dict[int, bytearray] = {}

    @property
    def received(self) -> bytes:
        return b"".join(self.jobs)

    def wait_for_jobs(self, count: int, timeout: float = WAIT_S) -> bool:
        return self.wait_for(lambda: len(self.jobs) >= count, timeout)

    def _connected(self, connection: _Connection) -> None:
        self._pending[id(connection)] = bytearray()

    def _received(self, connection: _Connection, chunk: bytes) -> bool:
        accepted, drop = self._take(connection, chunk)
        self._pending[id(connection)] += accepted
        return not drop

    def _closed(self, connection: _Connection, cut_off: bool) -> None:
        self.jobs.append(bytes(self._pending.pop(id(connection), b"")))
