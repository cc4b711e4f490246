"""The replay scanner: files and a local socket, with the scan log's notation for control characters."""

from __future__ import annotations

import socket
import threading

from appliance.scanning.replay_reader import SocketReplay, replay_file, unvisible
from appliance.scanning.scan import visible


def test_visible_and_unvisible_round_trip():
    raw = "]C1010950110153000317141231\x1d10AB\x1e\x04\x07"
    assert unvisible(visible(raw)) == raw
    assert unvisible("A<0x1d>B<GS>C") == "A\x1dB\x1dC"
    assert unvisible("<gs> stays text") == "<gs> stays text"


def test_a_file_replays_one_scan_per_line_skipping_comments(tmp_path):
    path = tmp_path / "demo.scans"
    path.write_text("# morning delivery\nCMD-RECEIVE\n\n]C101095011015300031714123110AB-123<GS>21X\nQTY-12\n",
                    encoding="utf-8")
    got = []
    assert replay_file(path, "dock-1", got.append) == 3
    assert [s.raw for s in got] == ["CMD-RECEIVE", "]C101095011015300031714123110AB-123\x1d21X", "QTY-12"]
    assert {s.station for s in got} == {"dock-1"} and got[0].device == f"replay:{path}"


def test_a_socket_takes_lines_from_any_client(tmp_path):
    got, arrived = [], threading.Event()

    def on_scan(scan):
        got.append(scan.raw)
        if len(got) == 3:
            arrived.set()
    replay = SocketReplay(tmp_path / "scan.sock", "packing", on_scan)
    stop = threading.Event()
    thread = threading.Thread(target=replay.run, args=(stop,), daemon=True)
    thread.start()
    assert replay.ready.wait(5)
    for payload in (b"4006381333931\nBER-A-01\r\n", b"A<GS>B"):   # the last one has no newline: EOF ends it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / "scan.sock"))
            client.sendall(payload)
    assert arrived.wait(5)
    stop.set()
    thread.join(5)
    assert got == ["4006381333931", "BER-A-01", "A\x1dB"]
    assert not (tmp_path / "scan.sock").exists()
