"""POST /api/v1/movements from a script, answered before Flask builds a request.

A till, a web shop or an import script posts movements one by one with an API token; that is the one request
whose rate matters (issue 5: the API's posting rate is measured against the ledger's). Flask's request
context, hooks, JSON provider and response object cost about as much CPU as the ledger's own write, so this
WSGI middleware answers the common case itself with the same parsing, permission and posting functions as the
view (movements_post.py):

    a Bearer token that authenticates, a JSON body that parses, kinds the role may post, and a ledger that
    accepts the request  ->  201 with the same body and headers the view would send.

Everything else -- a session cookie, a bad token, a malformed body, a refused kind, a ledger error (nothing
was committed), a replayed op_id -- is handed to Flask with the body it read, so the one error handler writes
the one error shape in the user's language. A refused request therefore runs twice; the second run decides.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any, Callable, Iterable

import peewee

from appliance.access import api_tokens
from appliance.access.roles import allowed
from appliance.errors import ApplianceError
from appliance.webapp.api.movements_post import parse_request, refused_kind, submit
from appliance.webapp.api.shapes import movements_json

logger = logging.getLogger(__name__)

PATH = "/api/v1/movements"
MAX_FAST_BODY = 64 * 1024   # a batch of a few hundred movements; larger bodies take the ordinary path


class FastPostLane:
    """WSGI middleware in front of the Flask app's `wsgi_app` (so the test client goes through it too)."""

    def __init__(self, inner: Callable, app_parts, dumps: Callable[[Any], str], headers: dict[str, str]) -> None:
        self.inner = inner
        self.parts = app_parts
        self.dumps = dumps
        self.headers = [(name, value) for name, value in headers.items()] + [("Cache-Control", "no-store")]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.inner(environ, start_response)
        body = self._read(environ)
        if body is not None:
            answer = self._answer(environ, body)
            if answer is not None:
                start_response("201 CREATED", self.headers + [("Content-Type", "application/json"),
                                                              ("Content-Length", str(len(answer)))])
                return [answer]
            environ["wsgi.input"] = io.BytesIO(body)   # Flask reads it again
        return self.inner(environ, start_response)

    @staticmethod
    def _read(environ: dict) -> bytes | None:
        """The whole body when this request may take the lane, else None (nothing read)."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer ") or environ.get("CONTENT_TYPE", "").split(";")[0] != "application/json":
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None   # chunked or missing: Flask knows what to make of it
        if not 0 < length <= MAX_FAST_BODY:
            return None
        body = environ["wsgi.input"].read(length)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def _answer(self, environ: dict, body: bytes) -> bytes | None:
        """The 201 body, or None when Flask should answer (see the module docstring)."""
        who = api_tokens.authenticate(self.parts.db, environ["HTTP_AUTHORIZATION"][7:].strip())
        if who is None or not allowed(who.role, "view"):
            return None
        try:
            op_id, items, batch = parse_request(json.loads(body))
            if refused_kind(items, who.role) is not None:
                return None
            result = submit(self.parts.ledger, items, batch, who.login, op_id)
        except (ApplianceError, ValueError, peewee.DatabaseError):
            return None   # rolled back, nothing committed: Flask runs it again and renders the error
        if result.replayed:
            return None   # 409 duplicate_op with the earlier movements, from the view
        answer = {"movements": movements_json(result.movements, allowed(who.role, "see_costs")), "replayed": False}
        return (self.dumps(answer) + "\n").encode()
