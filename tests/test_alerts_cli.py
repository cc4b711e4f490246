"""`appliance alerts ...` and `appliance user email`: a real config file, a real database, a real SMTP server."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from notify_sinks import SmtpSink, WebhookSink, free_port
from test_alert_delivery import T0, raise_low_stock
from test_cli import Cli
from workers import SITE_KEY, build_site

from appliance import clock
from appliance.app import open_app
from appliance.config import load_config
from appliance.ledger.sites import add_user
from appliance.notify.alerts import Recipients, resolve_alert
from appliance.sync.identity import write_key_file
from appliance.sync.registry import key_path


class Run(Cli):
    def __init__(self, tmp_path, capsys) -> None:
        super().__init__(tmp_path / "appliance.toml", capsys)
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "data" / "appliance.db"
        self.db_path.parent.mkdir()
        build_site(self.db_path)
        write_key_file(SITE_KEY, key_path(self.db_path))
        self.write_config()

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(f'[site]\nid = "BER"\nname = "Berlin"\n\n[database]\npath = "{self.db_path}"\n\n'
                               f'[alerts]\nemail_to = "ops@example.com"\nemail_roles = ""\n\n{extra}')

    def app(self):
        return open_app(load_config(self.config))


@pytest.fixture
def run(tmp_path, capsys) -> Run:
    return Run(tmp_path, capsys)


@pytest.fixture
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def smtp_section(port: int) -> str:
    return f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nsender = "box@example.com"\ntimeout_s = 5\n'


def test_list_shows_open_alerts_and_all_with_the_flag(run):
    assert run.json("alerts", "list") == []
    with run.app() as app:
        first = raise_low_stock(app, T0, subject="DOG-5@BER-A-01")
        second = raise_low_stock(app, T0 + timedelta(minutes=1), severity="critical", subject="CAT-2@BER-A-02")
        with app.ledger.write() as ops:
            resolve_alert(ops.conn, "low_stock", "DOG-5@BER-A-01", clock.to_ts(T0 + timedelta(minutes=2)),
                          Recipients(app.config))
    rows = run.json("alerts", "list")
    assert [(r["id"], r["state"], r["severity"], r["subject"]) for r in rows] == [
        (second, "open", "critical", "CAT-2@BER-A-02")]
    assert [r["id"] for r in run.json("alerts", "list", "--all")] == [second, first]
    assert run.json("alerts", "list", "--all", "--kind", "out_of_stock") == []
    table = run.ok("alerts", "list").splitlines()
    assert table[0].split()[:4] == ["id", "severity", "kind", "subject"]
    assert "CAT-2@BER-A-02" in table[2] and "critical" in table[2]
    code, _, err = run("alerts", "list", "--kind", "low-stock")
    assert code == 2 and "unknown alert kind 'low-stock'" in err and "low_stock" in err


def test_ack_records_the_first_acknowledgement_once(run):
    with run.app() as app:
        add_user(app.db, "mia", role="manager")
        add_user(app.db, "sam", role="staff")
        alert_id = raise_low_stock(app, T0)
    code, _, err = run("alerts", "ack", str(alert_id), "--user", "mia")
    assert code == 0 and "acknowledged by mia" in err
    code, _, err = run("alerts", "ack", str(alert_id), "--user", "sam")
    assert code == 0 and "already acknowledged by mia" in err
    [row] = run.json("alerts", "list")
    assert row["acknowledged_by"] == "mia" and row["acknowledged_at"]
    code, _, err = run("alerts", "ack", "999")
    assert code == 2 and "unknown alert 999" in err
    code, _, err = run("alerts", "ack", str(alert_id), "--user", "nobody")
    assert code == 2 and "unknown user 'nobody'" in err


def test_deliver_sends_what_is_due_and_deliveries_show_the_log(run, smtp_sink):
    dead = WebhookSink()   # nothing listens on its port
    run.write_config(smtp_section(smtp_sink.port) + f'\n[[webhook]]\nname = "chat"\nurl = "{dead.url}"\n')
    with run.app() as app:
        alert_id = raise_low_stock(app, clock.utcnow() - timedelta(seconds=1))
    code, _, err = run("alerts", "deliver")
    assert code == 0 and "1 delivered, 1 to retry, 0 failed" in err
    assert [rcpt for rcpt, _ in smtp_sink.messages] == [["ops@example.com"]]
    log = {r["channel"]: r for r in run.json("alerts", "deliveries")}
    assert log["email"]["status"] == "delivered" and log["email"]["alert_id"] == alert_id
    assert log["webhook"]["status"] == "pending" and "cannot connect" in log["webhook"]["last_error"]
    assert run.json("alerts", "deliveries", "--failed") == []
    table = run.ok("alerts", "deliveries")
    assert "ops@example.com" in table and "delivered" in table and "chat" in table
    # A second run right away: the webhook waits for its backoff, the email is done.
    assert "0 delivered, 0 to retry, 0 failed" in run("alerts", "deliver")[2]
    # The webhook entry removed: its row is given up with the reason, and --failed lists it.
    run.write_config(smtp_section(smtp_sink.port))
    with sqlite3.connect(run.db_path) as conn:
        conn.execute("UPDATE alert_delivery SET next_attempt_at = '2000-01-01T00:00:00.000000Z'")
    conn.close()
    assert "0 delivered, 0 to retry, 1 failed" in run("alerts", "deliver")[2]
    [failed] = run.json("alerts", "deliveries", "--failed")
    assert failed["target"] == "chat" and "no longer configured" in failed["last_error"]


def test_test_email_sends_one_email_and_says_why_when_it_cannot(run, smtp_sink):
    code, _, err = run("alerts", "test-email", "me@example.com")
    assert code == 2 and "[smtp]" in err
    run.write_config(smtp_section(smtp_sink.port))
    code, _, err = run("alerts", "test-email", "me@example.com")
    assert code == 0 and "test email sent to me@example.com" in err
    [(rcpt, message)] = smtp_sink.messages
    assert rcpt == ["me@example.com"] and message["Subject"] == "[BER] test email from the warehouse appliance"
    assert "Berlin (BER)" in message.get_content()
    code, _, err = run("alerts", "test-email", "not-an-address")
    assert code == 2 and "not-an-address" in err
    run.write_config(smtp_section(free_port()))
    code, _, err = run("alerts", "test-email", "me@example.com")
    assert code == 1 and "error[mail_failed]: cannot reach SMTP server 127.0.0.1" in err


def _email_of(run, login):
    with sqlite3.connect(run.db_path) as conn:
        row = conn.execute("SELECT email FROM app_user WHERE login = ?", (login,)).fetchone()
    conn.close()
    return row[0]


def test_user_email_is_set_on_add_changed_and_cleared(run):
    assert run.ok("user", "add", "mia", "--role", "manager", "--email", "mia@example.com").strip() == "mia"
    assert _email_of(run, "mia") == "mia@example.com"
    run.ok("user", "email", "mia", "boss@example.com")
    assert _email_of(run, "mia") == "boss@example.com"
    run.ok("user", "email", "mia", "")
    assert _email_of(run, "mia") is None
    code, _, err = run("user", "email", "mia", "boss at example")
    assert code == 2 and "email 'boss at example'" in err
    code, _, err = run("user", "email", "nobody", "a@example.com")
    assert code == 2 and "unknown user 'nobody'" in err
    code, _, err = run("user", "add", "sam", "--email", "nope")
    assert code == 2 and "email 'nope'" in err
    assert [u["login"] for u in run.json("user", "list")] == ["admin", "mia"]


def test_a_role_email_set_from_the_cli_gets_alert_emails(run, smtp_sink):
    run.write_config(smtp_section(smtp_sink.port))
    run.config.write_text(run.config.read_text().replace('email_to = "ops@example.com"\nemail_roles = ""',
                                                         'email_roles = "manager"'))
    run.ok("user", "add", "mia", "--role", "manager", "--email", "mia@example.com")
    run.ok("user", "add", "sam", "--role", "staff", "--email", "sam@example.com")
    with run.app() as app:
        raise_low_stock(app, clock.utcnow() - timedelta(seconds=1))
    assert "1 delivered" in run("alerts", "deliver")[2]
    assert [rcpt for rcpt, _ in smtp_sink.messages] == [["mia@example.com"]]
