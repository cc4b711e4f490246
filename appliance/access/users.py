"""Users: passwords, enabling, roles, and logging in with throttling and lockout.

Two brakes on guessing, both in the database so every gunicorn worker sees them:
- per user: after `max_failures` wrong passwords in a row the account is locked for `lockout_s`;
- per client address: more than `max_failures * 4` failures within `lockout_s` block that address for
  `lockout_s`, whichever login it tries (one phone guessing many accounts).
A locked or blocked attempt is refused before the password is checked, with the same message either way for
unknown users and wrong passwords.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee

from appliance import clock
from appliance.access import passwords
from appliance.access.roles import ROLES
from appliance.errors import ApplianceError, InvalidInput, UnknownUser
from appliance.ledger.models import LoginThrottle, User

logger = logging.getLogger(__name__)


class LoginRefused(ApplianceError):
    code = "login_refused"
    http_status = 401


class LoginLocked(ApplianceError):
    code = "login_locked"
    http_status = 429


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_s: int = 900


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user, or an API token acting with its own (possibly narrower) role."""

    login: str
    name: str
    role: str
    via: str = "session"          # "session" or "token"
    token_id: int | None = None
    language: str | None = None


def _user(login: str) -> User:
    user = User.get_or_none(User.login == login)
    if user is None:
        raise UnknownUser(login)
    return user


def set_password(db: peewee.SqliteDatabase, login: str, password: str) -> None:
    passwords.check_strength(password, login)
    hashed = passwords.hash_password(password)  # slow: outside the write lock
    with db.atomic("IMMEDIATE"):
        user = _user(login)
        User.update(password_hash=hashed, failed_logins=0, locked_until=None,
                    session_version=user.session_version + 1).where(User.id == user.id).execute()
    logger.info("password of %s changed", login)


def set_active(db: peewee.SqliteDatabase, login: str, active: bool) -> None:
    with db.atomic("IMMEDIATE"):
        user = _user(login)
        if not active and user.role == "manager" and _other_active_managers(user) == 0:
            raise InvalidInput(f"{login} is the last active manager; make someone else manager first",
                               field="login")
        User.update(active=active, failed_logins=0, locked_until=None,
                    session_version=user.session_version + 1).where(User.id == user.id).execute()


def set_role(db: peewee.SqliteDatabase, login: str, role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    with db.atomic("IMMEDIATE"):
        user = _user(login)
        if user.role == "manager" and role != "manager" and user.active and _other_active_managers(user) == 0:
            raise InvalidInput(f"{login} is the last active manager", field="role")
        User.update(role=role, session_version=user.session_version + 1).where(User.id == user.id).execute()


def unlock(db: peewee.SqliteDatabase, login: str) -> None:
    """Lift a lockout early (a manager vouches for the person); sessions stay as they are."""
    with db.atomic("IMMEDIATE"):
        user = _user(login)
        User.update(failed_logins=0, locked_until=None).where(User.id == user.id).execute()


def _other_active_managers(user: User) -> int:
    return User.select().where(User.role == "manager", User.active == True, User.id != user.id).count()  # noqa: E712


def authenticate(db: peewee.SqliteDatabase, login: str, password: str, client: str,
                 policy: LoginPolicy = LoginPolicy(), now: datetime | None = None) -> User:
    """The user, or LoginRefused / LoginLocked. Every outcome is recorded before it is returned."""
    now = now or clock.utcnow()
    now_ts = clock.to_ts(now)
    throttle = LoginThrottle.get_or_none(LoginThrottle.client == client)
    if throttle is not None and throttle.blocked_until and throttle.blocked_until > now_ts:
        raise LoginLocked("too many failed logins from this device; try again later",
                          retry_after=_seconds_until(throttle.blocked_until, now))
    user = User.get_or_none(User.login == (login or "").strip().lower())
    if user is None:
        passwords.verify(None, password)  # as slow as a wrong password: no hint which logins exist
    if user is not None and user.locked_until and user.locked_until > now_ts:
        raise LoginLocked("this account is locked after too many wrong passwords; try again later or ask a "
                          "manager", retry_after=_seconds_until(user.locked_until, now))
    ok = user is not None and passwords.verify(user.password_hash, password)
    if not ok:
        _record_failure(db, user, client, policy, now)
        logger.warning("failed login for %r from %s", login, client)
        raise LoginRefused("wrong login or password")
    if not user.active:
        raise LoginRefused("this account is disabled")
    rehash = passwords.hash_password(password) if passwords.needs_rehash(user.password_hash) else None
    with db.atomic("IMMEDIATE"):
        changes = {User.failed_logins: 0, User.locked_until: None}
        if rehash:
            changes[User.password_hash] = rehash
        User.update(changes).where(User.id == user.id).execute()
        LoginThrottle.delete().where(LoginThrottle.client == client).execute()
    return user


def _record_failure(db, user: User | None, client: str, policy: LoginPolicy, now: datetime) -> None:
    now_ts = clock.to_ts(now)
    window_start = clock.to_ts(now - timedelta(seconds=policy.lockout_s))
    lock_until = clock.to_ts(now + timedelta(seconds=policy.lockout_s))
    with db.atomic("IMMEDIATE"):
        if user is not None:
            failures = User.get_by_id(user.id).failed_logins + 1
            locked = lock_until if failures >= policy.max_failures else None
            User.update(failed_logins=0 if locked else failures, locked_until=locked).where(
                User.id == user.id).execute()
            if locked:
                logger.warning("account %s locked until %s after %d failed logins", user.login, locked, failures)
        row = LoginThrottle.get_or_none(LoginThrottle.client == client)
        if row is None or row.window_start < window_start:
            LoginThrottle.replace(client=client, failures=1, window_start=now_ts, blocked_until=None).execute()
        else:
            failures = row.failures + 1
            blocked = lock_until if failures > policy.max_failures * 4 else None
            LoginThrottle.update(failures=failures, blocked_until=blocked).where(
                LoginThrottle.client == client).execute()


def _seconds_until(ts: str, now: datetime) -> int:
    return max(1, int((clock.parse_ts(ts) - now).total_seconds()) + 1)
