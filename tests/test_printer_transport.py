"""Sending jobs to printers: real loopback TCP (FakeZebra, FakeRawPrinter, sockets that misbehave), a real
temp file, real pty pairs (as a device file and through python-escpos' Serial), and capture folders. Also the
FakeZebra buffer model the spooler relies on: a partial format corrupts the next one unless `~JX` comes first."""

from __future__ import annotations

import errno
import os
import pty
import select
import socket
import threading
from pathlib import Path

import pytest
from printer_sims import FakeRawPrinter, FakeZebra

from appliance.config.printers import PrinterConfig
from appliance.printing import transport
from appliance.printing.transport import SendError, send


def zpl(text: str, copies: int = 1) -> bytes:
    return f"^XA^CI28^FO20,20^A0N,30,30^FD{text}^FS^PQ{copies}^XZ".encode()


def big_format() -> bytes:
    """A format larger than everything the kernel can buffer between us and the printer, so a drop or a stall
    is certain to happen while we are still sending (sizes from the kernel's own limits)."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 8 * 1024 * 1024
    field = b"^FO10,10^A0N,20,20^FD" + b"x" * 200 + b"^FS"
    body = field * ((2 * wmem_max + 4 * 1024 * 1024) // len(field) + 1)
    return b"^XA" + body + b"^XZ"


def read_exactly(fd: int, count: int, timeout: float = 10.0) -> bytes:
    """Read `count` bytes from a pty master (or less when nothing comes for `timeout`)."""
    data = bytearray()
    while len(data) < count:
        if not select.select([fd], [], [], timeout)[0]:
            break
        data += os.read(fd, 65536)
    return bytes(data)


@pytest.fixture
def zebra():
    with FakeZebra() as printer:
        yield printer


@pytest.fixture
def pty_pair():
    """(master fd, slave path); the test's own slave fd stays open so the master never sees a hang-up."""
    master, slave = pty.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


# --- raw TCP: FakeZebra --------------------------------------------------------------------------------------

def test_jobs_sent_to_the_fake_zebra_are_printed_in_order(zebra):
    send(zebra.config(), zpl("Hundefutter 5 kg"))
    send(zebra.config(), b"~SD15\r\n" + zpl("Żółć", copies=3) + b"\r\n")
    assert zebra.formats == [zpl("Hundefutter 5 kg"), zpl("Żółć", copies=3)]   # ~SD and line breaks outside
    assert zebra.labels == 4
    assert zebra.connections == 2
    assert zebra.partial == b""


def test_two_formats_in_one_job_are_two_formats(zebra):
    send(zebra.config(), zpl("one") + zpl("two", copies=2))
    assert zebra.formats == [zpl("one"), zpl("two", copies=2)]
    assert zebra.labels == 3


def test_nothing_listening_is_a_clear_error_with_nothing_sent():
    printer = FakeZebra()          # bound, not listening: the printer is off
    try:
        with pytest.raises(SendError) as caught:
            send(printer.config(name="dock-zebra"), zpl("x"))
    finally:
        printer.stop()
    assert caught.value.sent == 0
    assert caught.value.total == len(zpl("x"))
    assert str(caught.value) == (f"dock-zebra (127.0.0.1:{printer.port}): connection refused — is it on and on "
                                 f"the network, and is {printer.port} its raw printing port?")


def test_printer_back_on_the_same_port_takes_the_job(zebra):
    zebra.stop()
    with pytest.raises(SendError) as caught:
        send(zebra.config(), zpl("waiting"))
    assert caught.value.sent == 0 and "connection refused" in str(caught.value)
    zebra.start()
    send(zebra.config(), zpl("waiting"))
    assert zebra.formats == [zpl("waiting")]


def test_an_unresolvable_host_name_says_so():
    printer = PrinterConfig(name="p", kind="zpl_tcp", host="no-such-printer.invalid", timeout_s=5.0)
    with pytest.raises(SendError) as caught:
        send(printer, zpl("x"))
    assert caught.value.sent == 0
    assert "cannot resolve the host name 'no-such-printer.invalid'" in str(caught.value)


def test_a_drop_mid_job_reports_how_far_it_got(zebra):
    job = big_format()
    zebra.drop_after = 1000
    with pytest.raises(SendError) as caught:
        send(zebra.config(), job)
    error = caught.value
    assert 0 < error.sent < error.total == len(job)
    assert "connection reset by the printer" in str(error) or "closed by the printer" in str(error)
    assert zebra.drops == 1 and zebra.drop_after is None
    assert bytes(zebra.received) == job[:1000]    # the printer took exactly that much
    assert zebra.partial == job[:1000] and zebra.formats == []


