"""`appliance print ...`, `appliance printers ...`, `po receive --labels` and CMD-PRINT at a station, with a
`capture` printer (job files on disk) and the loopback FakeZebra; the spooler driven pass by pass."""

from __future__ import annotations

import json
import pytest
from printer_sims import FakeZebra
from test_cli import Cli, cli  # noqa: F401 - the fixture

from appliance import clock
from appliance.app import open_app
from appliance.config import load_config
from appliance.printing.spooler import Spooler
from appliance.scanning.scan import Scan
from appliance.scanning.station import StationDesk

@pytest.fixture
def printing(cli, tmp_path):  # noqa: F811
    """The CLI's box with two printers: a capture printer (the default) and a ZPL one claiming location labels."""
    zebra = FakeZebra()
    zebra.start()
    with cli.config.open("a", encoding="utf-8") as f:
        f.write(f'\n[[printer]]\nname = "bench"\nkind = "capture"\npath = "{tmp_path / "printed"}"\n'
                f'default = true\nstations = "dock-1"\n\n'
                f'[[printer]]\nname = "bins"\nkind = "zpl_tcp"\nhost = "127.0.0.1"\nport = {zebra.port}\n'
                f'labels = "location"\ndpi = 300\n')
    yield cli, zebra, tmp_path / "printed"
    zebra.stop()


def said(cli, *args: str) -> str:
    """What a command told the person (messages go to stderr; stdout is for data)."""
    code, _out, err = cli(*args)
    assert code == 0, f"{args} exited {code}: {err}"
    return err


def spool(cli) -> None:
    """One agent spooler, every printer drained."""
    app = open_app(load_config(cli.config))
    try:
        spooler = Spooler(app)
        for printer in app.config.printers:
            while spooler.pass_once(printer, clock.utcnow()):
                pass
    finally:
        app.close()


def test_print_label_queues_on_the_default_printer_and_the_spooler_writes_it(printing):
    cli, _zebra, printed = printing
    out = said(cli, "print", "label", "--sku", "DOG-DRY-5", "--copies", "3")
    assert "queued" in out and "bench" in out
    (job,) = cli.json("print", "queue", "list")
    assert (job["state"], job["printer"], job["label"], job["copies"]) == ("queued", "bench", "variant", 3)
    assert job["data"]["gtin"] == "4006381333931" and job["data"]["price"] == 2199
    spool(cli)
    (done,) = cli.json("print", "queue", "list")
    assert done["state"] == "done"
    (file,) = printed.iterdir()
    zpl = file.read_bytes()
    assert zpl.startswith(b"^XA") and b"^PQ3" in zpl and b"Trockenfutter Huhn" in zpl


def test_a_location_label_goes_to_the_printer_that_claims_location_labels(printing):
    cli, zebra, _ = printing
    cli.ok("print", "location", "BER-A-01")
    spool(cli)
    assert len(zebra.formats) == 1 and b"BER-A-01" in zebra.formats[0]
    # --printer overrides the choice; an unknown one is refused with the names that exist.
    code, _, err = cli("print", "location", "BER-A-01", "--printer", "nope")
    assert code == 2 and "bench, bins" in err


def test_bad_requests_say_what_is_wrong_and_queue_nothing(printing):
    cli, _, _ = printing
    code, _, err = cli("print", "label", "--sku", "NOPE")
    assert code == 2 and "NOPE" in err
    code, _, err = cli("print", "label", "--sku", "DOG-DRY-5", "--copies", "0")
    assert code == 2 and "copies" in err
    code, _, err = cli("print", "location", "BER-Z-99")
    assert code == 2 and "BER-Z-99" in err
    assert cli.json("print", "queue", "list") == []


def test_queue_retry_and_cancel(printing):
    cli, zebra, _ = printing
    cli.ok("print", "location", "BER-A-02")
    cli.ok("print", "location", "BER-A-01")
    first, second = sorted(job["id"] for job in cli.json("print", "queue", "list"))
    assert "cancelled" in said(cli, "print", "queue", "cancel", str(second))
    spool(cli)
    assert len(zebra.formats) == 1
    assert "printed again as job" in said(cli, "print", "queue", "retry", str(first))
    assert f"print job {second} queued again on bench" in said(cli, "print", "queue", "retry", str(second),
                                                                   "--printer", "bench")
    spool(cli)
    assert len(zebra.formats) == 2
    states = {job["id"]: job["state"] for job in cli.json("print", "queue", "list")}
    assert states[first] == "done" and states[second] == "done" and len(states) == 3
    code, _, err = cli("print", "queue", "cancel", str(first))
    assert code == 3 and "done" in err
    code, _, err = cli("print", "queue", "retry")
    assert code == 2 and "job id" in err


