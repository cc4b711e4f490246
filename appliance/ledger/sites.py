"""Set-up writes outside the movement ledger: the local site, its locations, users."""

from __future__ import annotations

import re
from collections.abc import Iterable

import peewee

from appliance import clock
from appliance.errors import InvalidInput, RuleViolation, UnknownLocation
from appliance.ledger.models import Location, Site, User

SITE_ID = re.compile(r"^[A-Z][A-Z0-9]{1,7}$")
# Codes scanned from labels must survive every keyboard layout a gun may emulate (see DESIGN.md §4).
LOCATION_CODE = re.compile(r"^[A-Z0-9][A-Z0-9.-]{0,39}$")
LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")


def owns(prefix: str | None, code: str) -> bool:
    """The location prefix rule of the site registry: prefix BER owns BER, BER-A-01 and BER.X but not
    BERLIN-1; a prefix that ends in '-' or '.' is taken as it is."""
    if not prefix:
        return False
    if prefix.endswith(("-", ".")):
        return code.startswith(prefix)
    return code == prefix or (code.startswith(prefix) and code[len(prefix)] in "-.")


def owner_by_prefix(prefixes: Iterable[tuple[str, str | None]], code: str) -> str | None:
    """The site whose location prefix owns `code` (the longest prefix wins), from (site, prefix) pairs."""
    matches = [(len(prefix), site) for site, prefix in prefixes if owns(prefix, code)]
    return max(matches)[1] if matches else None


def init_site(db: peewee.SqliteDatabase, site_id: str, name: str, admin_login: str = "admin") -> bool:
    """Create the local site and a first manager. Returns False when the database was already initialised."""
    if not SITE_ID.fullmatch(site_id):
        raise InvalidInput(f"site id {site_id!r} must be 2-8 upper-case letters/digits starting with a letter",
                           field="site")
    with db.atomic("IMMEDIATE"):
        local = Site.get_or_none(Site.is_local == True)  # noqa: E712 (peewee expression)
        if local is not None:
            if local.id != site_id:
                raise RuleViolation(f"this database belongs to site {local.id}, not {site_id}",
                                    site=local.id)
            return False
        Site.insert(id=site_id, name=name, is_local=True, created_at=clock.now_ts()).on_conflict(
            conflict_target=[Site.id], update={Site.is_local: True, Site.name: name}).execute()
        if not User.select().where(User.login == admin_login).exists():
            User.create(login=admin_login, name="Administrator", role="manager")
    return True


def add_location(db: peewee.SqliteDatabase, site_id: str, code: str, name: str = "", kind: str = "bin",
                 parent: str | None = None) -> Location:
    code = code.strip()
    if not LOCATION_CODE.fullmatch(code):
        raise InvalidInput(f"location code {code!r} may use only upper-case letters, digits, '-' and '.' "
                           "(so that it scans the same on every keyboard layout), at most 40", field="code")
    if kind not in Location.KINDS:
        raise InvalidInput(f"location kind {kind!r} is not one of {', '.join(Location.KINDS)}", field="kind")
    with db.atomic("IMMEDIATE"):
        if Location.select().where(Location.code == code).exists():
            raise InvalidInput(f"location {code} exists already", field="code")
        parent_row = None
        if parent:
            parent_row = Location.get_or_none(Location.code == parent)
            if parent_row is None:
                raise UnknownLocation(parent)
            if parent_row.site_id != site_id:
                raise InvalidInput(f"parent {parent} belongs to site {parent_row.site_id}", field="parent")
        return Location.create(code=code, site=site_id, name=name, kind=kind, parent=parent_row)


def add_user(db: peewee.SqliteDatabase, login: str, name: str = "", role: str = "staff") -> User:
    if not LOGIN.fullmatch(login):
        raise InvalidInput(f"login {login!r}: use 1-32 lower-case letters, digits, '.', '_' or '-'", field="login")
    if role not in User.ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(User.ROLES)}", field="role")
    with db.atomic("IMMEDIATE"):
        if User.select().where(User.login == login).exists():
            raise InvalidInput(f"user {login} exists already", field="login")
        return User.create(login=login, name=name, role=role)
