"""Log in, log out, and the health probe."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.access.users import LoginLocked, LoginPolicy, LoginRefused, authenticate
from appliance.webapp.auth import end_session, start_session
from appliance.webapp.context import parts, principal

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only paths on this box: `?next=https://evil.example/` must not turn the login into a redirector."""
    if not target:
        return url_for("dashboard.index")
    split = urlsplit(target)
    if split.scheme or split.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if principal() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    web = parts().config.web
    policy = LoginPolicy(max_failures=web.login_max_failures, lockout_s=web.login_lockout_s)
    login_name = request.form.get("login", "").strip().lower()
    try:
        user = authenticate(parts().db, login_name, request.form.get("password", ""),
                            client=request.remote_addr or "unknown", policy=policy)
    except LoginLocked as error:
        return render_template("login.html", next=request.form.get("next", ""), login=login_name,
                               error=_("Too many failed attempts. Try again in %(minutes)s minutes.",
                                       minutes=max(1, error.details["retry_after"] // 60))), 429
    except LoginRefused as error:
        message = _("This account is disabled.") if "disabled" in error.message else \
            _("Wrong login or password.")
        return render_template("login.html", next=request.form.get("next", ""), login=login_name,
                               error=message), 401
    start_session(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    end_session()
    flash(_("You are logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/healthz")
def health():
    parts().db.execute_sql("SELECT 1")
    return jsonify({"ok": True})