def test_a_drop_after_the_last_byte_left_is_still_an_error(zebra):
    """A small job is all in the kernel's hands before the printer resets: sent is everything (the upper
    bound), and the job must not be reported done."""
    job = zpl("klein")
    zebra.drop_after = 10
    with pytest.raises(SendError) as caught:
        send(zebra.config(), job)
    assert caught.value.sent == caught.value.total == len(job)
    assert zebra.formats == [] and zebra.partial == job[:10]


def test_fake_zebra_a_partial_format_corrupts_the_next_one(zebra):
    zebra.drop_after = 25
    with pytest.raises(SendError):
        send(zebra.config(), zpl("first"))
    send(zebra.config(), zpl("second"))
    assert zebra.formats == [zpl("first")[:25] + zpl("second")]   # one corrupt label
    assert zebra.labels == 1


def test_fake_zebra_jx_discards_the_partial_format_so_the_retry_prints_once(zebra):
    zebra.drop_after = 25
    with pytest.raises(SendError):
        send(zebra.config(), zpl("first"))
    send(zebra.config(), b"~JX" + zpl("first"))
    assert zebra.formats == [zpl("first")]
    assert zebra.cancelled == 1 and zebra.partial == b""
    # ~JX with nothing partial in the buffer changes nothing.
    send(zebra.config(), b"~JX" + zpl("second"))
    assert zebra.formats == [zpl("first"), zpl("second")] and zebra.cancelled == 1


def test_stop_resets_a_connection_in_the_middle_of_a_job(zebra):
    """The printer leaves the network while a job is coming in: the sender gets an error, the partial format
    stays in the printer's buffer."""
    with socket.create_connection(("127.0.0.1", zebra.port), timeout=10) as sock:
        sock.sendall(b"^XA^FDhalf")
        assert zebra.wait_for(lambda: zebra.partial == b"^XA^FDhalf")
        zebra.stop()
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
    assert zebra.formats == [] and zebra.partial == b"^XA^FDhalf"


# --- raw TCP: sockets that misbehave ------------------------------------------------------------------------

def test_a_printer_that_stops_reading_times_out_with_part_sent():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)   # never accepted, never read: the kernel takes what fits and then the window closes
    try:
        printer = PrinterConfig(name="stuck", kind="zpl_tcp", host="127.0.0.1", port=listener.getsockname()[1],
                                timeout_s=0.5)
        job = big_format()
        with pytest.raises(SendError) as caught:
            send(printer, job)
    finally:
        listener.close()
    assert 0 < caught.value.sent < caught.value.total == len(job)
    assert "stopped taking data for 0.5 s" in str(caught.value)


def test_a_printer_that_keeps_the_connection_open_still_completes():
    """Some printers never close their side: once their TCP stack has acknowledged every byte the job is
    delivered, without waiting for the timeout."""
    received = bytearray()
    got_all = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    job = zpl("open") * 50

    def serve():
        conn, _ = listener.accept()
        with conn:
            while len(received) < len(job):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received.extend(chunk)
            got_all.set()
            conn.recv(1)   # our FIN arrives; this printer still does not close until the test ends
            done.wait(30)

    done = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        send(PrinterConfig(name="keeps-open", kind="zpl_tcp", host="127.0.0.1", port=listener.getsockname()[1],
                           timeout_s=20.0), job)
        assert got_all.wait(10) and bytes(received) == job
    finally:
        done.set()
        thread.join(10)
        listener.close()


def test_escpos_network_goes_to_the_raw_port():
    with FakeRawPrinter() as printer:
        data = b"\x1b@\x1bt\x12Za\xbf\xa2\xa5 g\xea\x9cl\n\x1dVA\x00"
        send(printer.config(), data)
        send(printer.config(), b"second")
        assert printer.jobs == [data, b"second"]
        assert printer.connections == 2


def test_fake_raw_printer_drop_after():
    with FakeRawPrinter() as printer:
        printer.drop_after = 5
        with pytest.raises(SendError) as caught:
            send(printer.config(), b"0123456789")
        assert caught.value.sent == 10   # all handed to the kernel; the printer took 5
        assert printer.wait_for_jobs(1) and printer.jobs == [b"01234"] and printer.drops == 1


# --- device files -------------------------------------------------------------------------------------------

def test_device_file_appends_each_job(tmp_path):
    path = tmp_path / "lp0"
    printer = PrinterConfig(name="usb-zebra", kind="zpl_device", device=path)
    send(printer, zpl("a"))
    send(printer, zpl("b"))
    assert path.read_bytes() == zpl("a") + zpl("b")


def test_device_file_on_a_pty_arrives_unchanged(pty_pair):
    master, slave_path = pty_pair
    data = bytes(range(256)) * 800      # binary, line feeds included, larger than the pty's buffer
    result: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: result.setdefault("data", read_exactly(master, len(data))))
    reader.start()
    send(PrinterConfig(name="serial-zebra", kind="zpl_device", device=Path(slave_path), timeout_s=10), data)
    reader.join(20)
    assert result["data"] == data       # no LF -> CR LF translation by the tty


