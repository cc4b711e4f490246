"""Logging in, sessions, CSRF, API tokens and the security headers of the web app (real ledger file)."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from webtools import PASSWORD, USERS, csrf, login, make_web, token_for

from appliance import clock
from appliance.access import api_tokens
from appliance.access.users import LoginLocked, LoginPolicy, LoginRefused, authenticate, set_active, set_password, \
    set_role
from appliance.errors import InvalidInput
from appliance.ledger.models import User
from appliance.webapp import secret_key


def test_anonymous_pages_go_to_the_login_form_and_the_api_answers_401(web):
    client = web.client()
    page = client.get("/?site=BER")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/?site%3DBER"
    api = client.get("/api/v1/stock")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "unauthorized"
    assert api.headers["WWW-Authenticate"].startswith("Bearer")


def test_login_then_logout(web):
    client = web.client()
    response = login(client, "sam")
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Sam" in home.get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_and_unknown_login_get_the_same_answer(web):
    client = web.client()
    token = csrf(client)
    wrong = client.post("/login", data={"login": "sam", "password": "not it at all", "csrf_token": token})
    unknown = client.post("/login", data={"login": "nobody", "password": "not it at all", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong login or password." in wrong.get_data(as_text=True)
    assert "Wrong login or password." in unknown.get_data(as_text=True)


def test_login_form_needs_its_csrf_token(web):
    response = web.client().post("/login", data={"login": "sam", "password": PASSWORD})
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)


def test_next_never_leaves_the_box(web):
    client = web.client()
    for target, expected in (("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/stock", "/stock")):
        response = client.post("/login", data={"login": "sam", "password": PASSWORD, "next": target,
                                               "csrf_token": csrf(client)})
        assert response.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf(client)})


def test_an_account_locks_after_repeated_wrong_passwords(web):
    policy = LoginPolicy(max_failures=3, lockout_s=600)
    start = clock.utcnow()
    for i in range(3):
        with pytest.raises(LoginRefused):
            authenticate(web.db, "sam", "wrong password", "10.0.0.5", policy, now=start + timedelta(seconds=i))
    with pytest.raises(LoginLocked) as locked:
        authenticate(web.db, "sam", PASSWORD, "10.0.0.6", policy, now=start + timedelta(seconds=10))
    assert 580 <= locked.value.details["retry_after"] <= 600
    # After the lockout the right password works again and the count starts afresh.
    user = authenticate(web.db, "sam", PASSWORD, "10.0.0.6", policy, now=start + timedelta(seconds=700))
    assert user.login == "sam" and User.get(User.login == "sam").failed_logins == 0


def test_a_device_guessing_many_logins_is_blocked(web):
    policy = LoginPolicy(max_failures=2, lockout_s=600)
    start = clock.utcnow()
    logins = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    for i, name in enumerate(logins):
        with pytest.raises(LoginRefused):
            authenticate(web.db, name, "guess guess", "10.0.0.9", policy, now=start + timedelta(seconds=i))
    with pytest.raises(LoginLocked):
        authenticate(web.db, "sam", PASSWORD, "10.0.0.9", policy, now=start + timedelta(seconds=20))
    # Another device is not affected.
    assert authenticate(web.db, "sam", PASSWORD, "10.0.0.10", policy, now=start + timedelta(seconds=20))


def test_locked_login_page_says_when_to_try_again(tmp_path):
    web = make_web(tmp_path, login_max_failures=2, login_lockout_s=600)
    try:
        client = web.client()
        for _ in range(2):
            client.post("/login", data={"login": "sam", "password": "wrong wrong", "csrf_token": csrf(client)})
        response = client.post("/login", data={"login": "sam", "password": PASSWORD, "csrf_token": csrf(client)})
        assert response.status_code == 429
        assert "Try again in 10 minutes" in response.get_data(as_text=True)
    finally:
        web.parts.close()


@pytest.mark.parametrize("change", ["password", "disable", "role"])
def test_changing_a_user_ends_their_sessions(web, change):
    client = web.client("staff")
    assert client.get("/").status_code == 200
    if change == "password":
        set_password(web.db, "sam", "another good password")
    elif change == "disable":
        set_active(web.db, "sam", False)
    else:
        set_role(web.db, "sam", "viewer")
    assert client.get("/").status_code == 302


def test_disabled_users_cannot_log_in(web):
    set_active(web.db, "sam", False)
    client = web.client()
    response = client.post("/login", data={"login": "sam", "password": PASSWORD, "csrf_token": csrf(client)})
    assert response.status_code == 401
    assert "disabled" in response.get_data(as_text=True)


def test_the_last_manager_stays(web):
    set_active(web.db, "admin", False)  # populate's admin is a manager too
    with pytest.raises(InvalidInput, match="last active manager"):
        set_active(web.db, "mia", False)
    with pytest.raises(InvalidInput, match="last active manager"):
        set_role(web.db, "mia", "staff")


def test_passwords_must_be_long_enough(web):
    with pytest.raises(InvalidInput, match="at least 10"):
        set_password(web.db, "sam", "short")
    User.update(login="longlogin12").where(User.login == "vic").execute()
    with pytest.raises(InvalidInput, match="may not be the login"):
        set_password(web.db, "longlogin12", "LongLogin12")


def test_api_tokens_act_with_their_role_and_stop_when_revoked(web):
    token = token_for(web, "staff")
    assert token.startswith("wh_")
    headers = {"Authorization": f"Bearer {token}"}
    client = web.client()
    assert client.get("/", headers=headers).status_code == 200
    # Token requests carry no cookie authority, so they need no CSRF token.
    row = api_tokens.listing("sam")[0]
    assert row.token_hash != token and len(row.token_hash) == 64
    assert row.last_used_at is not None
    api_tokens.revoke(web.db, row.id)
    assert client.get("/", headers=headers).status_code == 401


def test_a_token_is_never_wider_than_its_user_and_dies_with_the_user(web):
    with pytest.raises(InvalidInput, match="wider role"):
        api_tokens.create(web.db, "sam", "too much", role="manager")
    _, narrow = api_tokens.create(web.db, "mia", "read only", role="viewer")
    assert api_tokens.authenticate(web.db, narrow).role == "viewer"
    set_active(web.db, "sam", False)
    _, token = api_tokens.create(web.db, "sam", "script")
    assert api_tokens.authenticate(web.db, token) is None


@pytest.mark.parametrize("header", ["Bearer wh_not-a-real-token", "Basic c2FtOnB3", "Bearer "])
def test_bad_authorization_headers_get_401(web, header):
    response = web.client().get("/api/v1/stock", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_security_headers_and_cookie_flags(web):
    client = web.client()
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = login(client, "sam").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookies_when_configured(tmp_path):
    web = make_web(tmp_path, secure_cookies=True)
    try:
        client = web.client()
        response = client.post("/login", data={"login": "sam", "password": PASSWORD, "csrf_token": csrf(client)},
                               base_url="https://localhost")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        web.parts.close()


def test_the_session_key_is_made_once_and_kept_private(tmp_path):
    db_path = tmp_path / "data" / "ledger.db"
    db_path.parent.mkdir()
    first = secret_key.load(None, db_path)
    assert secret_key.load(None, db_path) == first
    assert stat.S_IMODE(secret_key.path_for(db_path).stat().st_mode) == 0o600
    assert secret_key.load("x" * 40, db_path) == "x" * 40
    with pytest.raises(Exception, match="at least 32"):
        secret_key.load("short", db_path)


@pytest.mark.parametrize("how, expected", [({"query_string": {"lang": "de"}}, "de"),
                                            ({"headers": {"Accept-Language": "pl-PL,pl;q=0.9"}}, "pl"),
                                            ({"headers": {"Accept-Language": "fr"}}, "en")])
def test_language_choice(web, how, expected):
    page = web.client().get("/login", **how).get_data(as_text=True)
    assert f'<html lang="{expected}">' in page


def test_every_role_has_a_user_in_the_test_set_up():
    assert set(USERS) == {"manager", "staff", "purchasing", "viewer"}


def test_no_page_or_script_loads_anything_from_the_internet():
    """Every script, style and font comes from the box (the CSP would block the rest): no absolute URL in web/,
    apart from XML namespace names, which are identifiers, never fetched."""
    from pathlib import Path
    import re
    web_dir = Path(__file__).resolve().parent.parent / "web"
    found = []
    for path in list(web_dir.rglob("*.html")) + list(web_dir.rglob("*.js")) + list(web_dir.rglob("*.css")) + \
            list(web_dir.rglob("*.svg")):
        text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(web_dir)}: {url}" for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}/",
                                                                                    text)]
    assert found == []
