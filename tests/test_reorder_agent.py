"""The whole loop in real processes: an `appliance agent` running, a ship posted by the CLI (another process)
crosses the reorder point of a product imported with its rule and supplier, and the agent's watcher raises the
alert and drafts the purchase order line; its delivery job emails the alert to a real SMTP server and posts it
to a real webhook receiver, once. The next ship below the point raises nothing new."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from notify_sinks import SmtpSink, WebhookSink
from test_scanning_e2e import appliance, box, eventually  # noqa: F401 (box is a fixture)

SKU = "DOG-DRY-5"          # demo data: reorder point 20, reorder qty 40, pack 4, supplier Tierfutter Nord GmbH
LATER = "DOG-DRY-15"       # demo data: reorder point 10, reorder qty 20, the same supplier


@pytest.fixture
def sinks():
    smtp, hook = SmtpSink().start(), WebhookSink().start()
    yield smtp, hook
    smtp.stop()
    hook.stop()


def alerts(config) -> list[dict]:
    return json.loads(appliance(config, "alerts", "list", "--json").stdout)


def drafts(config) -> list[dict]:
    return json.loads(appliance(config, "po", "list", "--status", "draft", "--json").stdout)


def test_the_agent_alerts_and_drafts_once_when_a_ship_from_another_process_crosses_the_point(box, sinks):
    smtp, hook = sinks
    text = box.read_text(encoding="utf-8")   # the starter config `init` wrote has an [alerts] table already
    text = text.replace("[alerts]\n", '[alerts]\nemail_to = "ops@example.com"\nemail_roles = ""\n', 1)
    text += (f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\nsender = "box@example.com"\n'
             f'\n[[webhook]]\nname = "chat"\nurl = "{hook.url}"\n')
    box.write_text(text, encoding="utf-8")
    appliance(box, "move", "receive", "--sku", SKU, "--location", "BER-A-01", "--qty", "30")
    appliance(box, "move", "receive", "--sku", LATER, "--location", "BER-A-01", "--qty", "12")
    agent = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(box), "--log-level", "INFO",
                              "agent"], cwd=box.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The watcher starts its cursor at the newest movement: wait until it has, so the ship is after it.
        eventually(lambda: appliance(box, "jobs", "list", "--json").returncode == 0 and _cursor_set(box),
                   what="the reorder watcher's cursor")
        appliance(box, "move", "ship", "--sku", SKU, "--location", "BER-A-01", "--qty", "12")
        low = eventually(lambda: [a for a in alerts(box) if a["kind"] == "low_stock"], what="the low-stock alert")
        assert [a["subject"] for a in low] == [f"{SKU}@BER"] and low[0]["severity"] == "warning"
        [draft] = eventually(lambda: drafts(box), what="the draft purchase order")
        order = json.loads(appliance(box, "po", "show", draft["number"], "--json").stdout)
        assert [(line["sku"], line["qty_ordered"]) for line in order["lines"]] == [(SKU, 40)]
        eventually(lambda: smtp.messages and hook.received, what="the alert email and webhook")

        appliance(box, "move", "ship", "--sku", SKU, "--location", "BER-A-01", "--qty", "1")
        # A ship that changes nothing leaves no trace; the watcher reads in order, so once a later crossing of
        # another product has its alert, the second ship has been read.
        appliance(box, "move", "ship", "--sku", LATER, "--location", "BER-A-01", "--qty", "3")
        eventually(lambda: [a for a in alerts(box) if a["subject"] == f"{LATER}@BER"], what="the later alert")
        appliance(box, "alerts", "deliver")
    finally:
        agent.terminate()
        output = agent.communicate(timeout=30)[0]
    assert agent.returncode == 0, output
    assert sorted(a["subject"] for a in alerts(box) if a["kind"] == "low_stock") == [f"{LATER}@BER", f"{SKU}@BER"]
    [draft] = drafts(box)   # one draft per supplier collects both
    order = json.loads(appliance(box, "po", "show", draft["number"], "--json").stdout)
    assert [(line["sku"], line["qty_ordered"]) for line in order["lines"]] == [(SKU, 40), (LATER, 20)]
    [(to, message)] = [m for m in smtp.messages if SKU + "@" in m[1]["Subject"]]
    assert to == ["ops@example.com"] and f"low stock {SKU}@BER" in message["Subject"]
    hooked = [json.loads(body)["alert"] for _, body in hook.received]
    assert sorted(a["subject"] for a in hooked) == [f"{LATER}@BER", f"{SKU}@BER"]
    # The watcher saved its cursor when the agent stopped: a restart does not read these movements again.
    assert _cursor_at_newest(box)


def _sql(config, query: str):
    import sqlite3
    db = config.parent / "data" / "appliance.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(query).fetchone()


def _cursor_set(config) -> bool:
    return _sql(config, "SELECT count(*) FROM agent_cursor WHERE name = 'reorder'")[0] == 1


def _cursor_at_newest(config) -> bool:
    return _sql(config, "SELECT (SELECT value FROM agent_cursor WHERE name = 'reorder')"
                        " = (SELECT max(id) FROM movement)")[0] == 1
