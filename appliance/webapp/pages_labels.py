"""Labels in the browser: the PNG previews, the print form of the product and location pages, the print queue.

A preview is what the chosen printer will print (its size, dpi and language), made by the same layout as the
job. Printing queues a job in one ledger write as the logged-in user; the agent's spooler sends it after
commit, so the page answers as soon as the job is safely in the queue, whether or not the printer is on.
The product and location templates ask `label_card(label)` (a template global set here) which printer the
preview is for, so the pages that own those routes need not know about printing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.config.printers import PrinterConfig
from appliance.errors import ApplianceError, InvalidInput
from appliance.printing import queue, service
from appliance.webapp.context import can, parts, principal, requires
from appliance.webapp.movement_filters import local_time

bp = Blueprint("labels", __name__)

PAGE = 50
FORM_LABELS = ("variant", "location")   # what the pages print; the API prints the other types
PREVIEW_PX_PER_MM = 8    # on screen a label is shown at about its real size, whatever the printer's dpi
STATE_LABELS = {"queued": _l("queued"), "sending": _l("sending"), "done": _l("done"), "failed": _l("failed"),
                "uncertain": _l("uncertain"), "cancelled": _l("cancelled")}
RETRYABLE = ("failed", "uncertain", "cancelled", "done")
CANCELLABLE = ("queued", "failed", "uncertain")


@dataclass(frozen=True)
class LabelCard:
    """What a page's label card shows: the printers to choose from, whose preview, or why there is none."""
    printers: tuple[PrinterConfig, ...]
    printer: PrinterConfig | None
    problem: str | None

    @property
    def preview_width(self) -> int:
        return round(self.printer.width_mm * PREVIEW_PX_PER_MM) if self.printer else 0


def label_card(label: str) -> LabelCard:
    config = parts().config
    if not config.printers:
        return LabelCard((), None, None)
    try:
        return LabelCard(config.printers, service.choose_printer(config, label), None)
    except service.NoPrinter as error:
        return LabelCard(config.printers, None, error.message)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"label_card": label_card}


def label_data(conn: sqlite3.Connection, label: str, value: str) -> dict[str, Any]:
    """The data of a variant (value: its SKU) or location (its code) label, read from the ledger now."""
    if label == "variant":
        return service.variant_data(conn, parts().config, value)
    if label == "location":
        return service.location_data(conn, value)
    raise InvalidInput(f"the pages print {' and '.join(FORM_LABELS)} labels, not {label!r}", field="label")


def _preview(label: str, value: str) -> Response:
    printer = request.args.get("printer") or None
    station = request.args.get("station") or None
    data = label_data(parts().db.connection(), label, value)
    try:
        png, _target = service.preview(parts().config, label, data, printer=printer, station=station)
    except service.NoPrinter as error:
        # An <img> cannot show an error page; the text is for whoever opens the address itself.
        return Response(error.message, status=404, mimetype="text/plain")
    return Response(png, mimetype="image/png")


@bp.route("/labels/variant/<path:sku>.png")
@requires("view")
def variant_png(sku: str):
    return _preview("variant", sku)


@bp.route("/labels/location/<code>.png")
@requires("view")
def location_png(code: str):
    return _preview("location", code)


def _local_path(target: str) -> str | None:
    """A path on this box, or None: a form's `next` must not turn it into a redirector."""
    split = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not split.scheme and not split.netloc:
        return target
    return None


def _back(fallback: str):
    return redirect(_local_path(request.form.get("next", "")) or fallback)


def _copies(text: str) -> int:
    text = text.strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= queue.MAX_COPIES:
        raise InvalidInput(_("Copies must be a whole number from 1 to %(max)s, not %(value)s.",
                             max=queue.MAX_COPIES, value=text[:20]), field="copies")
    return int(text)


@bp.route("/labels/print", methods=["POST"])
@requires("print")
def print_label():
    form = request.form
    label = form.get("label", "")
    value = form.get("value", "").strip()
    fallback = url_for("labels.queue_page")
    if label == "variant" and value:
        fallback = url_for("products.show", sku=value)
    elif label == "location" and value:
        fallback = url_for("stock.location", code=value.upper())
    try:
        copies = _copies(form.get("copies", ""))
        with parts().ledger.write(user=principal().login, device="web") as ops:
            data = label_data(ops.conn, label, value)
            job = service.queue_label(ops.conn, parts().config, label, data, now=ops.ts, copies=copies,
                                      printer=form.get("printer") or None, user=principal().login)
    except ApplianceError as error:
        flash(_("Nothing was printed: %(reason)s", reason=error.message), "error")
        return _back(fallback)
    flash(_("Print job %(id)s queued on %(printer)s.", id=job.id, printer=job.printer), "success")
    return _back(fallback)


