"""`appliance user ...`: passwords, disabling, roles and API tokens from the command line."""

from __future__ import annotations

import io
import json

import pytest
from webtools import fast_passwords

from appliance.access import api_tokens
from appliance.access.users import authenticate
from appliance.cli import main
from appliance.ledger.db import open_db


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    fast_passwords()
    config = tmp_path / "appliance.toml"

    def call(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err
    assert call("init", "--site", "BER", "--site-name", "Berlin")[0] == 0
    call.db_path = tmp_path / "data" / "appliance.db"
    return call


def test_add_with_a_password_then_log_in(run):
    code, out, _ = run("user", "add", "jan", "--name", "Jan", "--role", "staff", "--password-stdin",
                       stdin="dock password 1\n")
    assert code == 0 and out.strip() == "jan"
    db = open_db(run.db_path)
    try:
        assert authenticate(db, "jan", "dock password 1", "test").login == "jan"
    finally:
        db.close()
    users = {u["login"]: u for u in json.loads(run("user", "list", "--json")[1])}
    assert users["jan"]["has_password"] and not users["admin"]["has_password"]


def test_passwd_refuses_a_weak_password_and_names_the_rule(run):
    code, _, err = run("user", "passwd", "admin", "--password-stdin", stdin="short\n")
    assert code == 2
    assert "at least 10 characters" in err


def test_passwd_without_a_terminal_or_stdin_flag_says_how(run, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run("user", "passwd", "admin")
    assert code == 2 and "--password-stdin" in err


def test_disable_enable_and_role(run):
    run("user", "add", "jan", "--password-stdin", stdin="dock password 1\n")
    assert run("user", "disable", "jan")[0] == 0
    assert not {u["login"]: u for u in json.loads(run("user", "list", "--json")[1])}["jan"]["active"]
    assert run("user", "enable", "jan")[0] == 0
    assert run("user", "role", "jan", "viewer")[0] == 0
    assert {u["login"]: u for u in json.loads(run("user", "list", "--json")[1])}["jan"]["role"] == "viewer"
    code, _, err = run("user", "disable", "admin")
    assert code == 2 and "last active manager" in err
    code, _, err = run("user", "disable", "nobody")
    assert code == 2 and "unknown user" in err


def test_tokens_are_printed_once_listed_without_the_secret_and_revocable(run):
    code, out, err = run("user", "token", "create", "admin", "--name", "shop sync", "--role", "staff")
    token = out.strip()
    assert code == 0 and token.startswith("wh_") and "shown only now" in err
    listed = json.loads(run("user", "token", "list", "--json")[1])
    assert listed[0]["name"] == "shop sync" and listed[0]["role"] == "staff"
    assert token not in json.dumps(listed)
    db = open_db(run.db_path)
    try:
        assert api_tokens.authenticate(db, token).role == "staff"
        assert run("user", "token", "revoke", str(listed[0]["id"]))[0] == 0
        assert api_tokens.authenticate(db, token) is None
    finally:
        db.close()
    code, _, err = run("user", "token", "create", "admin", "--name", "")
    assert code == 2 and "name" in err
