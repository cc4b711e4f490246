"""The sync commands through the real CLI, without a broker: what a box shows and records on its own."""

from __future__ import annotations

import json

import pytest
from test_cli import Cli

from appliance.errors import EXIT_FAILURE


@pytest.fixture
def boxes(tmp_path, capsys):
    ber = Cli(tmp_path / "ber" / "appliance.toml", capsys)
    waw = Cli(tmp_path / "waw" / "appliance.toml", capsys)
    for box, site in ((ber, "BER"), (waw, "WAW")):
        box.ok("init", "--site", site)
        box.ok("location", "add", f"{site}-A-01")
    ber.ok("site", "export-key", "--out", str(tmp_path / "ber.json"))
    waw.ok("site", "export-key", "--out", str(tmp_path / "waw.json"))
    ber.ok("site", "add", str(tmp_path / "waw.json"))
    waw.ok("site", "add", str(tmp_path / "ber.json"))
    return ber, waw


def test_sync_status_lists_every_registered_peer(boxes):
    ber, _ = boxes
    status = ber.json("sync", "status")
    assert status["site"] == "BER" and status["head"] == 0 and status["recovering"] is False
    assert [(p["site"], p["state"], p["applied"], p["lag_movements"]) for p in status["peers"]] == [
        ("WAW", "unknown", 0, 0)]
    text = ber.ok("sync", "status")
    assert "site BER: head 0" in text and "WAW" in text and "never" in text


def test_remote_reserve_without_an_answer_is_pending_and_a_retry_keeps_the_key(boxes):
    ber, _ = boxes
    code, out, err = ber("remote", "reserve", "DOG-5", "WAW-A-01", "2", "--wait", "0.1", "--key", "order-7")
    assert code == EXIT_FAILURE and out.startswith("PENDING order-7") and "same key" in err
    code, out, _ = ber("remote", "reserve", "DOG-5", "WAW-A-01", "2", "--wait", "0", "--key", "order-7")
    assert out.startswith("PENDING order-7")
    rows = ber.json("remote", "list")
    assert [(r["idem_key"], r["owner"], r["qty"], r["status"]) for r in rows] == [("order-7", "WAW", 2, "PENDING")]
    # The same key for another request is refused, naming the field.
    code, _, err = ber("remote", "reserve", "DOG-5", "WAW-A-01", "3", "--wait", "0", "--key", "order-7")
    assert code == 2 and "order-7" in err and "another request" in err


@pytest.mark.parametrize("args, message", [
    (["DOG-5", "BER-A-01", "1"], "this site's own location"),
    (["DOG-5", "PAR-A-01", "1"], "no registered site owns location PAR-A-01"),
    (["DOG 5", "WAW-A-01", "1"], "sku"),
    (["DOG-5", "WAW-A-01", "0"], "qty"),
])
def test_remote_reserve_refuses_bad_requests_before_recording_them(boxes, args, message):
    ber, _ = boxes
    code, _, err = ber("remote", "reserve", *args, "--wait", "0")
    assert code == 2 and message in err
    assert ber.json("remote", "list") == []


def test_check_config_shows_the_mqtt_section_with_the_password_masked(boxes, monkeypatch):
    ber, _ = boxes
    text = ber.config.read_text(encoding="utf-8") + '\n[mqtt]\nhost = "broker.lan"\n'
    ber.config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("APPLIANCE_MQTT_PASSWORD", "s3cret")
    shown = ber.ok("check-config")
    assert 'host = "broker.lan"' in shown and "s3cret" not in shown and '# password = "***"' in shown
