"""The session cookie, for browsers only: a request with an `Authorization` header neither reads nor writes it.

A script's Bearer token is its whole authority (auth.py), so unpacking and re-signing a cookie on each of its
requests would be work for nothing, and a token request must never pick up, or hand out, a browser session.
Such a request gets an empty session that lives as long as the request.
"""

from __future__ import annotations

from flask import request
from flask.sessions import SecureCookieSessionInterface


class BrowserSessions(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if "Authorization" in request.headers:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if "Authorization" in request.headers:
            return
        super().save_session(app, session, response)
