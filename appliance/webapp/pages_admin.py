"""The manager's pages: users (add, role, enable/disable, password, unlock, API tokens) and a read-only view of
the settings and sync status.

User changes go through appliance/access (users.py, api_tokens.py) and ledger/sites.add_user, which hold the
rules (the last manager stays a manager; a new password, role or disabling ends the user's sessions). An API
token is shown once, in the response that created it, and never put in the session or a flash message.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance import clock
from appliance.access import api_tokens, passwords
from appliance.access.roles import ROLES, role_at_most
from appliance.access import users as accounts
from appliance.config import render_effective
from appliance.errors import ApplianceError, InvalidInput
from appliance.ledger.models import ApiToken, User
from appliance.ledger.sites import add_user
from appliance.sync.status import sync_status
from appliance.webapp.auth import start_session
from appliance.webapp.movement_filters import local_time
from appliance.webapp.context import parts, principal, requires

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _user_or_404(login: str) -> User:
    user = User.get_or_none(User.login == login)
    if user is None:
        abort(404, description=_("There is no user %(login)s.", login=login))
    return user


def _site_time(ts: str | None) -> str:
    return local_time(ts, parts().config.site.timezone)


def _locked(user: User) -> bool:
    return bool(user.locked_until and user.locked_until > clock.now_ts())


def _keep_own_session(login: str) -> None:
    """Changing one's own password or role ends one's sessions too; this browser stays logged in."""
    if login == principal().login:
        user = User.get(User.login == login)
        if user.active:
            start_session(user)


@bp.route("/users")
@requires("manage_users")
def users():
    return _users_page({}, {})


def _users_page(values: dict, errors: dict, status: int = 200):
    rows = list(User.select().order_by(User.login))
    tokens = {}
    for token in ApiToken.select(ApiToken.login).where(ApiToken.revoked_at.is_null()):
        tokens[token.login] = tokens.get(token.login, 0) + 1
    return render_template("admin/users.html", users=rows, locked=_locked, tokens=tokens, roles=ROLES,
                           values=values, errors=errors, site_time=_site_time), status


@bp.route("/users", methods=["POST"])
@requires("manage_users")
def add():
    form = request.form
    values = {"login": form.get("login", "").strip().lower(), "name": form.get("name", "").strip(),
              "role": form.get("role", "staff")}
    password = form.get("password", "")
    try:
        # The password first: a user row without a usable password would only be a trap.
        passwords.check_strength(password, values["login"])
        add_user(parts().db, values["login"], name=values["name"], role=values["role"])
        accounts.set_password(parts().db, values["login"], password)
    except ApplianceError as error:
        field = error.details.get("field") or "login"
        return _users_page(values, {field: error.message}, 400)
    flash(_("User %(login)s added as %(role)s; they can log in now.", login=values["login"],
            role=_(values["role"])), "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<login>")
@requires("manage_users")
def user(login: str):
    return _user_page(_user_or_404(login))


def _user_page(user: User, new_token: str | None = None, new_token_name: str | None = None,
               errors: dict | None = None, status: int = 200):
    tokens = api_tokens.listing(user.login)
    token_roles = [role for role in ROLES if role_at_most(role, user.role)]
    return render_template("admin/user.html", user=user, locked=_locked(user), roles=ROLES, tokens=tokens,
                           token_roles=token_roles, new_token=new_token, new_token_name=new_token_name,
                           errors=errors or {}, site_time=_site_time), status


def _done(login: str, message: str):
    flash(message, "success")
    return redirect(url_for("admin.user", login=login))


def _refused(login: str, error: ApplianceError):
    flash(error.message, "error")
    return redirect(url_for("admin.user", login=login))


@bp.route("/users/<login>/role", methods=["POST"])
@requires("manage_users")
def change_role(login: str):
    _user_or_404(login)
    role = request.form.get("role", "")
    try:
        accounts.set_role(parts().db, login, role)
    except ApplianceError as error:
        return _refused(login, error)
    _keep_own_session(login)
    flash(_("%(login)s is now %(role)s.", login=login, role=_(role)), "success")
    if login == principal().login and role != "manager":
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("admin.user", login=login))


@bp.route("/users/<login>/active", methods=["POST"])
@requires("manage_users")
def change_active(login: str):
    _user_or_404(login)
    active = request.form.get("active") == "1"
    try:
        accounts.set_active(parts().db, login, active)
    except ApplianceError as error:
        return _refused(login, error)
    if active:
        return _done(login, _("%(login)s is enabled and can log in again.", login=login))
    if login == principal().login:
        return redirect(url_for("auth.login"))
    return _done(login, _("%(login)s is disabled: logged out everywhere, and their API tokens stop working.",
                          login=login))


@bp.route("/users/<login>/password", methods=["POST"])
@requires("manage_users")
def change_password(login: str):
    user = _user_or_404(login)
    password = request.form.get("password", "")
    try:
        if password != request.form.get("password_again", ""):
            raise InvalidInput(_("The two passwords differ."), field="password_again")
        accounts.set_password(parts().db, login, password)
    except ApplianceError as error:
        return _user_page(user, errors={error.details.get("field") or "password": error.message}, status=400)
    _keep_own_session(login)
    return _done(login, _("New password set for %(login)s; their other sessions are logged out.", login=login))


@bp.route("/users/<login>/unlock", methods=["POST"])
@requires("manage_users")
def unlock(login: str):
    _user_or_404(login)
    accounts.unlock(parts().db, login)
    return _done(login, _("%(login)s is unlocked.", login=login))


@bp.route("/users/<login>/tokens", methods=["POST"])
@requires("manage_users")
def create_token(login: str):
    user = _user_or_404(login)
    name = request.form.get("name", "")
    try:
        _row, token = api_tokens.create(parts().db, login, name, request.form.get("role") or None)
    except ApplianceError as error:
        return _user_page(user, errors={"token_" + (error.details.get("field") or "name"): error.message},
                          status=400)
    return _user_page(user, new_token=token, new_token_name=name.strip())


@bp.route("/users/<login>/tokens/<int:token_id>/revoke", methods=["POST"])
@requires("manage_users")
def revoke_token(login: str, token_id: int):
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None or row.login != login:
        abort(404, description=_("%(login)s has no API token %(id)s.", login=login, id=token_id))
    api_tokens.revoke(parts().db, token_id)
    return _done(login, _("Token %(name)s is revoked; it no longer works.", name=row.name))


def _database_files(path: Path) -> list[tuple[str, int]]:
    """The ledger file and its WAL beside it: together they are what the database takes on disk."""
    found = []
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            found.append((candidate.name, candidate.stat().st_size))
    return found


@bp.route("/settings")
@requires("settings")
def settings():
    config = parts().config
    conn = parts().db.connection()
    keys = conn.execute("SELECT kid, created_at, retired_at FROM site_key WHERE site_id = ? ORDER BY created_at",
                        (config.site.id,)).fetchall()
    files = _database_files(Path(config.database.path))
    return render_template("admin/settings.html", config_text=render_effective(config), sync=sync_status(conn),
                           keys=keys, db_path=config.database.path, db_files=files,
                           db_size=sum(size for _name, size in files), config_source=config.source,
                           site_time=_site_time)