def test_device_that_stops_taking_data_times_out(pty_pair):
    _master, slave_path = pty_pair      # nobody reads the master: the pty fills up
    data = b"x" * (4 * 1024 * 1024)
    with pytest.raises(SendError) as caught:
        send(PrinterConfig(name="stuck", kind="escpos_file", device=Path(slave_path), timeout_s=0.5), data)
    assert 0 < caught.value.sent < caught.value.total == len(data)
    assert f"{slave_path} stopped taking data for 0.5 s" in str(caught.value)


def test_a_missing_device_is_not_created():
    path = Path("/dev/label-printer-that-is-not-here")
    with pytest.raises(SendError) as caught:
        send(PrinterConfig(name="usb-zebra", kind="zpl_device", device=path), zpl("x"))
    assert caught.value.sent == 0
    assert str(caught.value).startswith(f"usb-zebra: {path} does not exist — is the printer plugged in")
    assert "udev rule" in str(caught.value)
    assert not path.exists()


@pytest.mark.parametrize("code, words", [
    (errno.ENOENT, "does not exist — is the printer plugged in and switched on? A udev rule"),
    (errno.EACCES, "no permission to write /dev/usb/lp0 — add the appliance's user to the group that owns it "
                   "(usually lp"),
    (errno.EBUSY, "/dev/usb/lp0 is in use by another program"),
    (errno.ENODEV, "/dev/usb/lp0 has no device behind it"),
    (errno.EIO, "input/output error on /dev/usb/lp0"),
    (errno.EROFS, "/dev/usb/lp0: Read-only file system"),
])
def test_device_problems_tell_the_admin_what_to_check(code, words):
    printer = PrinterConfig(name="p", kind="zpl_device", device=Path("/dev/usb/lp0"))
    assert words in transport.device_problem(printer, OSError(code, os.strerror(code)))


# --- python-escpos: serial and USB --------------------------------------------------------------------------

def test_escpos_serial_through_python_escpos_on_a_pty(pty_pair):
    master, slave_path = pty_pair
    data = b"\x1b@\x1bt\x12" + "Gęś\n".encode("cp852") + b"\n" * 3 + b"\x1dVA\x00"
    result: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: result.setdefault("data", read_exactly(master, len(data))))
    reader.start()
    send(PrinterConfig(name="till", kind="escpos_serial", device=Path(slave_path), baud=19200, timeout_s=5), data)
    reader.join(20)
    assert result["data"] == data


def test_escpos_serial_missing_port():
    printer = PrinterConfig(name="till", kind="escpos_serial", device=Path("/dev/ttyUSB-not-here"))
    with pytest.raises(SendError) as caught:
        send(printer, b"x")
    assert caught.value.sent == 0
    assert "till: cannot open the serial port: /dev/ttyUSB-not-here does not exist" in str(caught.value)


def test_escpos_usb_without_a_device_is_a_clear_error():
    # A real USB printer cannot be attached here; this checks the error a missing one (or missing pyusb) gives.
    from escpos.printer import usb as escpos_usb
    printer = PrinterConfig(name="usb-epson", kind="escpos_usb", usb="04b8:0202")
    with pytest.raises(SendError) as caught:
        send(printer, b"x")
    assert caught.value.sent == 0
    if escpos_usb.is_usable():
        assert "usb-epson: no usable USB printer 04b8:0202" in str(caught.value)
    else:
        assert "usb-epson: USB printers need the pyusb library" in str(caught.value)


# --- capture ------------------------------------------------------------------------------------------------

def test_capture_writes_one_file_per_job_in_order(tmp_path):
    folder = tmp_path / "printed" / "dock"
    printer = PrinterConfig(name="demo", kind="capture", path=folder)
    jobs = [zpl(f"job {n}") for n in range(5)]
    for job in jobs:
        send(printer, job)
    files = sorted(folder.iterdir())
    assert [f.read_bytes() for f in files] == jobs
    assert all(f.suffix == ".zpl" and not f.name.startswith(".") for f in files)


def test_capture_of_escpos_is_bin(tmp_path):
    send(PrinterConfig(name="demo", kind="capture", path=tmp_path, speaks="escpos"), b"\x1b@hi\n")
    [file] = tmp_path.iterdir()
    assert file.suffix == ".bin" and file.read_bytes() == b"\x1b@hi\n"


def test_capture_into_something_that_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SendError) as caught:
        send(PrinterConfig(name="demo", kind="capture", path=tmp_path / "file"), b"x")
    assert caught.value.sent == 0 and f"demo: cannot write the capture file in {tmp_path / 'file'}" in str(
        caught.value)


def test_unknown_kind():
    with pytest.raises(SendError, match="unknown printer kind 'fax'"):
        send(PrinterConfig(name="p", kind="fax"), b"x")
