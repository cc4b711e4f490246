"""The manager's pages: users (add, role, disable, password, unlock, API tokens) and the settings view."""

from __future__ import annotations

import html
import re

import pytest
from webtools import PASSWORD, USERS, csrf, login
from workers import FOREIGN_KEY, register_key

from appliance import clock
from appliance.access import api_tokens
from appliance.ledger.models import ApiToken, User

_FLASH = re.compile(r'<p class="flash flash-(\w+)"[^>]*>([^<]*)</p>')
_FIELD_ERROR = re.compile(r'<span class="field-error" role="alert">([^<]*)</span>')
_TOKEN = re.compile(r'<p class="token-once" id="new-token">(wh_[A-Za-z0-9_-]+)</p>')
NEW_PASSWORD = "a new and long secret"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf(client), **data})


def flash_after(client, response) -> list[tuple[str, str]]:
    assert response.status_code == 302, (response.status_code, text(response)[:1000])
    return _FLASH.findall(text(client.get(response.headers["Location"])))


def logged_out(client) -> bool:
    response = client.get("/movements")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def can_log_in(web, login_name: str, password: str = PASSWORD) -> bool:
    client = web.client()
    response = client.post("/login", data={"login": login_name, "password": password, "csrf_token": csrf(client)})
    return response.status_code == 302


@pytest.mark.parametrize("role", ["staff", "purchasing", "viewer"])
def test_only_a_manager_reaches_the_admin_pages(web, role):
    client = web.client(role)
    for url in ("/admin/users", "/admin/users/sam", "/admin/settings"):
        assert client.get(url).status_code == 403, url
    assert post(client, "/admin/users", login="eve", role="manager", password=NEW_PASSWORD).status_code == 403
    assert post(client, "/admin/users/mia/role", role="viewer").status_code == 403
    assert post(client, "/admin/users/sam/tokens", name="x").status_code == 403
    assert User.get_or_none(User.login == "eve") is None
    assert User.get(User.login == "mia").role == "manager"
    assert web.client().get("/admin/users").status_code == 302


def test_the_user_list_shows_logins_roles_and_states(web):
    User.update(active=False).where(User.login == "vic").execute()
    User.update(locked_until="2999-01-01T00:00:00.000000Z").where(User.login == "pat").execute()
    page = text(web.client("manager").get("/admin/users"))
    for login_name in USERS.values():
        assert f'href="/admin/users/{login_name}"' in page
    vic = page[page.index('href="/admin/users/vic"'):]
    assert "disabled" in vic[:vic.index("</tr>")]
    pat = page[page.index('href="/admin/users/pat"'):]
    assert "locked" in pat[:pat.index("</tr>")]


def test_a_manager_adds_a_user_who_can_then_log_in(web):
    client = web.client("manager")
    response = post(client, "/admin/users", login="Nia", name="Nia N", role="purchasing", password=NEW_PASSWORD)
    [(category, message)] = flash_after(client, response)
    assert category == "success" and "nia" in message
    user = User.get(User.login == "nia")
    assert (user.name, user.role, user.active) == ("Nia N", "purchasing", True)
    newcomer = web.client()
    login(newcomer, "nia", NEW_PASSWORD)
    assert newcomer.get("/movements").status_code == 200
    assert newcomer.get("/book/receive").status_code == 200
    assert newcomer.get("/book/ship").status_code == 403


@pytest.mark.parametrize("fields, error", [
    (dict(login="nia", role="staff", password="short"), "the password needs at least 10 characters"),
    (dict(login="sam", role="staff", password=NEW_PASSWORD), "user sam exists already"),
    (dict(login="no spaces", role="staff", password=NEW_PASSWORD),
     "login 'no spaces': use 1-32 lower-case letters, digits, '.', '_' or '-'"),
    (dict(login="nia", role="boss", password=NEW_PASSWORD),
     "role 'boss' is not one of manager, staff, purchasing, viewer"),
])
def test_adding_a_user_with_bad_input_names_the_problem_and_keeps_the_form(web, fields, error):
    response = post(web.client("manager"), "/admin/users", name="Someone", **fields)
    assert response.status_code == 400
    assert _FIELD_ERROR.findall(text(response)) == [error]
    assert 'value="Someone"' in text(response)
    assert User.select().count() == len(USERS) + 1   # the four of webtools and populate's admin


