"""Booking by hand: a page of big buttons, and one form per action (receive, ship, move, transfer, adjust,
reserve, release), each posting through the ledger as the logged-in user from device "web".

Every form carries an op_id made when it was drawn, so a double click or a refresh after the POST books once:
the ledger hands back the earlier movements and the page says so. After a booking the browser is redirected
to a fresh form (Post/Redirect/Get); a refusal redraws the form with what was typed and the reason beside the
field it is about.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.access.roles import ADJUST_REASONS
from appliance.config import currency_digits
from appliance.errors import ApplianceError, OpIdReused
from appliance.ledger import queries
from appliance.ledger.requests import Move, MovementRecord
from appliance.webapp.action_forms import (ACTIONS, FIELDS, FORM, HINTS, PERMISSION, REASON_LABELS, TITLES,
                                           Choices, FormErrors, build, ledger_error_fields, new_op_id,
                                           read_op_id, values_of)
from appliance.webapp.context import can, parts, principal, requires

bp = Blueprint("actions", __name__)

DATALIST_MAX = 300      # a bigger catalog is searched as the person types (actions.js, /api/v1/variants)
RESERVATIONS_MAX = 500
# Fields a fresh form keeps from the booking before: the next booking is usually at the same place.
STICKY = ("location", "to_location")


@bp.route("/book")
@requires("view")
def index():
    allowed = [action for action in ACTIONS if can(PERMISSION[action])]
    if not allowed:
        abort(403)
    return render_template("actions/index.html", actions=allowed, titles=TITLES, hints=HINTS)


def _form_view(action: str):
    def view():
        if request.method == "POST":
            return _submit(action)
        # Links from other pages may fill in fields (?sku=DOG-5&location=BER-A-01).
        values = {name: (request.args.get(name) or "").strip() for name in FIELDS[action]}
        return _render(action, values, {}, new_op_id())
    view.__name__ = action
    return view


for _action in ACTIONS:
    bp.add_url_rule(f"/book/{_action}", endpoint=_action, methods=["GET", "POST"],
                    view_func=requires(PERMISSION[_action])(_form_view(_action)))


def _submit(action: str):
    values = values_of(action, request.form)
    sent_op_id = request.form.get("op_id", "")
    try:
        op_id = read_op_id(sent_op_id)
        move = build(action, values, _choices(action))
    except FormErrors as error:
        return _render(action, values, error.errors, sent_op_id or new_op_id()), 400
    try:
        if action == "move":
            result = parts().ledger.move(move, op_id=op_id, user=principal().login, device="web")
        else:
            result = parts().ledger.post(move, op_id=op_id, user=principal().login, device="web")
    except ApplianceError as error:
        # Nothing was written, so the same op_id stays good for the corrected form, except when the key
        # itself was the problem.
        if isinstance(error, OpIdReused):
            op_id = new_op_id()
        return _render(action, values, ledger_error_fields(error, values), op_id), error.http_status
    booked = _booked(action, move, result.movements)
    if result.replayed:
        flash(_("Already booked: this form was sent before, so nothing was booked again.") + " " + booked,
              "warning")
    else:
        flash(booked, "success")
    keep = {name: values[name] for name in STICKY if values.get(name)}
    return redirect(url_for(f"actions.{action}", **keep))


def _level(sku: str, location: str) -> str:
    lines = queries.stock_levels(parts().db.connection(), sku=sku, location=location)
    on_hand = sum(line.on_hand for line in lines)
    available = sum(line.available for line in lines)
    return _("%(location)s now has %(on_hand)s on hand and %(available)s available.", location=location,
             on_hand=on_hand, available=available)


def _booked(action: str, move: Move, records: list[MovementRecord]) -> str:
    """What was booked, in words, and the stock it left at the location(s) concerned."""
    first = records[0]
    sku, location = first.sku, first.location
    if action == "receive":
        text = _("Received %(qty)s × %(sku)s into %(location)s.", qty=move.qty, sku=sku, location=location)
    elif action == "ship":
        text = _("Shipped %(qty)s × %(sku)s from %(location)s.", qty=move.qty, sku=sku, location=location)
    elif action == "move":
        text = _("Moved %(qty)s × %(sku)s from %(location)s to %(to)s.", qty=move.qty, sku=sku, location=location,
                 to=move.to_location)
        return " ".join((text, _level(sku, location), _level(sku, move.to_location)))
    elif action == "transfer":
        text = _("Sent %(qty)s × %(sku)s from %(location)s to %(to)s as transfer %(code)s.", qty=move.qty,
                 sku=sku, location=location, to=move.to_location, code=first.ref_id)
    elif action == "adjust":
        text = _("Adjusted %(sku)s at %(location)s by %(qty)s (%(reason)s).", sku=sku, location=location,
                 qty=f"{move.qty:+d}", reason=REASON_LABELS[move.reason])
    elif action == "reserve":
        text = _("Reserved %(qty)s × %(sku)s at %(location)s as reservation %(id)s.", qty=move.qty, sku=sku,
                 location=location, id=first.ref_id)
    else:
        released = -sum(r.d_reserved for r in records)
        text = _("Released %(qty)s × %(sku)s at %(location)s from reservation %(id)s.", qty=released, sku=sku,
                 location=location, id=move.reservation_id)
    return text + " " + _level(sku, location)


def _locations(own: bool) -> list[tuple[str, str, str]]:
    """(code, name, site) of active locations of this site, or of every other site."""
    conn = parts().db.connection()
    return conn.execute(
        "SELECT code, name, site_id FROM location WHERE active AND kind != 'in-transit' AND (site_id = ?) = ?"
        " ORDER BY site_id, code", (parts().config.site.id, own)).fetchall()


def _choices(action: str) -> Choices:
    config = parts().config
    targets = {"move": True, "transfer": False}
    to_locations = frozenset(code for code, _n, _s in _locations(targets[action])) if action in targets \
        else frozenset()
    return Choices(to_locations=to_locations, timezone=config.site.timezone,
                   currency_digits=currency_digits(config.site.currency), see_costs=can("see_costs"))


def _reservations() -> list[dict]:
    conn = parts().db.connection()
    return [dict(zip(("id", "sku", "location", "lot", "left", "ref", "expires_at"), row)) for row in conn.execute(
        "SELECT r.id, v.sku, l.code, r.lot, r.qty - r.qty_consumed - r.qty_released, r.ref, r.expires_at"
        " FROM reservation r JOIN variant v ON v.id = r.variant_id JOIN location l ON l.id = r.location_id"
        " WHERE r.status = 'held' AND l.site_id = ? ORDER BY r.id DESC LIMIT ?",
        (parts().config.site.id, RESERVATIONS_MAX))]


def _sku_options() -> list[tuple[str, str]]:
    """Every active SKU with its name when the catalog is small; an empty list leaves it to the search."""
    rows = parts().db.connection().execute(
        "SELECT v.sku, CASE WHEN v.name != '' THEN p.name || ' ' || v.name ELSE p.name END FROM variant v"
        " JOIN product p ON p.id = v.product_id WHERE v.active ORDER BY v.sku LIMIT ?", (DATALIST_MAX + 1,)).fetchall()
    return [] if len(rows) > DATALIST_MAX else rows


def _render(action: str, values: dict[str, str], errors: dict[str, str], op_id: str):
    fields = FIELDS[action]
    context = {"action": action, "title": TITLES[action], "hint": HINTS[action], "fields": fields,
               "values": values, "errors": errors, "form_error": errors.get(FORM), "op_id": op_id,
               "see_costs": can("see_costs")}
    if "location" in fields:
        context["locations"] = _locations(True)
        context["sku_options"] = _sku_options()
    if "to_location" in fields:
        context["to_locations"] = _locations(action == "move")
    if "reason" in fields:
        context["reasons"] = [(code, REASON_LABELS[code]) for code in ADJUST_REASONS]
    if "reservation" in fields:
        context["reservations"] = _reservations()
    return render_template("actions/form.html", **context)
