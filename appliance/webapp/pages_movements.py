"""Movement history: the filtered list (paged by cursor), one movement's page, its CSV export and reversal."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import clock
from appliance.access.roles import ADJUST_REASONS
from appliance.catalog import money
from appliance.config import currency_digits
from appliance.errors import ApplianceError, InsufficientStock, NotReversible, UnknownMovement
from appliance.ledger.operations import REVERSIBLE_KINDS
from appliance.ledger.models import User
from appliance.ledger.queries import load_movements
from appliance.ledger.requests import RECORD_FIELDS, MovementRecord
from appliance.webapp import movement_filters
from appliance.webapp.action_forms import REASON_LABELS, FormErrors, new_op_id, read_op_id
from appliance.webapp.context import can, parts, principal, requires

bp = Blueprint("movements", __name__)

KIND_LABELS = {
    "receive": _l("Receive"), "ship": _l("Ship"), "adjust": _l("Adjust"), "damage": _l("Damage"),
    "return_in": _l("Return in"), "return_out": _l("Return out"), "count": _l("Count"),
    "reserve": _l("Reserve"), "release": _l("Release"), "transfer_out": _l("Transfer out"),
    "transfer_in": _l("Transfer in"), "discrepancy": _l("Discrepancy"), "reversal": _l("Reversal"),
}


def _site_time(ts: str | None) -> str:
    return movement_filters.local_time(ts, parts().config.site.timezone)


def _reason_label(reason: str | None) -> str:
    if reason in ADJUST_REASONS:
        return str(REASON_LABELS[reason])
    return reason or ""


def _reversible(m: MovementRecord, reversed_by: int | None) -> bool:
    return (reversed_by is None and m.kind in REVERSIBLE_KINDS and not m.d_reserved and not m.d_in_transit
            and m.origin == parts().config.site.id)


def _money(minor: int) -> str:
    return money.format_amount(minor, currency_digits(parts().config.site.currency))


def _helpers() -> dict:
    return {"kind_label": lambda kind: KIND_LABELS.get(kind, kind), "site_time": _site_time,
            "reason_label": _reason_label, "reversible": _reversible, "new_op_id": new_op_id, "money": _money}


@bp.route("/movements")
@requires("view")
def index():
    conn = parts().db.connection()
    found, errors = movement_filters.parse(request.args, conn, parts().config.site.timezone)
    before = request.args.get("before", type=int)
    rows, next_before = ([], None) if errors else movement_filters.page(conn, found, before)
    reversed_by = movement_filters.reversals(conn, rows)
    users = [u.login for u in User.select(User.login).order_by(User.login)]
    return render_template("movements/index.html", rows=rows, reversed_by=reversed_by, filters=found,
                           errors=errors, next_before=next_before, first_page=before is None,
                           kinds=list(KIND_LABELS), users=users, **_helpers())


@bp.route("/movements.csv")
@requires("export")
def export():
    conn = parts().db.connection()
    found, errors = movement_filters.parse(request.args, conn, parts().config.site.timezone)
    if errors:
        abort(400, description="; ".join(errors.values()))
    # Costs only for those who may see them; the column stays, so the file has one shape for everyone.
    hidden = set() if can("see_costs") else {"unit_cost"}

    def generate():
        # The format of `appliance export movements` (ledger/csv_export.py): same header, same cells.
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(RECORD_FIELDS)
        for count, record in enumerate(movement_filters.iter_all(conn, found), 1):
            writer.writerow(["" if value is None or name in hidden else value
                             for name, value in ((name, getattr(record, name)) for name in RECORD_FIELDS)])
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = clock.utcnow().astimezone(ZoneInfo(parts().config.site.timezone)).strftime("%Y%m%d-%H%M")
    name = f"movements-{parts().config.site.id}-{stamp}.csv"
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/movements/<int:movement_id>")
@requires("view")
def detail(movement_id: int):
    conn = parts().db.connection()
    found = load_movements(conn, "m.id = ?", (movement_id,))
    if not found:
        abort(404, description=_("There is no movement %(id)s.", id=movement_id))
    movement = found[0]
    reversed_by = movement_filters.reversals(conn, [movement]).get(movement.id)
    together = (load_movements(conn, "m.op_id = ? AND m.id != ?", (movement.op_id, movement.id), limit=50)
                if movement.op_id else [])
    return render_template("movements/detail.html", m=movement, reversed_by=reversed_by, together=together,
                           **_helpers())


def _back(movement_id: int):
    """Back where the form was (the list keeps its filters), else to the movement's page."""
    target = request.form.get("next", "")
    split = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not split.scheme and not split.netloc:
        return redirect(target)
    return redirect(url_for("movements.detail", movement_id=movement_id))


@bp.route("/movements/<int:movement_id>/reverse", methods=["POST"])
@requires("reverse")
def reverse(movement_id: int):
    reason = request.form.get("reason", "").strip()
    try:
        op_id = read_op_id(request.form.get("op_id"))
    except FormErrors as error:
        flash(next(iter(error.errors.values())), "error")
        return _back(movement_id)
    if not reason:
        flash(_("Give a reason for reversing movement %(id)s.", id=movement_id), "error")
        return _back(movement_id)
    try:
        result = parts().ledger.reverse(movement_id, reason, op_id=op_id, user=principal().login, device="web")
    except UnknownMovement:
        abort(404, description=_("There is no movement %(id)s.", id=movement_id))
    except ApplianceError as error:
        flash(_reverse_error(movement_id, error), "error")
        return _back(movement_id)
    ids = ", ".join(str(i) for i in result.ids)
    if result.replayed:
        flash(_("Already booked: movement %(id)s was reversed by this form before (movement %(ids)s); "
                "nothing new was booked.", id=movement_id, ids=ids), "warning")
    else:
        flash(_("Movement %(id)s reversed by movement %(ids)s.", id=movement_id, ids=ids), "success")
    return _back(movement_id)


def _reverse_error(movement_id: int, error: ApplianceError) -> str:
    details = error.details
    if isinstance(error, NotReversible):
        if "reversed_by" in details:
            return _("Movement %(id)s was already reversed by movement %(by)s.", id=movement_id,
                     by=details["reversed_by"])
        if "origin" in details:
            return _("Movement %(id)s was booked by site %(origin)s; it can be reversed only there.",
                     id=movement_id, origin=details["origin"])
        return _("Movement %(id)s cannot be reversed: reservations are released and transfers are booked in "
                 "instead.", id=movement_id)
    if isinstance(error, InsufficientStock):
        return _("Movement %(id)s cannot be reversed: only %(available)s of %(sku)s are free at %(location)s, "
                 "%(requested)s would have to go.", id=movement_id, available=details["available"],
                 sku=details["sku"], location=details["location"], requested=details["requested"])
    return error.message
