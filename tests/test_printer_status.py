"""~HS host status: parsing answers (a table of real-shaped answers and of garbage) and querying FakeZebra over
real loopback TCP, including what FakeZebra does with ~HS inside a job and with formats sent while faulted."""

from __future__ import annotations

import socket
import threading

import pytest
from printer_sims import FakeZebra

from appliance.config.printers import PrinterConfig
from appliance.errors import InvalidInput
from appliance.printing import transport
from appliance.printing.status import PrinterStatus, StatusUnavailable, parse_hs, query
from appliance.printing.transport import SendError


def hs(b="0", c="0", eee="000", h="0", o="0", p="0", *, extra1="", extra2="") -> bytes:
    """A ~HS answer with the fields this code reads set, the rest as a ZD421 sends them."""
    return (f"\x02030,{b},{c},0240,{eee},0,0,{h},000,0,0,0{extra1}\x03\r\n"
            f"\x02001,0,{o},{p},0,2,6,0,00000000,1,000{extra2}\x03\r\n"
            "\x021234,0\x03\r\n").encode()


def zpl(text: str) -> bytes:
    return f"^XA^FO20,20^A0N,30,30^FD{text}^FS^XZ".encode()


@pytest.fixture
def zebra():
    with FakeZebra() as printer:
        yield printer


# --- parsing ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, problems, queued", [
    (hs(), [], 0),
    (hs(b="1"), ["paper out"], 0),
    (hs(c="1"), ["paused"], 0),
    (hs(o="1"), ["head open"], 0),
    (hs(p="1"), ["ribbon out"], 0),
    (hs(b="1", c="1", o="1"), ["paper out", "head open", "paused"], 0),
    (hs(eee="012"), [], 12),
    (hs(c="1", eee="003", h="1"), ["paused"], 3),
    (hs(extra1=",9,9", extra2=",7"), [], 0),                     # newer firmware appends fields
    (b"noise" + hs(b="1") + b"\r\n", ["paper out"], 0),           # anything around the strings is ignored
])
def test_parse_hs(reply, problems, queued):
    status = parse_hs(reply)
    assert status.problems == problems
    assert status.labels_queued == queued
    assert status.raw.splitlines()[2] == "1234,0"


def test_parse_hs_fields():
    status = parse_hs(hs(b="1", p="1", eee="002"))
    assert status == PrinterStatus(paper_out=True, paused=False, head_open=False, ribbon_out=True, labels_queued=2,
                                   raw="030,1,0,0240,002,0,0,0,000,0,0,0\n001,0,0,1,0,2,6,0,00000000,1,000\n1234,0")


@pytest.mark.parametrize("reply, words", [
    (b"", "expected 3 <STX>…<ETX> strings, got 0"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "got 0"),
    (hs()[:-5], "got 2"),                                      # cut off in string 3
    (b"\x02030,0,0\x03\r\n\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03", "string 1 should be 12"),
    (hs().replace(b"030,0", b"030,x"), "string 1 should be 12 numbers"),
    (hs(o="2"), "the head up flag is '2'"),
])
def test_parse_hs_refuses_garbage(reply, words):
    with pytest.raises(ValueError, match="not a ~HS answer") as caught:
        parse_hs(reply)
    assert words in str(caught.value)


# --- querying FakeZebra -------------------------------------------------------------------------------------

def test_query_a_ready_printer(zebra):
    status = query(zebra.config())
    assert status.problems == [] and status.labels_queued == 0
    assert zebra.status_queries == 1 and zebra.formats == [] and zebra.received == b""


def test_query_reports_what_set_status_set(zebra):
    zebra.set_status(paper_out=True, head_open=True)
    assert query(zebra.config()).problems == ["paper out", "head open"]
    zebra.set_status(paper_out=False, head_open=False, paused=True)
    assert query(zebra.config()).problems == ["paused"]


def test_status_given_at_construction():
    with FakeZebra(status={"ribbon_out": True}) as zebra:
        assert query(zebra.config()).problems == ["ribbon out"]


def test_set_status_refuses_unknown_flags(zebra):
    with pytest.raises(TypeError, match="unknown status flag"):
        zebra.set_status(on_fire=True)


