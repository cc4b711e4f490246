"""Moving a rendered job's bytes to a printer: `send(printer, data)` delivers the whole job or raises SendError.

One function per way bytes travel, chosen by the printer's kind:
- `zpl_tcp`, `escpos_network`: the printer's raw TCP port (9100). After the last byte we half-close and wait for
  the printer to close its side (or, for printers that keep the connection open, for its TCP stack to have
  acknowledged every byte), so "sent" never means "still sitting in our socket buffer".
- `zpl_device`, `escpos_file`: a device file (`/dev/usb/lp0`, a udev name, a serial tty) or a plain file.
- `escpos_usb`, `escpos_serial`: through python-escpos' own USB and serial drivers.
- `capture`: each job becomes one file in a folder, written atomically.

`SendError.sent` tells the spooler whether the printer may hold part of the job: it counts the bytes handed to
the operating system before the failure, so it is an upper bound of what reached the printer, and 0 means that
nothing can have (connection refused, device missing). Nothing here retries; the spooler decides.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import select
import socket
import struct
import termios
import time
from datetime import datetime, timezone
from pathlib import Path

from appliance.config.printers import PrinterConfig

CHUNK = 64 * 1024
# Once the printer's TCP stack holds every byte, how long we still wait for it to close the connection (or to
# reset it, which means the job was cut off): printers close at once after reading our last byte, so this only
# slows down the rare printer that keeps connections open, and it gives a busy printer time to say it failed.
CLOSE_GRACE_S = 2.0
POLL_S = 0.05


class SendError(Exception):
    """The job did not (certainly) reach the printer; str() says what happened in words for an admin."""

    def __init__(self, message: str, *, sent: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.sent = sent     # bytes that may have reached the printer; 0: none can have
        self.total = total


def send(printer: PrinterConfig, data: bytes) -> None:
    """Deliver `data` to `printer` completely, or raise SendError. Each step is bounded by `printer.timeout_s`."""
    senders = {
        "zpl_tcp": _send_tcp, "escpos_network": _send_tcp,
        "zpl_device": _send_device, "escpos_file": _send_device,
        "escpos_usb": _send_usb, "escpos_serial": _send_serial,
        "capture": _send_capture,
    }
    try:
        sender = senders[printer.kind]
    except KeyError:
        raise SendError(f"{printer.name}: unknown printer kind {printer.kind!r}", total=len(data)) from None
    try:
        sender(printer, bytes(data))
    except SendError as exc:
        exc.total = len(data)   # helpers shared with status queries do not know the job's size
        raise


# --- raw TCP ------------------------------------------------------------------------------------------------

def where(printer: PrinterConfig) -> str:
    """"dock-zebra (192.168.1.50:9100)": how messages name a network printer."""
    host = f"[{printer.host}]" if ":" in printer.host else printer.host
    return f"{printer.name} ({host}:{printer.port})"


def connect(printer: PrinterConfig, timeout: float) -> socket.socket:
    """A connected socket to a network printer, or SendError(sent=0) saying why not (also used by status)."""
    try:
        return socket.create_connection((printer.host, printer.port), timeout=timeout)
    except socket.gaierror:
        raise SendError(f"{where(printer)}: cannot resolve the host name {printer.host!r} — check the name or use "
                        "the printer's IP address") from None
    except ConnectionRefusedError:
        raise SendError(f"{where(printer)}: connection refused — is it on and on the network, and is "
                        f"{printer.port} its raw printing port?") from None
    except TimeoutError:
        raise SendError(f"{where(printer)}: no answer within {timeout:g} s — is it switched on and on this "
                        "network?") from None
    except OSError as exc:
        raise SendError(f"{where(printer)}: cannot connect: {_network_reason(exc)}") from None


def _network_reason(exc: OSError) -> str:
    reasons = {
        errno.EHOSTUNREACH: "host unreachable — is it switched on, and is the address right?",
        errno.ENETUNREACH: "network unreachable — is this box's network cable in, or the address on another "
                           "network?",
        errno.ECONNRESET: "connection reset by the printer",
        errno.EPIPE: "connection closed by the printer",
        errno.ECONNABORTED: "connection aborted",
    }
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


def _send_tcp(printer: PrinterConfig, data: bytes) -> None:
    total = len(data)
    timeout = printer.timeout_s
    sock = connect(printer, timeout)
    sent = 0
    try:
        view = memoryview(data)
        try:
            # send() rather than sendall(): sendall cannot say how much went before it failed.
            while sent < total:
                sent += sock.send(view[sent:sent + CHUNK])
            sock.shutdown(socket.SHUT_WR)
        except TimeoutError:
            raise SendError(f"{where(printer)}: stopped taking data for {timeout:g} s — paused, out of paper or "
                            "its buffer full?", sent=sent, total=total) from None
        except OSError as exc:
            raise SendError(f"{where(printer)}: {_network_reason(exc)} while sending", sent=sent,
                            total=total) from None
        _wait_delivered(printer, sock, total)
    finally:
        sock.close()


def _wait_delivered(printer: PrinterConfig, sock: socket.socket, total: int) -> None:
    """Return once the printer closed its side, or its TCP stack acknowledged everything and it stayed quiet."""
    deadline = time.monotonic() + printer.timeout_s
    acked_at: float | None = None
    sock.setblocking(False)
    while True:
        now = time.monotonic()
        if acked_at is None and _unacknowledged(sock) in (0, None):
            acked_at = now
        if acked_at is not None and now - acked_at >= CLOSE_GRACE_S:
            return
        if now >= deadline:
            if acked_at is not None:
                return
            raise SendError(f"{where(printer)}: did not acknowledge the job within {printer.timeout_s:g} s — "
                            "paused, out of paper or its buffer full?", sent=total, total=total)
        readable, _, _ = select.select([sock], [], [], POLL_S)
        if not readable:
            continue
        try:
            if not sock.recv(4096):   # the printer closed its side: it has read everything
                return
        except BlockingIOError:
            continue
        except OSError as exc:
            # A reset after our last byte: the printer may hold all of the job, or only part of it.
            raise SendError(f"{where(printer)}: {_network_reason(exc)} before confirming the job", sent=total,
                            total=total) from None


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes (and our FIN) in the socket's send queue not yet acknowledged by the peer; None when the OS cannot
    say (Linux can: SIOCOUTQ, which has the same number as TIOCOUTQ)."""
    try:
        buffer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return None
    return struct.unpack("i", buffer)[0]


