"""API tokens for integrations and scripts: shown once, stored as a SHA-256, revocable, scoped to a role.

A token looks like `wh_<43 base64url characters>` (256 random bits); the prefix lets secret scanners and
people recognise one. The role may be the user's or narrower, and a disabled user's tokens stop working.
"""

from __future__ import annotations

import hashlib
import secrets

import peewee

from appliance import clock
from appliance.access.roles import ROLES, role_at_most
from appliance.access.users import Principal
from appliance.errors import InvalidInput, NotFound, UnknownUser
from appliance.ledger.models import ApiToken, User

PREFIX = "wh_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: peewee.SqliteDatabase, login: str, name: str, role: str | None = None) -> tuple[ApiToken, str]:
    """A new token row and the token itself, which is never stored and cannot be shown again."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        raise InvalidInput("a token needs a name of 1-80 characters (what uses it, e.g. 'shop sync')",
                           field="name")
    with db.atomic("IMMEDIATE"):
        user = User.get_or_none(User.login == login)
        if user is None:
            raise UnknownUser(login)
        role = role or user.role
        if role not in ROLES:
            raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
        if not role_at_most(role, user.role):
            raise InvalidInput(f"a token of {login} ({user.role}) cannot have the wider role {role}", field="role")
        token = PREFIX + secrets.token_urlsafe(32)
        row = ApiToken.create(login=login, name=name.strip(), role=role, token_hash=_digest(token),
                              created_at=clock.now_ts())
    return row, token


def revoke(db: peewee.SqliteDatabase, token_id: int) -> ApiToken:
    with db.atomic("IMMEDIATE"):
        row = ApiToken.get_or_none(ApiToken.id == token_id)
        if row is None:
            raise NotFound(f"unknown API token {token_id}", token_id=token_id)
        if row.revoked_at is None:
            ApiToken.update(revoked_at=clock.now_ts()).where(ApiToken.id == token_id).execute()
    return ApiToken.get_by_id(token_id)


def listing(login: str | None = None) -> list[ApiToken]:
    query = ApiToken.select().order_by(ApiToken.id)
    if login:
        query = query.where(ApiToken.login == login)
    return list(query)


def authenticate(db: peewee.SqliteDatabase, token: str) -> Principal | None:
    """The principal a presented token acts as, or None (unknown, revoked, or its user disabled)."""
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > 200:
        return None
    # Plain SQL: this runs on every API request, and building the query through the ORM cost more than a post.
    row = db.connection().execute(
        "SELECT t.id, t.login, t.role, t.revoked_at, t.last_used_at, u.name, u.active, u.role FROM api_token t"
        " JOIN app_user u ON u.login = t.login WHERE t.token_hash = ?", (_digest(token),)).fetchone()
    if row is None:
        return None
    token_id, login, token_role, revoked_at, last_used_at, user_name, active, user_role = row
    if revoked_at is not None or not active:
        return None
    role = token_role if role_at_most(token_role, user_role) else user_role
    now = clock.now_ts()
    if (last_used_at or "")[:16] != now[:16]:  # at most one write a minute per token
        try:
            ApiToken.update(last_used_at=now).where(ApiToken.id == token_id).execute()
        except peewee.OperationalError:
            pass  # busy: last-used is a hint, never worth failing a request for
    return Principal(login=login, name=user_name or login, role=role, via="token", token_id=token_id)
