"""The booking forms: which fields each action has, and how typed values become ledger requests.

Pure apart from gettext: `build()` takes the typed values and the choices the page offered and returns the
`Move` to post, or raises `FormErrors` naming every bad field at once (so a person fixes them in one go).
Rules that depend on stock (enough available, the location belongs to this site) stay with the ledger;
`ledger_error_fields()` puts its refusal next to the field it is about.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import clock
from appliance.access.roles import ADJUST_REASONS, KIND_PERMISSION
from appliance.catalog import money
from appliance.errors import (ApplianceError, ForeignLocation, InsufficientStock, OpIdReused, ReservationClosed,
                              UnknownLocation, UnknownReservation, UnknownSku)
from appliance.ledger.requests import MAX_QTY, Move

ACTIONS = ("receive", "ship", "move", "transfer", "adjust", "reserve", "release")

# "move" is not a movement kind (it is a transfer_out closed at once), so it has its own permission.
PERMISSION = {"receive": KIND_PERMISSION["receive"], "ship": KIND_PERMISSION["ship"], "move": "move",
              "transfer": KIND_PERMISSION["transfer_out"], "adjust": KIND_PERMISSION["adjust"],
              "reserve": KIND_PERMISSION["reserve"], "release": KIND_PERMISSION["release"]}

FIELDS = {
    "receive": ("sku", "location", "qty", "lot", "expiry", "unit_cost", "ref", "note"),
    "ship": ("sku", "location", "qty", "lot", "ref", "note"),
    "move": ("sku", "location", "to_location", "qty", "lot", "note"),
    "transfer": ("sku", "location", "to_location", "qty", "lot", "note"),
    "adjust": ("sku", "location", "qty", "lot", "reason", "note"),
    "reserve": ("sku", "location", "qty", "lot", "ref", "expires_at", "note"),
    "release": ("reservation", "qty", "note"),
}

TITLES = {"receive": _l("Receive goods"), "ship": _l("Ship goods"), "move": _l("Move within this site"),
          "transfer": _l("Transfer to another site"), "adjust": _l("Adjust stock"),
          "reserve": _l("Reserve stock"), "release": _l("Release a reservation")}

HINTS = {"receive": _l("Goods arriving: from a supplier, a return, or found."),
         "ship": _l("Goods leaving to a customer."),
         "move": _l("From one location of this site to another; booked as arrived at once."),
         "transfer": _l("Goods sent to another site; they arrive when that site books them in."),
         "adjust": _l("Correct stock for damage, loss, finds or a count; needs a reason."),
         "reserve": _l("Hold units for an order so they cannot be shipped elsewhere."),
         "release": _l("Give held units back to available stock.")}

REASON_LABELS = {"damaged": _l("Damaged"), "lost": _l("Lost"), "found": _l("Found"),
                 "count_correction": _l("Count correction"), "expired": _l("Expired"), "theft": _l("Theft")}

REF_TYPES = {"receive": "purchase_order", "ship": "order"}
FORM = "_form"   # the key of errors about the whole form rather than one field


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Choices:
    """What the page offered: typed values must be among them where the form shows a select."""

    to_locations: frozenset[str] = frozenset()
    timezone: str = "UTC"
    currency_digits: int = 2
    see_costs: bool = False


def new_op_id() -> str:
    return str(uuid.uuid4())


def read_op_id(text: str | None) -> str:
    """The form's idempotency key: a uuid the page made, nothing else (it keys the ledger's op table)."""
    try:
        return str(uuid.UUID((text or "").strip()))
    except ValueError:
        raise FormErrors({FORM: _("The form is incomplete; reload the page and try again.")}) from None


def values_of(action: str, form) -> dict[str, str]:
    return {name: (form.get(name) or "").strip() for name in FIELDS[action]}


def build(action: str, values: dict[str, str], choices: Choices) -> Move:
    errors: dict[str, str] = {}

    def need(name: str, message: str) -> str | None:
        text = values.get(name, "")
        if not text:
            errors[name] = message
            return None
        return text

    qty = _qty(action, values.get("qty", ""), errors)
    common = {"note": values.get("note") or None}
    if len(values.get("note", "")) > 500:
        errors["note"] = _("The note may have at most 500 characters.")
    if action == "release":
        reservation = need("reservation", _("Pick the reservation to release."))
        reservation_id = None
        if reservation is not None:
            if reservation.isdigit():
                reservation_id = int(reservation)
            else:
                errors["reservation"] = _("Pick the reservation to release.")
        _raise(errors)
        return Move("release", reservation_id=reservation_id, qty=qty or 0, **common)

    sku = need("sku", _("Enter the SKU."))
    location = need("location", _("Pick the location."))
    lot = values.get("lot", "")
    if len(lot) > 64:
        errors["lot"] = _("The lot may have at most 64 characters.")
    if action in ("move", "transfer"):
        to = need("to_location", _("Pick where the goods go."))
        if to is not None and to not in choices.to_locations:
            errors["to_location"] = (_("Pick a location of this site.") if action == "move"
                                     else _("Pick a location of another site."))
        elif to is not None and to == location:
            errors["to_location"] = _("Pick a destination other than the source.")
    if action == "adjust":
        reason = need("reason", _("Pick the reason for the adjustment."))
        if reason is not None and reason not in ADJUST_REASONS:
            errors["reason"] = _("Pick the reason for the adjustment.")
        common["reason"] = reason
    if action in REF_TYPES and values.get("ref"):
        common.update(ref_type=REF_TYPES[action], ref_id=values["ref"])
    if action == "receive":
        common.update(expiry=_expiry(values.get("expiry", ""), errors),
                      unit_cost=_unit_cost(values.get("unit_cost", ""), choices, errors))
    if action == "reserve":
        common["expires_at"] = _expires_at(values.get("expires_at", ""), choices, errors)
    _raise(errors)
    if action == "receive":
        return Move("receive", sku=sku, location=location, qty=qty, lot=lot, **common)
    if action == "ship":
        return Move("ship", sku=sku, location=location, qty=qty, lot=lot, **common)
    if action in ("move", "transfer"):
        return Move("transfer_out", sku=sku, location=location, to_location=values["to_location"], qty=qty,
                    lot=lot, **common)
    if action == "adjust":
        return Move("adjust", sku=sku, location=location, qty=qty, lot=lot, **common)
    # The order reference belongs to the reservation row; its movements reference the reservation itself.
    return Move("reserve", sku=sku, location=location, qty=qty, lot=lot, ref_id=values.get("ref") or None,
                **common)


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise FormErrors(errors)


def _qty(action: str, text: str, errors: dict[str, str]) -> int | None:
    if not text:
        if action == "release":
            return None   # all that is left on the reservation
        errors["qty"] = _("Enter the quantity.")
        return None
    try:
        qty = int(text.replace("\u2212", "-"))
    except ValueError:
        errors["qty"] = _("%(value)s is not a whole number.", value=text)
        return None
    if abs(qty) > MAX_QTY:
        errors["qty"] = _("%(value)s is more than the ledger takes (at most %(max)s).", value=text, max=MAX_QTY)
    elif action == "adjust":
        if qty == 0:
            errors["qty"] = _("Enter a quantity other than 0: positive adds stock, negative removes it.")
    elif qty <= 0:
        errors["qty"] = _("Enter a quantity of at least 1.")
    return qty


def _expiry(text: str, errors: dict[str, str]) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        errors["expiry"] = _("%(value)s is not a date (YYYY-MM-DD).", value=text)
        return None


def _unit_cost(text: str, choices: Choices, errors: dict[str, str]) -> int | None:
    # Someone who may not see costs may not set them either: the variant's cost price applies.
    if not text or not choices.see_costs:
        return None
    try:
        amount = money.parse_amount(text, choices.currency_digits)
    except ValueError:
        errors["unit_cost"] = _("%(value)s is not an amount of money (write e.g. 12.50).", value=text)
        return None
    if amount < 0:
        errors["unit_cost"] = _("The unit cost cannot be negative.")
        return None
    return amount


def _expires_at(text: str, choices: Choices, errors: dict[str, str]) -> str | None:
    if not text:
        return None
    try:
        moment = clock.parse_ts(text, ZoneInfo(choices.timezone))
    except ValueError:
        errors["expires_at"] = _("%(value)s is not a date and time.", value=text)
        return None
    if moment <= clock.utcnow():
        errors["expires_at"] = _("That time has passed; pick a time in the future or leave it empty.")
        return None
    return clock.to_ts(moment)


# The ledger names its fields as in `Move`; the forms name two of them differently.
_FORM_FIELD = {"ref_id": "ref", "reservation_id": "reservation", "expires_at": "expires_at"}


def ledger_error_fields(error: ApplianceError, values: dict[str, str]) -> dict[str, str]:
    """The ledger's refusal as {form field: message}, next to the field it is about."""
    details = error.details
    if isinstance(error, InsufficientStock):
        rule = details.get("rule", "available")
        if rule.startswith("left on reservation") or rule == "reserved":
            message = _("Only %(available)s are left on the reservation; %(requested)s requested.",
                        available=details["available"], requested=details["requested"])
        elif rule == "on hand" or rule.startswith("on hand"):
            message = _("Only %(available)s on hand at %(location)s; %(requested)s requested.",
                        available=details["available"], location=details["location"],
                        requested=details["requested"])
        else:
            message = _("Only %(available)s available at %(location)s; %(requested)s requested.",
                        available=details["available"], location=details["location"],
                        requested=details["requested"])
        return {"qty": message}
    if isinstance(error, UnknownSku):
        return {"sku": _("No product has the SKU %(sku)s.", sku=details["sku"])}
    if isinstance(error, UnknownLocation):
        name = "to_location" if values.get("to_location") == details["location"] else "location"
        return {name: _("There is no location %(location)s.", location=details["location"])}
    if isinstance(error, ForeignLocation):
        return {"location": _("%(location)s belongs to site %(owner)s; this box books only its own locations.",
                              location=details["location"], owner=details["owner"])}
    if isinstance(error, (UnknownReservation, ReservationClosed)):
        return {"reservation": _("This reservation is no longer held; pick another one.")}
    if isinstance(error, OpIdReused):
        return {FORM: _("This form was already used for a different booking. Check the values and book again.")}
    name = details.get("field")
    name = _FORM_FIELD.get(name, name)
    if name in values:
        return {name: error.message}
    return {FORM: error.message}

