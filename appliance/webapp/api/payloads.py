"""Reading API requests: JSON bodies and query strings, field by field, every problem collected.

A request with several bad fields gets one 400 that names them all in `details.fields` ({field: message}),
fields of a batch item by their path (`movements[2].qty`), so a client fixes everything in one round trip.
Unknown fields and query parameters are errors too: a typo (`skus=`) must not silently mean "no filter".
"""

from __future__ import annotations

import re
from typing import Any

from flask import request, url_for
from flask_babel import gettext as _

from appliance import clock
from appliance.errors import InvalidInput, RuleViolation

MAX_INT = 2 ** 63 - 1
MAX_TEXT = 500
# Accepted anywhere, read by the language selector (i18n.py), never an error.
GLOBAL_QUERY = frozenset({"lang"})


class _Missing:
    """An absent or bad field: falsy, so `value or default` reads it as absent."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class DuplicateOp(RuleViolation):
    """The request was posted before under this op_id: nothing new was written, here is what was."""

    code = "duplicate_op"

    def __init__(self, op_id: str, movements: list[dict[str, Any]]) -> None:
        super().__init__(_("op_id %(op_id)r was already posted with this request; nothing new was written",
                           op_id=op_id), op_id=op_id, movements=movements)


def invalid(errors: dict[str, str]) -> InvalidInput:
    """One error for every bad field; the message lists the first few so a person reading a log sees them."""
    shown = "; ".join(f"{name}: {message}" for name, message in list(errors.items())[:5])
    more = len(errors) - 5
    if more > 0:
        shown += " " + _("(and %(count)d more)", count=more)
    return InvalidInput(shown, field=next(iter(errors)), fields=dict(errors))


class Fields:
    """One JSON object read field by field. Problems go to `errors` (shared by the items of a batch) under
    the field's path; a bad field reads as MISSING, so callers build nothing from it."""

    def __init__(self, data: Any, prefix: str = "", errors: dict[str, str] | None = None) -> None:
        self.errors = errors if errors is not None else {}
        self.prefix = prefix
        if isinstance(data, dict):
            self.data = data
        else:
            self.data = {}
            self.errors[prefix or "body"] = _("must be a JSON object")

    def path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, message: str) -> Any:
        self.errors.setdefault(self.path(name), message)
        return MISSING

    def has(self, name: str) -> bool:
        return name in self.data

    def only(self, allowed) -> None:
        allowed = tuple(allowed)
        for name in self.data:
            if name not in allowed:
                self.fail(name, _("unknown field; the fields are %(fields)s", fields=", ".join(allowed)))

    def _get(self, name: str, required: bool, nullable: bool) -> tuple[bool, Any]:
        """(True, value) for a value to check further; (False, result) when the field is absent, null or bad."""
        if name not in self.data:
            return False, (self.fail(name, _("required")) if required else MISSING)
        value = self.data[name]
        if value is None:
            if nullable:
                return False, None
            return False, self.fail(name, _("required") if required else _("must not be null"))
        return True, value

    def text(self, name: str, *, required: bool = False, nullable: bool = False, default: Any = MISSING,
             max_len: int = MAX_TEXT) -> Any:
        given, value = self._get(name, required, nullable)
        if not given:
            return default if value is MISSING and name not in self.data else value
        if not isinstance(value, str):
            return self.fail(name, _("must be text, not %(value)s", value=_shown(value)))
        if required and not value.strip():
            return self.fail(name, _("required"))
        if len(value) > max_len:
            return self.fail(name, _("must be at most %(count)d characters", count=max_len))
        return value

    def integer(self, name: str, *, required: bool = False, nullable: bool = False, default: Any = MISSING,
                minimum: int | None = None, maximum: int = MAX_INT) -> Any:
        given, value = self._get(name, required, nullable)
        if not given:
            return default if value is MISSING and name not in self.data else value
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(name, _("must be a whole number, not %(value)s", value=_shown(value)))
        if minimum is not None and value < minimum:
            return self.fail(name, _("must be at least %(minimum)d, not %(value)d", minimum=minimum, value=value))
        if value > maximum:
            return self.fail(name, _("must be at most %(maximum)d, not %(value)d", maximum=maximum, value=value))
        return value

    def boolean(self, name: str, *, default: Any = MISSING) -> Any:
        given, value = self._get(name, False, False)
        if not given:
            return default if value is MISSING and name not in self.data else value
        if not isinstance(value, bool):
            return self.fail(name, _("must be true or false, not %(value)s", value=_shown(value)))
        return value

    def op_id(self) -> Any:
        value = self.text("op_id", nullable=True, default=None, max_len=128)
        if isinstance(value, str) and (not value or not value.isprintable()):
            return self.fail("op_id", _("must be 1-128 printable characters"))
        return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise invalid(errors)


