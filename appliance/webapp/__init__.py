"""The LAN web UI and JSON API: `create_app(config)` builds the Flask app that gunicorn serves.

The web process only reads and posts through the ledger; it never starts scanner readers, MQTT or the
scheduler (gunicorn forks several workers, and each would run its own copy). Templates, styles, scripts and
fonts live in the top-level `web/` folder and are all served by the box: no asset comes from the internet.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, request

from appliance import __version__
from appliance.app import App, open_app
from appliance.config import Config
from appliance.webapp import auth, csrf, errors, i18n, secret_key
from appliance.webapp.api.fast_post import FastPostLane
from appliance.webapp.sessions import BrowserSessions
from appliance.webapp.context import WebContext, can, principal
from appliance.webapp.events import ChangeFeed
from appliance.webapp.navigation import nav_links

logger = logging.getLogger(__name__)

WEB_DIR = Path(os.environ.get("APPLIANCE_WEB_DIR") or Path(__file__).resolve().parents[2] / "web")
MAX_BODY = 8 * 1024 * 1024  # a product photo; API batches are far smaller
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Everything is served from the box; camera access is for the dock screen's own origin only.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'",
}


def create_app(config: Config, parts: App | None = None) -> Flask:
    if not (WEB_DIR / "templates").is_dir():
        raise RuntimeError(f"web templates not found in {WEB_DIR}: set APPLIANCE_WEB_DIR to the web/ folder")
    parts = parts or open_app(config)
    app = Flask("appliance.webapp", template_folder=str(WEB_DIR / "templates"),
                static_folder=str(WEB_DIR / "static"), static_url_path="/static")
    web = config.web
    app.config.update(
        SECRET_KEY=secret_key.load(web.secret_key, config.database.path),
        SESSION_COOKIE_NAME="appliance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=MAX_BODY,
        JSON_SORT_KEYS=False,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.session_interface = BrowserSessions()
    app.extensions["appliance"] = WebContext(parts=parts, feed=ChangeFeed(config.database.path))
    i18n.init(app, default=web.language, compiled=Path(config.database.path).parent / "translations")

    @app.before_request
    def _who_and_csrf():
        auth.load_principal()
        csrf.protect()

    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if principal() is not None and not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def _template_globals():
        return {"who": principal(), "can": can, "csrf_field": csrf.field, "csrf_token": csrf.token,
                "site": config.site, "version": __version__, "languages": i18n.LANGUAGES,
                "current_language": i18n.current_language(), "nav_links": nav_links}

    errors.register(app)
    from appliance.webapp import blueprints
    for blueprint in blueprints.all_blueprints():
        app.register_blueprint(blueprint)

    @app.teardown_appcontext
    def _forget(_exc):
        g.pop("principal", None)

    app.wsgi_app = FastPostLane(app.wsgi_app, parts, app.json.dumps, SECURITY_HEADERS)
    return app
