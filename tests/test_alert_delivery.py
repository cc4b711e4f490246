"""Alert delivery to real local servers: an aiosmtpd SMTP server and an http.server webhook receiver.

Time is a parameter: each test passes `now` to deliver_due and moves it on to see the retries and the give-up.
`SmtpSink` and `WebhookSink` (tests/notify_sinks.py) are plain classes; the fixtures start and stop them, so no
socket or thread outlives its test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from notify_sinks import SmtpSink, WebhookSink, free_port
from workers import SITE_KEY, FakeClock, build_site

from appliance import clock
from appliance.app import open_app
from appliance.config import parse_config
from appliance.ledger.sites import add_user
from appliance.notify.alerts import Alert, Recipients, acknowledge, raise_alert, resolve_alert
from appliance.notify.delivery import deliver_due
from appliance.notify.digest import send_digest
from appliance.notify.mailer import MailError, send_email
from appliance.sync.identity import write_key_file
from appliance.sync.registry import key_path

SECRET = "hook secret 123"
T0 = FakeClock.START


def notify_config(db_path: Path, *, smtp_port: int | None = None, hooks=(), **alerts):
    data = {"site": {"id": "BER", "name": "Berlin"}, "database": {"path": str(db_path)},
            "alerts": {"email_to": "ops@example.com", "email_roles": "", "retry_base_s": 30, "retry_max_s": 600,
                       "give_up_hours": 2, **alerts},
            "webhook": list(hooks)}
    if smtp_port is not None:
        data["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "sender": "box@example.com",
                        "timeout_s": 5}
    return parse_config(data, label="test", base_dir=db_path.parent)


def open_notify_app(tmp_path: Path, **config):
    """A set-up Berlin database with its key file, opened as the agent opens it."""
    db_path = tmp_path / "ledger.db"
    if not db_path.exists():
        build_site(db_path)
        write_key_file(SITE_KEY, key_path(db_path))
    return open_app(notify_config(db_path, **config))


def raise_low_stock(app, now, severity: str = "", subject: str = "DOG-5@BER-A-01") -> int:
    with app.ledger.write() as ops:
        alert_id, _ = raise_alert(ops.conn, Alert("low_stock", subject, f"{subject}: 3 available, reorder point 5",
                                                  severity=severity, site="BER", detail={"available": 3}),
                                  clock.to_ts(now), Recipients(app.config))
    return alert_id


def deliveries(app) -> list[dict]:
    cur = app.db.connection().execute("SELECT * FROM alert_delivery ORDER BY id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


@pytest.fixture
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def hook_env(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("APPLIANCE_WEBHOOK_CHAT", SECRET)


@pytest.fixture
def webhook_sink():
    sink = WebhookSink().start()
    yield sink
    sink.stop()


def expected_signature(headers: dict[str, str], body: bytes) -> str:
    timestamp = headers["X-Appliance-Timestamp"]
    return "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_a_raised_alert_is_emailed_with_a_readable_subject_and_body(tmp_path, smtp_sink):
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port) as app:
        alert_id = raise_low_stock(app, T0)
        assert deliver_due(app, T0) == {"delivered": 1, "retrying": 0, "failed": 0}
        [(rcpt, message)] = smtp_sink.messages
        assert rcpt == ["ops@example.com"]
        assert message["Subject"] == "[BER] warning: low stock DOG-5@BER-A-01"
        assert message["From"] == "box@example.com"
        body = message.get_content()
        assert "DOG-5@BER-A-01: 3 available, reorder point 5" in body
        assert "Site:        BER" in body and "Severity:    warning" in body
        assert "First seen:  2026-03-02 08:00 UTC" in body
        assert f"appliance alerts ack {alert_id}" in body
        [row] = deliveries(app)
        assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 1, clock.to_ts(T0))
        # Nothing is due any more: a second run sends nothing.
        assert deliver_due(app, T0 + timedelta(hours=1)) == {"delivered": 0, "retrying": 0, "failed": 0}
        assert len(smtp_sink.messages) == 1


def test_a_resolved_alert_says_it_cleared(tmp_path, smtp_sink):
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port) as app:
        raise_low_stock(app, T0)
        with app.ledger.write() as ops:
            resolve_alert(ops.conn, "low_stock", "DOG-5@BER-A-01", clock.to_ts(T0 + timedelta(minutes=5)),
                          Recipients(app.config))
        assert deliver_due(app, T0 + timedelta(minutes=5))["delivered"] == 2
        subjects = [message["Subject"] for _, message in smtp_sink.messages]
        assert subjects == ["[BER] warning: low stock DOG-5@BER-A-01", "[BER] resolved: low stock DOG-5@BER-A-01"]
        assert "Cleared: this alert ended at 2026-03-02 08:05 UTC." in smtp_sink.messages[1][1].get_content()


def test_webhook_body_is_the_stored_payload_and_the_signature_verifies(tmp_path, hook_env, webhook_sink):
    hook = {"name": "chat", "url": webhook_sink.url, "secret_credential": "webhook-chat"}
    with open_notify_app(tmp_path, hooks=[hook]) as app:
        alert_id = raise_low_stock(app, T0)
        [row] = deliveries(app)
        assert (row["channel"], row["target"]) == ("webhook", "chat")
        assert deliver_due(app, T0)["delivered"] == 1
        [(headers, body)] = webhook_sink.received
        assert body == row["payload"].encode()
        payload = json.loads(body)
        assert payload["event"] == "raised" and payload["alert"]["id"] == alert_id
        assert payload["alert"]["kind"] == "low_stock" and payload["alert"]["detail"] == {"available": 3}
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Appliance-Delivery"] == str(row["id"])
        assert headers["X-Appliance-Timestamp"] == str(int(T0.timestamp()))
        assert headers["X-Appliance-Signature"] == expected_signature(headers, body)
        # The signature covers the body: one byte changed and it no longer verifies.
        assert headers["X-Appliance-Signature"] != expected_signature(headers, body.replace(b"3", b"4", 1))


def test_an_unsigned_webhook_has_no_signature_header(tmp_path, webhook_sink):
    with open_notify_app(tmp_path, hooks=[{"name": "tickets", "url": webhook_sink.url}]) as app:
        raise_low_stock(app, T0)
        assert deliver_due(app, T0)["delivered"] == 1
        [(headers, _)] = webhook_sink.received
        assert "X-Appliance-Signature" not in headers


def test_a_webhook_down_for_a_while_is_retried_with_backoff_and_received_once(tmp_path, hook_env):
    sink = WebhookSink()  # its port is chosen but nothing listens yet
    hook = {"name": "chat", "url": sink.url, "secret_credential": "webhook-chat"}
    with open_notify_app(tmp_path, hooks=[hook]) as app:
        raise_low_stock(app, T0)
        assert deliver_due(app, T0) == {"delivered": 0, "retrying": 1, "failed": 0}
        [row] = deliveries(app)
        assert row["attempts"] == 1 and "cannot connect" in row["last_error"]
        assert row["next_attempt_at"] == clock.to_ts(T0 + timedelta(seconds=30))
        # Not due before the backoff has passed.
        assert deliver_due(app, T0 + timedelta(seconds=29)) == {"delivered": 0, "retrying": 0, "failed": 0}
        sink.start()
        try:
            sink.status = 503   # up, but not well yet
            now = T0 + timedelta(seconds=30)
            assert deliver_due(app, now)["retrying"] == 1
            [row] = deliveries(app)
            assert row["attempts"] == 2 and "HTTP 503" in row["last_error"]
            assert row["next_attempt_at"] == clock.to_ts(now + timedelta(seconds=60))  # doubled
            sink.status = 200
            assert deliver_due(app, now + timedelta(seconds=60))["delivered"] == 1
            assert deliver_due(app, now + timedelta(hours=1))["delivered"] == 0
        finally:
            sink.stop()
        [row] = deliveries(app)
        assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
        ok = [body for headers, body in sink.received if headers["X-Appliance-Delivery"] == str(row["id"])]
        assert len(sink.received) == 2 and len(ok) == 2   # the 503 answer and the accepted one
        assert sink.status == 200


def test_the_backoff_stops_growing_at_retry_max(tmp_path):
    hook = {"name": "chat", "url": WebhookSink().url}
    with open_notify_app(tmp_path, hooks=[hook], retry_base_s=100, retry_max_s=300, give_up_hours=24) as app:
        raise_low_stock(app, T0)
        now, waits = T0, []
        for _ in range(4):
            deliver_due(app, now)
            [row] = deliveries(app)
            following = clock.parse_ts(row["next_attempt_at"])
            waits.append((following - now).total_seconds())
            now = following
        assert waits == [100, 200, 300, 300]


def test_a_delivery_failing_past_give_up_hours_is_marked_failed(tmp_path):
    hook = {"name": "chat", "url": WebhookSink().url}
    with open_notify_app(tmp_path, hooks=[hook], give_up_hours=2) as app:
        raise_low_stock(app, T0)
        assert deliver_due(app, T0 + timedelta(hours=1))["retrying"] == 1
        assert deliver_due(app, T0 + timedelta(hours=2, seconds=1)) == {"delivered": 0, "retrying": 0, "failed": 1}
        [row] = deliveries(app)
        assert row["status"] == "failed" and row["attempts"] == 2 and "cannot connect" in row["last_error"]
        assert deliver_due(app, T0 + timedelta(days=3))["failed"] == 0  # never tried again


def test_a_webhook_removed_from_the_config_fails_its_rows_with_that_reason(tmp_path, webhook_sink):
    with open_notify_app(tmp_path, hooks=[{"name": "old", "url": webhook_sink.url}]) as app:
        raise_low_stock(app, T0)
    with open_notify_app(tmp_path) as app:   # the same database, the webhook gone
        assert deliver_due(app, T0) == {"delivered": 0, "retrying": 0, "failed": 1}
        [row] = deliveries(app)
        assert row["status"] == "failed" and "webhook 'old' is no longer configured" in row["last_error"]
    assert webhook_sink.received == []


def test_a_failed_delivery_does_not_touch_stock(tmp_path):
    from appliance.ledger.requests import Move
    with open_notify_app(tmp_path, hooks=[{"name": "chat", "url": WebhookSink().url}]) as app:
        app.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=5))
        raise_low_stock(app, T0)
        before = app.db.connection().execute("SELECT * FROM stock ORDER BY 1").fetchall()
        assert deliver_due(app, T0 + timedelta(hours=3))["failed"] == 1
        assert app.db.connection().execute("SELECT * FROM stock ORDER BY 1").fetchall() == before
        # The ledger still takes movements: the outbox held no lock.
        app.ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=1))


def test_deliveries_are_queued_only_for_targets_whose_severity_floor_the_alert_meets(tmp_path, smtp_sink):
    hooks = [{"name": "chat", "url": "http://127.0.0.1:9/a", "severity": "info"},
             {"name": "pager", "url": "http://127.0.0.1:9/b", "severity": "critical"}]
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port, hooks=hooks, email_severity="warning") as app:
        raise_low_stock(app, T0, severity="info", subject="A@BER-A-01")
        raise_low_stock(app, T0, severity="warning", subject="B@BER-A-01")
        raise_low_stock(app, T0, severity="critical", subject="C@BER-A-01")
        raise_low_stock(app, T0, severity="critical", subject="C@BER-A-01")  # open already: no new delivery
        subjects = dict(app.db.connection().execute("SELECT id, subject FROM alert").fetchall())
        got = sorted((subjects[row["alert_id"]], row["channel"], row["target"]) for row in deliveries(app))
        assert got == [("A@BER-A-01", "webhook", "chat"),
                       ("B@BER-A-01", "email", "ops@example.com"), ("B@BER-A-01", "webhook", "chat"),
                       ("C@BER-A-01", "email", "ops@example.com"), ("C@BER-A-01", "webhook", "chat"),
                       ("C@BER-A-01", "webhook", "pager")]


def test_role_recipients_get_the_email(tmp_path, smtp_sink):
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port, email_to="", email_roles="manager") as app:
        add_user(app.db, "mia", role="manager")
        add_user(app.db, "sam", role="staff")
        with app.ledger.write() as ops:
            ops.conn.execute("UPDATE app_user SET email = login || '@example.com' WHERE login IN ('mia', 'sam')")
        raise_low_stock(app, T0)
        assert deliver_due(app, T0)["delivered"] == 1
        assert [rcpt for rcpt, _ in smtp_sink.messages] == [["mia@example.com"]]


def test_email_with_the_smtp_server_down_retries_and_arrives_once(tmp_path):
    sink = SmtpSink()
    with open_notify_app(tmp_path, smtp_port=sink.port) as app:
        raise_low_stock(app, T0)
        assert deliver_due(app, T0)["retrying"] == 1
        assert "cannot reach SMTP server 127.0.0.1" in deliveries(app)[0]["last_error"]
        sink.start()
        try:
            assert deliver_due(app, T0 + timedelta(seconds=30))["delivered"] == 1
            assert deliver_due(app, T0 + timedelta(hours=1))["delivered"] == 0
        finally:
            sink.stop()
        assert len(sink.messages) == 1


def test_the_digest_lists_open_alerts_once_per_recipient(tmp_path, smtp_sink):
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port, digest=True,
                         email_to="ops@example.com, boss@example.com") as app:
        assert send_digest(app, T0) == 0   # nothing open: nothing sent
        raise_low_stock(app, T0, subject="DOG-5@BER-A-01")
        critical = raise_low_stock(app, T0, severity="critical", subject="CAT-2@BER-A-02")
        gone = raise_low_stock(app, T0, subject="DOG-15@BER-A-01")
        with app.ledger.write() as ops:
            acknowledge(ops.conn, critical, "mia", clock.to_ts(T0))
            resolve_alert(ops.conn, "low_stock", "DOG-15@BER-A-01", clock.to_ts(T0), Recipients(app.config))
        assert [row for row in deliveries(app) if row["channel"] == "email"] == []  # no per-alert email
        assert send_digest(app, T0 + timedelta(hours=1)) == 2
        assert sorted(rcpt[0] for rcpt, _ in smtp_sink.messages) == ["boss@example.com", "ops@example.com"]
        message = smtp_sink.messages[0][1]
        assert message["Subject"] == "[BER] daily digest: 2 open alert(s), 1 critical"
        body = message.get_content()
        assert body.index("CAT-2@BER-A-02") < body.index("DOG-5@BER-A-01")  # critical first
        assert "acknowledged by mia" in body and "DOG-15" not in body and f"#{gone}" not in body
        rows = deliveries(app)
        assert {(r["event"], r["alert_id"], r["status"]) for r in rows} == {("digest", None, "delivered")}


def test_no_digest_when_it_is_off_or_smtp_is_missing(tmp_path, smtp_sink):
    with open_notify_app(tmp_path, smtp_port=smtp_sink.port) as app:
        raise_low_stock(app, T0)
        assert send_digest(app, T0) == 0
    with open_notify_app(tmp_path, digest=True) as app:
        assert send_digest(app, T0) == 0
        assert [r for r in deliveries(app) if r["event"] == "digest"] == []


def test_send_email_attachments_and_a_clear_error_when_refused(tmp_path, smtp_sink):
    config = notify_config(tmp_path / "x.db", smtp_port=smtp_sink.port)
    send_email(config.smtp, ["supplier@example.com"], "PO BER-PO-0001", "Please find attached.",
               [("BER-PO-0001.pdf", b"%PDF-1.4 test", "application/pdf")])
    [(rcpt, message)] = smtp_sink.messages
    assert rcpt == ["supplier@example.com"]
    assert message.get_body(("plain",)).get_content().rstrip() == "Please find attached."
    [part] = list(message.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "BER-PO-0001.pdf", "application/pdf", b"%PDF-1.4 test")
    down = notify_config(tmp_path / "x.db", smtp_port=free_port())
    with pytest.raises(MailError, match=r"cannot reach SMTP server 127\.0\.0\.1:\d+"):
        send_email(down.smtp, ["a@example.com"], "s", "t")


def test_delivery_refuses_to_run_inside_a_write(tmp_path):
    with open_notify_app(tmp_path) as app:
        with pytest.raises(RuntimeError, match="no transaction open"):
            with app.ledger.write():
                deliver_due(app, T0)


def test_a_row_claimed_by_another_worker_waits_for_its_lease(tmp_path, webhook_sink):
    """A worker claims a row by moving its next attempt a lease ahead; another worker leaves it alone until then."""
    with open_notify_app(tmp_path, hooks=[{"name": "chat", "url": webhook_sink.url}]) as app:
        raise_low_stock(app, T0)
        path = app.config.database.path
        other = sqlite3.connect(path)
        try:   # what the first worker's claim wrote: due again only after the lease
            with other:
                other.execute("UPDATE alert_delivery SET next_attempt_at = ?",
                              (clock.to_ts(T0 + timedelta(seconds=70)),))
        finally:
            other.close()
        assert deliver_due(app, T0)["delivered"] == 0
        assert deliver_due(app, T0 + timedelta(seconds=71))["delivered"] == 1
        assert len(webhook_sink.received) == 1
