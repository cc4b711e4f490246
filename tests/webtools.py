"""Helpers for web tests: an app over a populated ledger file, one user per role, logging in like a browser.

- `make_web(tmp_path, **web)`: a `Web` (flask app, parts, config) over `tmp_path/ledger.db`, set up by
  `populate` and with the users of `USERS` (password `PASSWORD`); `web` keys override `[web]` settings.
- `Web.client(role)`: a Flask test client logged in as that role's user (`None`: anonymous).
- `csrf(client)`: the CSRF token of the client's session (from a page's meta tag).
- `token_for(web, role)`: an API token of that role's user.
Passwords are hashed with cheap Argon2 parameters in tests (`fast_passwords`), real ones in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from workers import SITE, SITE_KEY, populate

from appliance.access import api_tokens, passwords
from appliance.access.users import set_password
from appliance.app import App
from appliance.config import parse_config
from appliance.ledger.db import open_db
from appliance.ledger.service import Ledger
from appliance.ledger.sites import add_user

PASSWORD = "correct horse battery"
USERS = {"manager": "mia", "staff": "sam", "purchasing": "pat", "viewer": "vic"}
ROLES = tuple(USERS)


def fast_passwords() -> None:
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("not a password of anyone")


def web_config(db_path: Path, **web):
    return parse_config({"site": {"id": SITE, "name": "Berlin"}, "database": {"path": str(db_path)},
                         "web": {"advertise": False, **web}}, label="test", base_dir=db_path.parent)


@dataclass
class Web:
    app: object
    parts: App

    @property
    def db(self):
        return self.parts.db

    @property
    def ledger(self) -> Ledger:
        return self.parts.ledger

    def client(self, role: str | None = None):
        client = self.app.test_client()
        if role is not None:
            login(client, USERS[role])
        return client


def make_web(tmp_path: Path, **web) -> Web:
    from appliance.webapp import create_app
    fast_passwords()
    db_path = tmp_path / "ledger.db"
    config = web_config(db_path, **web)
    db = open_db(db_path)
    populate(db)
    for role, login_name in USERS.items():
        add_user(db, login_name, name=login_name.title(), role=role)
        set_password(db, login_name, PASSWORD)
    parts = App(config, db)
    parts._closers.append(db.close)
    parts.__dict__["ledger"] = Ledger(db, SITE, SITE_KEY)  # the fixed test key, not a key file
    return Web(create_app(config, parts), parts)


_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf(client) -> str:
    response = client.get("/login")
    if response.status_code == 302:  # logged in already: any page carries the token
        response = client.get("/")
    match = _META.search(response.get_data(as_text=True))
    assert match, f"no csrf meta tag on {response.request.path}"
    return match.group(1)


def login(client, login_name: str, password: str = PASSWORD):
    response = client.post("/login", data={"login": login_name, "password": password, "csrf_token": csrf(client)})
    assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:500])
    return response


def token_for(web: Web, role: str) -> str:
    _, token = api_tokens.create(web.db, USERS[role], f"test {role}")
    return token