# --- device files -------------------------------------------------------------------------------------------

def device_problem(printer: PrinterConfig, exc: OSError) -> str:
    """What an admin should check when the device file cannot be opened or written."""
    path = printer.device
    hints = {
        errno.ENOENT: f"{path} does not exist — is the printer plugged in and switched on? A udev rule can give "
                      "it a stable name (e.g. /dev/label-printer-1)",
        errno.EACCES: f"no permission to write {path} — add the appliance's user to the group that owns it "
                      "(usually lp, or dialout for serial ports) or set the group in a udev rule",
        errno.EPERM: f"no permission to write {path} — add the appliance's user to the group that owns it "
                     "(usually lp) or set the group in a udev rule",
        errno.EBUSY: f"{path} is in use by another program (CUPS, a getty, another appliance process?)",
        errno.ENODEV: f"{path} has no device behind it — unplugged?",
        errno.ENXIO: f"{path} has no device behind it — unplugged or switched off?",
        errno.EIO: f"input/output error on {path} — unplugged, or the printer reports an error?",
        errno.EISDIR: f"{path} is a folder, not a device file",
        errno.ENOSPC: f"no space left to write {path}",
    }
    return hints.get(exc.errno or 0, f"{path}: {exc.strerror or exc}")


def _send_device(printer: PrinterConfig, data: bytes) -> None:
    path = Path(printer.device)
    total = len(data)
    # A device file that is missing means the printer is; creating a plain file in /dev would hide that.
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK
    if not path.is_relative_to("/dev"):
        flags |= os.O_CREAT
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise SendError(f"{printer.name}: {device_problem(printer, exc)}", total=total) from None
    sent = 0
    try:
        if os.isatty(fd):
            _raw_output(fd)
        view = memoryview(data)
        deadline = time.monotonic() + printer.timeout_s
        while sent < total:
            try:
                sent += os.write(fd, view[sent:sent + CHUNK])
                deadline = time.monotonic() + printer.timeout_s   # progress: the timeout bounds each wait
                continue
            except BlockingIOError:
                pass
            # Non-blocking + select: a USB printer that is off or out of paper stops taking data, and a
            # blocking write would hold the spooler forever.
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise SendError(f"{printer.name}: {path} stopped taking data for {printer.timeout_s:g} s — "
                                "paused, out of paper or switched off?", sent=sent, total=total)
    except OSError as exc:
        raise SendError(f"{printer.name}: {device_problem(printer, exc)}", sent=sent, total=total) from None
    finally:
        os.close(fd)


