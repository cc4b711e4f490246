"""Who is asking: a session cookie (browsers) or `Authorization: Bearer wh_…` (scripts), checked each request.

The cookie holds the login and the user's `session_version`; a new password, a disabled account or a changed
role bumps the version, which ends every session of that user at its next request.
"""

from __future__ import annotations

import secrets

from flask import abort, g, request, session

from appliance.access import api_tokens
from appliance.access.users import Principal
from appliance.webapp.context import parts


def load_principal() -> None:
    g.principal = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            abort(401)
        who = api_tokens.authenticate(parts().db, token.strip())
        if who is None:
            abort(401)
        g.principal = who
        return
    login = session.get("login")
    if not login:
        return
    # Plain SQL: every page and API call runs this, and the ORM's query building cost more than the query.
    row = parts().db.connection().execute(
        "SELECT name, role, active, session_version, language FROM app_user WHERE login = ?", (login,)).fetchone()
    if row is None or not row[2] or row[3] != session.get("version"):
        session.clear()
        return
    name, role, _active, _version, language = row
    g.principal = Principal(login=login, name=name or login, role=role, language=language)


def start_session(user) -> None:
    """A fresh session (new CSRF token too), so a cookie planted before login is worth nothing after."""
    session.clear()
    session.permanent = True
    session["login"] = user.login
    session["version"] = user.session_version
    session["csrf"] = secrets.token_urlsafe(24)


def end_session() -> None:
    session.clear()