def test_printers_list_status_and_preview(printing, tmp_path):
    cli, zebra, _ = printing
    printers = cli.json("printers", "list")
    assert [(p["name"], p["language"], p["dpi"]) for p in printers] == [("bench", "zpl", 203), ("bins", "zpl", 300)]
    assert "ready" in said(cli, "printers", "status", "bins")
    zebra.set_status(head_open=True)
    code, _, err = cli("printers", "status", "bins")
    assert code == 1 and "head open" in err
    out_png = tmp_path / "bin.png"
    cli.ok("print", "preview", "location", "BER-A-01", "--out", str(out_png))
    from PIL import Image
    with Image.open(out_png) as image:
        # bins takes location labels: 50 x 30 mm at 300 dpi
        assert image.size == (round(50 * 300 / 25.4), round(30 * 300 / 25.4))
    code, _, err = cli("printers", "status", "bench")
    assert code == 2 and "capture" in err
    zebra.stop()   # switched off: a clear error, not a traceback
    code, _, err = cli("printers", "status", "bins")
    assert code == 1 and err.startswith("error[error]: bins (127.0.0.1:") and "connection refused" in err


def test_po_receive_with_labels_queues_one_label_per_unit_in_the_same_transaction(printing):
    cli, _, printed = printing
    number = cli.ok("po", "create", "--supplier", "Tierfutter Nord GmbH", "--ship-to", "BER-DOCK").strip()
    cli.ok("po", "add", number, "DOG-DRY-5", "4")
    cli.ok("po", "add", number, "CAT-LITTER-10", "2")
    cli.ok("po", "send", number, "--no-email")
    out = said(cli, "po", "receive", number, "1:4:L7:2027-01-31", "--labels")
    assert "receiving labels queued" in out
    (job,) = cli.json("print", "queue", "list")
    assert job["label"] == "po_receiving" and job["copies"] == 4
    assert job["data"] | {} == {**job["data"], "po": number, "line": 1, "sku": "DOG-DRY-5", "lot": "L7",
                                "expiry": "2027-01-31", "supplier": "Tierfutter Nord GmbH"}
    # Refused receipt, no labels: the job is part of the receipt's transaction.
    code, _, _ = cli("po", "receive", number, "9:1", "--labels")
    assert code == 2 and len(cli.json("print", "queue", "list")) == 1
    spool(cli)
    assert len(list(printed.iterdir())) == 1


def test_cmd_print_at_a_station_labels_the_next_item_and_keeps_the_task(printing):
    cli, _, _ = printing
    app = open_app(load_config(cli.config))
    try:
        desk = StationDesk(app.db, app.ledger, config=app.config)
        at = [1_000.0]

        def scan(raw: str):
            at[0] += 1
            return desk.handle(Scan("dock-1", "test", raw, at[0]))

        assert scan("CMD-RECEIVE").level == "ok"
        assert scan("BER-A-01").level == "ok"
        armed = scan("CMD-PRINT")
        assert armed.level == "ok" and "label" in armed.prompt
        assert scan("QTY-2").level == "ok"
        printed = scan("4006381333931")
        assert printed.level == "ok" and "queued on bench" in printed.message and printed.movement_ids == ()
        after = scan("4006381333931")   # the next scan is a receipt again, into the same location
        assert after.level == "ok" and after.movement_ids and after.mode == "receive"
        jobs = [json.loads(row[0]) | {"copies": row[1], "station": row[2]} for row in app.db.execute_sql(
            "SELECT data, copies, station FROM print_job")]
        assert [(j["sku"], j["copies"], j["station"]) for j in jobs] == [("DOG-DRY-5", 2, "dock-1")]
        # A box without printers says so at the dock, and books nothing.
        bare = StationDesk(app.db, app.ledger)
        bare.handle(Scan("dock-2", "test", "CMD-PRINT", 2_000.0))
        refused = bare.handle(Scan("dock-2", "test", "BER-A-01", 2_001.0))
        assert refused.level == "error" and "No label printer" in refused.message
    finally:
        app.close()