def _raw_output(fd: int) -> None:
    """A tty's output processing would turn every 0x0A of the job into CR LF; ESC/POS is binary."""
    attributes = termios.tcgetattr(fd)
    attributes[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSANOW, attributes)


# --- python-escpos: USB and serial --------------------------------------------------------------------------
# Without a printer these can only be checked for "a missing device gives a clear SendError" (the tests do, and
# drive the serial path through a pty); USB needs pyusb and a real device.

def _send_usb(printer: PrinterConfig, data: bytes) -> None:
    from escpos.printer import usb as escpos_usb
    total = len(data)
    # Checked first: python-escpos' Usb raises from its destructor too when pyusb is missing.
    if not escpos_usb.is_usable():
        raise SendError(f"{printer.name}: USB printers need the pyusb library (pip install pyusb) and libusb",
                        total=total)
    vendor, product = (int(part, 16) for part in printer.usb.split(":"))
    device = escpos_usb.Usb(vendor, product, timeout=int(printer.timeout_s * 1000))
    try:
        try:
            device.open()
        except Exception as exc:   # noqa: BLE001 - DeviceNotFoundError, USBError, ...: all mean "not usable now"
            raise SendError(f"{printer.name}: no usable USB printer {printer.usb} — plugged in and switched on? "
                            f"(lsusb lists it; a udev rule must let the appliance's user open it): {exc}",
                            total=total) from None
        _write_chunks(printer, device._raw, data, "USB")
    finally:
        _close_quietly(device)


def _send_serial(printer: PrinterConfig, data: bytes) -> None:
    from escpos.printer import Serial
    total = len(data)
    device = Serial(devfile=str(printer.device), baudrate=printer.baud, timeout=printer.timeout_s)
    try:
        try:
            device.open()
        except Exception as exc:   # noqa: BLE001 - DeviceNotFoundError wraps pyserial's own errors
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else None
            reason = device_problem(printer, cause) if cause is not None else str(exc)
            raise SendError(f"{printer.name}: cannot open the serial port: {reason}", total=total) from None
        # pyserial's write blocks for ever by default (flow control, printer off).
        device.device.write_timeout = printer.timeout_s
        _write_chunks(printer, device._raw, data, f"serial port {printer.device}")
    finally:
        _close_quietly(device)


def _write_chunks(printer: PrinterConfig, write, data: bytes, what: str) -> None:
    total = len(data)
    done = 0
    for start in range(0, total, CHUNK):
        chunk = data[start:start + CHUNK]
        try:
            write(chunk)
        except Exception as exc:   # noqa: BLE001 - each driver has its own error types
            # Part of this chunk may have gone: count all of it, `sent` is an upper bound.
            raise SendError(f"{printer.name}: writing to the {what} failed: {exc}", sent=done + len(chunk),
                            total=total) from None
        done += len(chunk)


def _close_quietly(device) -> None:
    try:
        device.close()
    except Exception:   # noqa: BLE001, S110 - the job's outcome is already decided
        pass


# --- capture ------------------------------------------------------------------------------------------------

_capture_numbers = itertools.count(1)


def capture_name(printer: PrinterConfig, number: int, now: datetime | None = None) -> str:
    """`20250131T142501.123456Z-0001.zpl`: names sort in the order the jobs were sent."""
    now = now or datetime.now(timezone.utc)
    suffix = "zpl" if printer.language == "zpl" else "bin"
    return f"{now:%Y%m%dT%H%M%S.%f}Z-{number:04d}.{suffix}"


def _send_capture(printer: PrinterConfig, data: bytes) -> None:
    folder = Path(printer.path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            final = folder / capture_name(printer, next(_capture_numbers))
            temp = folder / f".{final.name}.tmp"
            with open(temp, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            try:
                # link() never replaces an existing file (another process capturing into the same folder).
                os.link(temp, final)
            except FileExistsError:
                temp.unlink()
                continue
            except OSError:   # a file system without hard links (FAT): rename, the names are unique enough
                os.replace(temp, final)
                return
            temp.unlink()
            return
    except OSError as exc:
        raise SendError(f"{printer.name}: cannot write the capture file in {folder}: {exc.strerror or exc}",
                        total=len(data)) from None
