"""Who is asking: a session cookie (browsers) or `Authorization: Bearer wh_…` (scripts), checked each request.

The cookie holds the login and the user's `session_version`; a new password, a disabled account or a changed
role bumps the version, which ends every session of that user at its next request.
"""

from __future__ import annotations

import secrets

from flask import abort, g, request, session

from appliance.access import api_tokens
from appliance.access.users import principal_of
from appliance.ledger.models import User
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
    user = User.get_or_none(User.login == login)
    if user is None or not user.active or user.session_version != session.get("version"):
        session.clear()
        return
    g.principal = principal_of(user)


def start_session(user: User) -> None:
    """A fresh session (new CSRF token too), so a cookie planted before login is worth nothing after."""
    session.clear()
    session.permanent = True
    session["login"] = user.login
    session["version"] = user.session_version
    session["csrf"] = secrets.token_urlsafe(24)


def end_session() -> None:
    session.clear()
