"""End to end at the dock: a real `appliance agent` process with a replay scanner socket, scans written to it as
a gun would send them, the station workflow, committed movements that `appliance stock` shows; an unknown
barcode that waits in the scan log, is linked, and replayed. Also `appliance scan` by hand."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_CSV = REPO / "scripts" / "demo" / "products.csv"
UNKNOWN = "9501101530003"


def appliance(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "appliance", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)
    if check:
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def eventually(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def box(tmp_path):
    config = tmp_path / "appliance.toml"
    appliance(config, "init", "--site", "BER", "--site-name", "Berlin")
    for code in ("BER-DOCK", "BER-A-01"):
        appliance(config, "location", "add", code)
    appliance(config, "import", "products", str(DEMO_CSV))
    return config


def stock(config: Path) -> dict[tuple[str, str], int]:
    rows = json.loads(appliance(config, "stock", "--json").stdout)
    return {(r["sku"], r["location"]): r["on_hand"] for r in rows}


def test_scans_through_the_agent_become_movements_and_unknown_codes_are_linked_and_replayed(box, tmp_path):
    sock_path = tmp_path / "dock-1.sock"
    with box.open("a", encoding="utf-8") as f:
        f.write(f'\n[[scanner]]\nkind = "replay"\nstation = "dock-1"\npath = "{sock_path}"\nsocket = true\n'
                'gs = "~"\n')
    agent = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(box), "--log-level", "INFO",
                              "agent"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The socket file appears at bind(), a moment before listen(): connect until it is listening.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gun:
            eventually(lambda: gun.connect_ex(str(sock_path)) == 0, what="the replay socket")
            # A gun that sends "~" for GS: GS1-128 with lot and expiry, an EAN, a QTY code, an unknown code.
            for line in ("CMD-RECEIVE", "BER-DOCK", "]C10104006381333931" "10L7~17270531", "QTY-2",
                         "4006381333955", UNKNOWN, "CMD-MOVE", "BER-DOCK", "4006381333955", "BER-A-01"):
                gun.sendall(line.encode() + b"\n")
        eventually(lambda: stock(box).get(("DOG-WET-400", "BER-A-01")) == 1, what="the move to be committed")
        assert stock(box) == {("DOG-DRY-5", "BER-DOCK"): 1, ("DOG-WET-400", "BER-DOCK"): 1,
                              ("DOG-WET-400", "BER-A-01"): 1}
        lots = json.loads(appliance(box, "stock", "--lots", "--sku", "DOG-DRY-5", "--json").stdout)
        assert [(r["lot"], r["expiry"]) for r in lots] == [("L7", "2027-05-31")]
        log = json.loads(appliance(box, "scans", "--json").stdout)
        assert len(log) == 10 and {r["device"] for r in log} == {f"replay:{sock_path}"}
        unresolved = json.loads(appliance(box, "scans", "--unresolved", "--json").stdout)
        assert [r["raw"] for r in unresolved] == [UNKNOWN]
    finally:
        agent.terminate()
        output = agent.communicate(timeout=20)[0]
    assert agent.returncode == 0, output
    assert "scan 4006381333955 at dock-1: ok Received 2 × DOG-WET-400 into BER-DOCK" in output

    # The office links the code to the cat litter; the replay receives it where and as it was scanned (× 1).
    scan_id = str(unresolved[0]["id"])
    done = appliance(box, "link-scan", scan_id, "--sku", "CAT-LITTER-10", "--replay", "--json")
    feedback = json.loads(done.stdout)
    assert (feedback["level"], feedback["message"]) == ("ok", "Received 1 × CAT-LITTER-10 into BER-DOCK")
    assert stock(box)[("CAT-LITTER-10", "BER-DOCK")] == 1
    again = appliance(box, "replay-scan", scan_id, check=False)
    assert again.returncode == 2 and "already replayed" in again.stderr
    assert json.loads(appliance(box, "scans", "--unresolved", "--json").stdout) == []
    assert appliance(box, "check").returncode == 0


def test_appliance_scan_by_hand(box):
    assert appliance(box, "scan", "packing", "CMD-RECEIVE").stdout.startswith("ok: Receive\n")
    appliance(box, "scan", "packing", "BER-A-01")
    done = appliance(box, "scan", "packing", "]C10104006381333931<GS>10L9", "--json")
    feedback = json.loads(done.stdout)
    assert feedback["message"] == "Received 1 × DOG-DRY-5 lot L9 into BER-A-01"
    assert feedback["stock"] == [{"sku": "DOG-DRY-5", "location": "BER-A-01", "on_hand": 1, "available": 1}]
    refused = appliance(box, "scan", "packing", "4006381333932", check=False)
    assert refused.returncode == 1 and "check digit should be 1" in refused.stdout
    text = appliance(box, "scan", "packing", "CMD-SHIP").stdout
    assert text == "ok: Ship\nnext: Scan the location to ship from\n"
    # The session lives in the database: another process carries on at the same station.
    assert appliance(box, "scan", "packing", "BER-A-01").stdout.startswith("ok: Shipping from BER-A-01")


def test_link_scan_refuses_what_cannot_be_linked(box):
    appliance(box, "scan", "dock-1", UNKNOWN, check=False)
    scan_id = json.loads(appliance(box, "scans", "--unresolved", "--json").stdout)[0]["id"]
    done = appliance(box, "link-scan", str(scan_id), "--sku", "NO-SUCH-SKU", check=False)
    assert done.returncode == 2 and "unknown SKU 'NO-SUCH-SKU'" in done.stderr
    done = appliance(box, "link-scan", str(scan_id), "--location", check=False)
    assert done.returncode == 2 and "not a location code of this site" in done.stderr
    done = appliance(box, "link-scan", "999", "--sku", "DOG-DRY-5", check=False)
    assert done.returncode == 2 and "no scan 999" in done.stderr
    appliance(box, "dismiss-scan", str(scan_id))
    assert json.loads(appliance(box, "scans", "--unresolved", "--json").stdout) == []
    assert os.path.exists(box)