def json_body(*, empty_ok: bool = False) -> Any:
    """The parsed JSON body; a clear 400 for a missing, mislabelled or malformed one. `empty_ok`: no body at
    all reads as {} (a release with nothing to say)."""
    if empty_ok and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise InvalidInput(_("send a JSON body with Content-Type: application/json"), field="body")
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput(_("the body is not valid JSON"), field="body")
    return data


class Query:
    """The query string read the same way: each parameter once, unknown ones refused."""

    def __init__(self, *allowed: str) -> None:
        self.errors: dict[str, str] = {}
        for name in request.args:
            if name not in allowed and name not in GLOBAL_QUERY:
                self.errors[name] = _("unknown parameter; the parameters are %(names)s", names=", ".join(allowed))

    def _one(self, name: str) -> str | None:
        values = request.args.getlist(name)
        if len(values) > 1:
            self.errors[name] = _("give this parameter once")
            return None
        return values[0] if values else None

    def text(self, name: str, max_len: int = 200) -> str | None:
        value = self._one(name)
        if value is None or value == "":
            return None
        if len(value) > max_len:
            self.errors[name] = _("must be at most %(count)d characters", count=max_len)
            return None
        if "\x00" in value:   # no code or name holds one, and SQLite's full-text query parser stops at it
            self.errors[name] = _("must not contain the NUL character")
            return None
        return value

    def choice(self, name: str, choices) -> str | None:
        value = self.text(name)
        if value is not None and value not in choices:
            self.errors[name] = _("%(value)s is not one of %(choices)s", value=_shown(value),
                                  choices=", ".join(choices))
            return None
        return value

    def integer(self, name: str, default: int | None, minimum: int, maximum: int = MAX_INT) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?[0-9]{1,19}", value):
            self.errors[name] = _("must be a whole number, not %(value)s", value=_shown(value))
            return default
        number = int(value)
        if not minimum <= number <= maximum:
            self.errors[name] = _("must be between %(minimum)d and %(maximum)d", minimum=minimum, maximum=maximum)
            return default
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        self.errors[name] = _("must be true or false, not %(value)s", value=_shown(value))
        return default

    def timestamp(self, name: str) -> str | None:
        """A date or timestamp as the ledger's UTC text; a bare date means the end of that day."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return clock.to_ts(clock.parse_ts(value))
        except (ValueError, OverflowError):
            self.errors[name] = _("%(value)s is not a date or timestamp (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z)",
                                  value=_shown(value))
            return None

    def done(self) -> None:
        raise_if(self.errors)


def paging(query: Query, default: int = 50, maximum: int = 200) -> tuple[int, int]:
    return (query.integer("limit", default, 1, maximum), query.integer("offset", 0, 0, 10 ** 9))


def offset_page(items: list, limit: int, offset: int, endpoint: str, **filters: Any) -> dict[str, Any]:
    """A list page from a query that fetched `limit + 1` rows: the extra row only says there is a next page."""
    more = len(items) > limit
    return {"items": items[:limit], "limit": limit, "offset": offset,
            "next": next_url(endpoint, **filters, limit=limit, offset=offset + limit) if more else None}


def next_url(endpoint: str, **args: Any) -> str:
    """This list's next page: the same filters, the given cursor, and the language the client asked for."""
    kept = {name: request.args[name] for name in GLOBAL_QUERY if name in request.args}
    given = {name: value for name, value in args.items() if value is not None and value != "" and value is not False}
    return url_for(endpoint, **kept, **given)