def describe(job: queue.Job) -> str:
    """What is on the label, in a few words, for the queue's list."""
    data = job.data
    if job.label == "variant":
        return " · ".join(str(part) for part in (data.get("sku"), data.get("name"), data.get("variant")) if part)
    if job.label == "location":
        return str(data.get("code", ""))
    if job.label == "case":
        return f"{data.get('gtin', '')} · {_('lot')} {data.get('lot', '')}"
    if job.label == "sscc":
        return f"{data.get('sscc', '')} · {data.get('from_site', '')} → {data.get('to_site', '')}"
    if job.label == "po_receiving":
        return f"{data.get('po', '')}/{data.get('line', '')} · {data.get('sku', '')}"
    if job.label == "transfer_document":
        return f"{data.get('transfer', '')} · {data.get('from_site', '')} → {data.get('to_site', '')}"
    return ""


def waiting_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Jobs per printer and state, for the states a person may have to act on or wait for."""
    counts: dict[str, dict[str, int]] = {}
    for printer, state, count in conn.execute(
            "SELECT printer, state, count(*) FROM print_job WHERE state IN ('queued', 'sending', 'failed',"
            " 'uncertain') GROUP BY printer, state"):
        counts.setdefault(printer, {})[state] = count
    return counts


@bp.route("/print-queue")
@requires("view")
def queue_page():
    conn = parts().db.connection()
    state = request.args.get("state", "")
    printer = request.args.get("printer", "")
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    errors = {}
    if state and state not in queue.STATES:
        errors["state"] = _("Choose a state from the list.")
    jobs = [] if errors else queue.listing(conn, states=(state,) if state else (), printer=printer or None,
                                           limit=PAGE + 1, offset=offset)
    filters = {name: value for name, value in (("state", state), ("printer", printer)) if value}
    tz = parts().config.site.timezone
    return render_template(
        "labels/queue.html", jobs=jobs[:PAGE], more=len(jobs) > PAGE, offset=offset, page=PAGE, filters=filters,
        errors=errors, states=STATE_LABELS, printers=parts().config.printers, counts=waiting_counts(conn),
        problems=service.printer_problems(conn),
        describe=describe, site_time=lambda ts: local_time(ts, tz), retryable=RETRYABLE,
        cancellable=CANCELLABLE, may_print=can("print")), 400 if errors else 200


@bp.route("/print-queue/<int:job_id>/retry", methods=["POST"])
@requires("print")
def retry(job_id: int):
    try:
        with parts().ledger.write(user=principal().login, device="web") as ops:
            before = queue.require(ops.conn, job_id)
            job = queue.requeue(ops.conn, job_id, ops.ts, user=principal().login)
    except queue.UnknownJob:
        raise   # a job that is not there is the 404 page, not a message on the queue
    except ApplianceError as error:
        flash(error.message, "error")
        return _back(url_for("labels.queue_page"))
    if job.id != before.id:
        flash(_("Print job %(id)s queued on %(printer)s: a reprint of job %(old)s.", id=job.id,
                printer=job.printer, old=before.id), "success")
    else:
        flash(_("Print job %(id)s is queued again on %(printer)s.", id=job.id, printer=job.printer), "success")
    return _back(url_for("labels.queue_page"))


@bp.route("/print-queue/<int:job_id>/cancel", methods=["POST"])
@requires("print")
def cancel(job_id: int):
    try:
        with parts().ledger.write(user=principal().login, device="web") as ops:
            queue.cancel(ops.conn, job_id, ops.ts)
    except queue.UnknownJob:
        raise
    except ApplianceError as error:
        flash(error.message, "error")
        return _back(url_for("labels.queue_page"))
    flash(_("Print job %(id)s cancelled.", id=job_id), "success")
    return _back(url_for("labels.queue_page"))
