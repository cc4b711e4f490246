"""CSRF protection for everything a browser can send with its cookie.

Every POST/PUT/PATCH/DELETE that would act with the session cookie must carry the session's token, as the
`csrf_token` form field (templates: `{{ csrf_field() }}`) or the `X-CSRF-Token` header (fetch() from our
scripts). Requests with an API token carry no cookie authority, so they need none.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, g, request, session
from markupsafe import Markup, escape

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def token() -> str:
    value = session.get("csrf")
    if not value:
        value = session["csrf"] = secrets.token_urlsafe(24)
    return value


def field() -> Markup:
    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(token())}">')


def protect() -> None:
    if request.method not in UNSAFE:
        return
    who = g.get("principal")
    if who is not None and who.via == "token":
        return
    if who is None and request.path.startswith("/api/"):
        return  # nobody to act as: the view answers 401, which says more than a CSRF failure
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        abort(400, description="csrf")
