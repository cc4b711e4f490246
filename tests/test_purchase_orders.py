"""Purchase orders through the CLI: create, add, send (a real local SMTP server), partial receipts with
over- and under-delivery, cancel, PDF; the ledger movements reference the order line."""

from __future__ import annotations

import json

import pytest
from notify_sinks import SmtpSink

from appliance.cli import main


@pytest.fixture
def run(tmp_path, capsys):
    config = tmp_path / "appliance.toml"

    def call(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err
    assert call("init", "--site", "BER", "--site-name", "Berlin")[0] == 0
    call.config = config
    return call


@pytest.fixture
def smtp(run):
    """A real SMTP server, and the box's [smtp] section pointing at it."""
    sink = SmtpSink().start()
    with open(run.config, "a", encoding="utf-8") as f:
        f.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "none"\nsender = "stock@shop.test"\n')
    yield sink
    sink.stop()


def ok(run, *args) -> str:
    code, out, err = run(*args)
    assert code == 0, (args, out, err)
    return out


def setup_catalog(run, tmp_path):
    sheet = tmp_path / "catalog.csv"
    sheet.write_text("sku,name,product_sku,variant_name,cost_price\nDOG-5,Dog food,DOG,5 kg,12.99\n"
                     "CAT-2,Cat litter,CAT,2 kg,3.50\n", encoding="utf-8")
    ok(run, "import", "products", str(sheet))
    ok(run, "location", "add", "BER-A-01")


def test_order_lifecycle_with_partial_receipts_and_variances(run, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Acme Feed", "--email", "orders@acme.test", "--lead-time-days", "3")
    number = ok(run, "po", "create", "--supplier", "Acme Feed", "--ship-to", "BER-A-01").strip()
    assert number == "BER-PO-0001"
    ok(run, "po", "add", number, "DOG-5", "10")
    ok(run, "po", "add", number, "CAT-2", "4", "--unit-cost", "300")
    ok(run, "po", "send", number, "--no-email")
    order = json.loads(ok(run, "po", "show", number, "--json"))
    assert order["status"] == "sent" and order["expected_on"]
    assert [(l["sku"], l["qty_ordered"], l["unit_cost"]) for l in order["lines"]] == [("DOG-5", 10, 1299),
                                                                                      ("CAT-2", 4, 300)]
    ok(run, "po", "receive", number, "1:6:L1:2027-01-31")
    assert json.loads(ok(run, "po", "show", number, "--json"))["status"] == "partial"
    ok(run, "po", "receive", number, "1:5", "2:3")            # one more DOG than ordered: over-delivered
    order = json.loads(ok(run, "po", "show", number, "--json"))
    assert order["status"] == "partial"                       # CAT line still waits for 1
    received = [e for e in order["events"] if e["kind"] == "received"]
    assert json.loads(received[1]["detail"])["variances"] == [{"line": 1, "sku": "DOG-5", "over": 1}]
    ok(run, "po", "cancel", number, "--reason", "supplier out of stock")
    order = json.loads(ok(run, "po", "show", number, "--json"))
    assert order["status"] == "received"                      # closed: the rest was cancelled
    cancelled = json.loads([e for e in order["events"] if e["kind"] == "cancelled"][0]["detail"])
    assert cancelled["under_delivered"] == [{"line": 2, "short": 1}]
    stock = json.loads(ok(run, "stock", "--lots", "--json"))
    by_sku = {(row["sku"], row.get("lot", "")): row["on_hand"] for row in stock}
    assert by_sku[("DOG-5", "L1")] == 6 and by_sku[("DOG-5", "")] == 5 and by_sku[("CAT-2", "")] == 3
    history = ok(run, "history", "--sku", "DOG-5")
    assert f"{number}/1" in history


def test_receiving_a_cancelled_order_or_a_bad_line_is_refused_with_the_reason(run, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Acme Feed")
    number = ok(run, "po", "create", "--supplier", "Acme Feed").strip()
    ok(run, "po", "add", number, "DOG-5", "2")
    code, _out, err = run("po", "receive", number, "7:1")
    assert code == 2 and "no line 7" in err
    code, _out, err = run("po", "receive", number, "1-1")
    assert code == 2 and "LINE:QTY" in err
    ok(run, "po", "cancel", number)
    code, _out, err = run("po", "receive", number, "1:1")
    assert code != 0 and "cancelled" in err
    code, _out, err = run("po", "show", "BER-PO-0999")
    assert code != 0 and "no purchase order" in err


def test_send_emails_the_pdf_to_the_supplier(run, smtp, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Acme Feed", "--email", "orders@acme.test")
    number = ok(run, "po", "create", "--supplier", "Acme Feed").strip()
    ok(run, "po", "add", number, "DOG-5", "12")
    ok(run, "po", "send", number)
    assert len(smtp.messages) == 1
    _recipients, message = smtp.messages[0]
    assert "orders@acme.test" in message["To"] and number in message["Subject"]
    attachments = [part for part in message.iter_attachments()]
    assert attachments[0].get_filename() == f"{number}.pdf"
    assert attachments[0].get_content().startswith(b"%PDF")
    assert json.loads(ok(run, "po", "show", number, "--json"))["status"] == "sent"


def test_pdf_is_written(run, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Łódź Supplies")
    number = ok(run, "po", "create", "--supplier", "Łódź Supplies").strip()
    ok(run, "po", "add", number, "DOG-5", "1")
    out = tmp_path / "po.pdf"
    ok(run, "po", "pdf", number, "--out", str(out))
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    # The order number as a Code 39 barcode for the dock: 5 bars per character with the two '*' guards, in a
    # row as wide as the code, top right.
    import re
    import zlib
    drawn = b"".join(zlib.decompress(stream) for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
                     if stream[:1] == b"x")
    bars = [tuple(map(float, m)) for m in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) (-?[\d.]+) re f", drawn)
            if abs(abs(float(m[3])) - 12 * 72 / 25.4) < 0.1]
    assert len(bars) == 5 * (len(number) + 2)
    narrow = 0.3 * 72 / 25.4
    assert {round(width / narrow) for _, _, width, _ in bars} == {1, 3}
    span = max(x + w for x, _, w, _ in bars) - min(x for x, _, _, _ in bars)
    assert abs(span - ((len(number) + 2) * 16 - 1) * narrow) < 0.5


def test_list_filters_by_supplier_and_status(run, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Acme Feed")
    ok(run, "supplier", "add", "Cat Co")
    acme = ok(run, "po", "create", "--supplier", "Acme Feed").strip()
    cat = ok(run, "po", "create", "--supplier", "Cat Co").strip()
    ok(run, "po", "add", cat, "CAT-2", "1")
    ok(run, "po", "cancel", cat)

    def numbers(*args):
        return [row["number"] for row in json.loads(ok(run, "po", "list", "--json", *args))]

    assert numbers() == [cat, acme]
    assert numbers("--supplier", "Cat Co") == [cat]
    assert numbers("--status", "open") == [acme]
    assert numbers("--status", "open", "--supplier", "Cat Co") == []


def test_send_checks_the_order_and_the_address_before_any_email(run, smtp, tmp_path):
    setup_catalog(run, tmp_path)
    ok(run, "supplier", "add", "Acme Feed", "--email", "orders@acme.test")
    number = ok(run, "po", "create", "--supplier", "Acme Feed").strip()
    code, _out, err = run("po", "send", number)
    assert code == 2 and "has no lines" in err
    ok(run, "po", "add", number, "DOG-5", "1")
    code, _out, err = run("po", "send", number, "--to", "orders at acme")
    assert code == 2 and "not an email address" in err
    ok(run, "po", "send", number, "--to", "sales@acme.test")
    assert [recipients for recipients, _message in smtp.messages] == [["sales@acme.test"]]
