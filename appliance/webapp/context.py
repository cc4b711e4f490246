"""What a request handler needs: the appliance parts, who is asking, and the permission guard.

Handlers import these functions instead of reaching into `current_app`, so the set-up lives in one place
(`create_app`) and a handler reads as what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING

from flask import abort, current_app, g, redirect, request, url_for

from appliance.access.roles import allowed

if TYPE_CHECKING:
    from appliance.access.users import Principal
    from appliance.app import App
    from appliance.config import Config
    from appliance.webapp.events import ChangeFeed


@dataclass
class WebContext:
    parts: "App"
    feed: "ChangeFeed"

    @property
    def config(self) -> "Config":
        return self.parts.config


def web() -> WebContext:
    return current_app.extensions["appliance"]


def parts() -> "App":
    return web().parts


def principal() -> "Principal | None":
    return g.get("principal")


def can(permission: str) -> bool:
    who = principal()
    return who is not None and allowed(who.role, permission)


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def requires(permission: str):
    """Guard a view: anonymous pages go to the login form, anonymous API calls get 401, others 403."""
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            who = principal()
            if who is None:
                if is_api_request():
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not allowed(who.role, permission):
                abort(403)
            return view(*args, **kwargs)
        guarded.permission = permission
        return guarded
    return decorate