def test_formats_sent_while_paused_wait_and_print_when_resumed(zebra):
    zebra.set_status(paused=True)
    transport.send(zebra.config(), zpl("one") + zpl("two"))
    assert zebra.formats == [] and zebra.held == [zpl("one"), zpl("two")]
    assert query(zebra.config()).labels_queued == 2
    zebra.set_status(paused=False)
    assert zebra.formats == [zpl("one"), zpl("two")] and zebra.labels == 2
    assert query(zebra.config()).labels_queued == 0


def test_hs_inside_a_job_is_answered_and_not_printed(zebra):
    with socket.create_connection(("127.0.0.1", zebra.port), timeout=10) as sock:
        sock.sendall(b"^XA^FDa^FS~HS^FDb^FS^XZ")
        reply = bytearray()
        while reply.count(b"\x03") < 3:
            reply += sock.recv(1024)
    status = parse_hs(bytes(reply))
    assert status.problems == []
    assert status.raw.splitlines()[0].split(",")[7] == "1"    # a partial format was in progress when asked
    assert zebra.wait_for_formats(1) and zebra.formats == [b"^XA^FDa^FS^FDb^FS^XZ"]


def test_a_command_split_across_packets_is_still_a_command(zebra):
    with socket.create_connection(("127.0.0.1", zebra.port), timeout=10) as sock:
        sock.sendall(b"^XA^FDx^FS~")
        assert zebra.wait_for(lambda: zebra.received == b"^XA^FDx^FS")   # the "~" waits for its letters
        sock.sendall(b"H")
        sock.sendall(b"S^X")
        reply = bytearray()
        while reply.count(b"\x03") < 3:
            reply += sock.recv(1024)
        sock.sendall(b"Z")
    assert parse_hs(bytes(reply)).problems == []
    assert zebra.wait_for_formats(1) and zebra.formats == [b"^XA^FDx^FS^XZ"]


def test_query_after_a_drop_sees_the_partial_format(zebra):
    zebra.drop_after = 8
    with pytest.raises(SendError):
        transport.send(zebra.config(), zpl("cut"))
    assert query(zebra.config()).raw.splitlines()[0].split(",")[7] == "1"


def test_query_nothing_listening():
    zebra = FakeZebra()
    try:
        with pytest.raises(SendError) as caught:
            query(zebra.config(name="dock-zebra"))
    finally:
        zebra.stop()
    assert caught.value.sent == 0 and "dock-zebra" in str(caught.value) and "connection refused" in str(caught.value)


def test_a_printer_that_stays_silent(zebra):
    zebra.answers_status = False
    with pytest.raises(StatusUnavailable) as caught:
        query(zebra.config(name="dock-zebra"), timeout=0.5)
    assert f"dock-zebra (127.0.0.1:{zebra.port}): no answer to ~HS within 0.5 s" in str(caught.value)
    assert isinstance(caught.value, SendError) and caught.value.sent == 0


@pytest.fixture
def wrong_service():
    """Something else on the port: answers one connection with an HTTP error and closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(100)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(10)
    listener.close()


def test_an_answer_that_is_not_hs_is_a_value_error(wrong_service):
    printer = PrinterConfig(name="web", kind="zpl_tcp", host="127.0.0.1", port=wrong_service, timeout_s=5)
    with pytest.raises(ValueError, match="not a ~HS answer"):
        query(printer)


def test_only_zpl_tcp_printers_are_asked():
    with pytest.raises(InvalidInput) as caught:
        query(PrinterConfig(name="till", kind="escpos_network", host="127.0.0.1"))
    assert caught.value.details == {"field": "kind"}
    assert caught.value.message == "till (escpos_network): only zpl_tcp printers answer status queries (~HS)"


def test_drop_after_spares_status_queries_and_hits_the_next_job(zebra):
    """The spooler asks first and sends second: the drop must land on the job, as the test writer meant."""
    zebra.drop_after = 8
    assert query(zebra.config()).problems == []
    assert zebra.drop_after == 8 and zebra.drops == 0
    with pytest.raises(SendError):
        transport.send(zebra.config(), zpl("cut"))
    assert zebra.drops == 1 and zebra.partial == zpl("cut")[:8]