def test_disabling_a_user_logs_them_out_and_enabling_lets_them_back(web):
    sam = web.client("staff")
    assert sam.get("/movements").status_code == 200
    manager = web.client("manager")
    [(category, _)] = flash_after(manager, post(manager, "/admin/users/sam/active", active="0"))
    assert category == "success"
    assert logged_out(sam)
    assert not can_log_in(web, "sam")
    flash_after(manager, post(manager, "/admin/users/sam/active", active="1"))
    assert can_log_in(web, "sam")


def test_the_last_manager_can_be_neither_disabled_nor_demoted(web):
    manager = web.client("manager")
    # populate's "admin" is a manager too: with it disabled, mia is the last one.
    assert flash_after(manager, post(manager, "/admin/users/admin/active", active="0"))[0][0] == "success"
    [(category, message)] = flash_after(manager, post(manager, "/admin/users/mia/active", active="0"))
    assert (category, message) == ("error", "mia is the last active manager; make someone else manager first")
    [(category, message)] = flash_after(manager, post(manager, "/admin/users/mia/role", role="staff"))
    assert (category, message) == ("error", "mia is the last active manager")
    mia = User.get(User.login == "mia")
    assert (mia.active, mia.role) == (True, "manager")
    assert manager.get("/admin/users").status_code == 200


def test_changing_a_role_ends_the_users_sessions_and_takes_effect(web):
    sam = web.client("staff")
    manager = web.client("manager")
    flash_after(manager, post(manager, "/admin/users/sam/role", role="viewer"))
    assert User.get(User.login == "sam").role == "viewer"
    assert logged_out(sam)
    login(sam, "sam")
    assert sam.get("/book/ship").status_code == 403


def test_a_manager_who_hands_over_stays_logged_in_with_the_new_role(web):
    manager = web.client("manager")
    flash_after(manager, post(manager, "/admin/users/sam/role", role="manager"))
    response = post(manager, "/admin/users/mia/role", role="staff")
    assert response.headers["Location"] == "/"
    assert manager.get("/movements").status_code == 200
    assert manager.get("/admin/users").status_code == 403


def test_a_new_password_works_and_the_old_one_no_longer_does(web):
    sam = web.client("staff")
    manager = web.client("manager")
    flash_after(manager, post(manager, "/admin/users/sam/password", password=NEW_PASSWORD,
                              password_again=NEW_PASSWORD))
    assert logged_out(sam)
    assert not can_log_in(web, "sam", PASSWORD)
    assert can_log_in(web, "sam", NEW_PASSWORD)


@pytest.mark.parametrize("password, again, field_error", [
    ("short", "short", "the password needs at least 10 characters"),
    (NEW_PASSWORD, NEW_PASSWORD + "!", "The two passwords differ."),
])
def test_a_bad_new_password_is_refused(web, password, again, field_error):
    response = post(web.client("manager"), "/admin/users/sam/password", password=password, password_again=again)
    assert response.status_code == 400
    assert _FIELD_ERROR.findall(text(response)) == [field_error]
    assert can_log_in(web, "sam", PASSWORD)


def test_a_manager_changing_their_own_password_stays_logged_in(web):
    manager = web.client("manager")
    flash_after(manager, post(manager, "/admin/users/mia/password", password=NEW_PASSWORD,
                              password_again=NEW_PASSWORD))
    assert manager.get("/admin/users").status_code == 200
    assert can_log_in(web, "mia", NEW_PASSWORD)


def test_unlock_lets_a_locked_user_log_in_again(web):
    for _ in range(web.parts.config.web.login_max_failures):
        assert not can_log_in(web, "sam", "wrong password!")
    assert User.get(User.login == "sam").locked_until > clock.now_ts()
    assert not can_log_in(web, "sam", PASSWORD)
    manager = web.client("manager")
    assert "Unlock" in text(manager.get("/admin/users/sam"))
    [(category, _)] = flash_after(manager, post(manager, "/admin/users/sam/unlock"))
    assert category == "success"
    assert can_log_in(web, "sam", PASSWORD)


def test_a_token_is_shown_once_authenticates_and_stops_when_revoked(web):
    manager = web.client("manager")
    response = post(manager, "/admin/users/sam/tokens", name="shop sync", role="staff")
    assert response.status_code == 200
    token = _TOKEN.search(response.get_data(as_text=True)).group(1)
    who = api_tokens.authenticate(web.db, token)
    assert (who.login, who.role, who.via) == ("sam", "staff", "token")
    page = text(manager.get("/admin/users/sam"))
    assert token not in page and "shop sync" in page
    # The session cookie never carried it either (Flask's cookie is signed, not encrypted).
    assert token not in response.headers.get("Set-Cookie", "")
    row = ApiToken.get(ApiToken.name == "shop sync")
    [(category, _)] = flash_after(manager, post(manager, f"/admin/users/sam/tokens/{row.id}/revoke"))
    assert category == "success"
    assert api_tokens.authenticate(web.db, token) is None
    assert "revoked" in text(manager.get("/admin/users/sam"))


def test_a_token_may_have_a_narrower_role_never_a_wider_one(web):
    manager = web.client("manager")
    response = post(manager, "/admin/users/mia/tokens", name="reports", role="viewer")
    token = _TOKEN.search(response.get_data(as_text=True)).group(1)
    assert api_tokens.authenticate(web.db, token).role == "viewer"
    wider = post(manager, "/admin/users/sam/tokens", name="too much", role="manager")
    assert wider.status_code == 400
    assert _FIELD_ERROR.findall(text(wider)) == ["a token of sam (staff) cannot have the wider role manager"]
    nameless = post(manager, "/admin/users/sam/tokens", name=" ", role="staff")
    assert nameless.status_code == 400
    assert ApiToken.select().where(ApiToken.login == "sam").count() == 0


def test_a_token_of_another_user_cannot_be_revoked_through_this_one(web):
    row, token = api_tokens.create(web.db, "sam", "scanner")
    manager = web.client("manager")
    assert post(manager, f"/admin/users/pat/tokens/{row.id}/revoke").status_code == 404
    assert api_tokens.authenticate(web.db, token) is not None


def test_settings_show_the_configuration_sync_and_database(web):
    register_key(web.db, FOREIGN_KEY)
    web.db.execute_sql("INSERT INTO sync_peer (site_id, state, last_heard, head_seq) VALUES ('WAW', 'online', ?, 3)",
                       ("2026-03-02T08:00:00.000000Z",))
    page = text(web.client("manager").get("/admin/settings"))
    config = page[page.index('<pre class="config-text">'):page.index("</pre>")]
    assert "[site]" in config and 'id = "BER"' in config and "[database]" in config
    assert "edited on the box" in page
    assert str(web.parts.config.database.path) in page
    assert web.ledger.signer.key.kid in page
    peers = page[page.index("<h2>Sync</h2>"):page.index("<h3>Alarms</h3>")]
    assert "WAW" in peers and "online" in peers and "2026-03-02 09:00:00" in peers   # Berlin time
    assert "No sync alarms." in page


def test_settings_mask_secrets(tmp_path, monkeypatch):
    from webtools import make_web
    secret = "a-session-signing-key-that-nobody-may-read-0123456789"
    monkeypatch.setenv("APPLIANCE_WEB_SECRET_KEY", secret)
    made = make_web(tmp_path)
    try:
        assert made.parts.config.web.secret_key == secret
        page = text(made.client("manager").get("/admin/settings"))
        assert secret not in page
        assert '# secret_key = "***"' in page
    finally:
        made.app.extensions["appliance"].feed.stop()
        made.parts.close()
