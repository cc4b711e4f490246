"""Printers, print jobs and label previews: the `appliance print` commands over HTTP (printing/service.py).

- Every role that may view stock sees the printers, the queue and the previews.
- Queueing, retrying and cancelling need `print` (manager, staff). A job names what to print by SKU or
  location code and the label data is read from the ledger, as the pages and the CLI do.
- A job with raw label `data` (any label type, contents given by the caller, not read from the catalog) needs
  `edit_products`, the manager's: such a label may claim any price, GTIN or SSCC.
A job is written in one ledger transaction and answered 201 once committed; the agent's spooler sends it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Response, jsonify

from appliance.config.printers import LABEL_TYPES, PrinterConfig
from appliance.errors import ApplianceError
from appliance.printing import queue, service
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import MISSING, Fields, Query, json_body, offset_page, paging, raise_if
from appliance.webapp.context import can, parts, principal, requires

BY_REFERENCE = ("variant", "location", "case")   # labels whose data the appliance reads itself
RAW_PERMISSION = "edit_products"
OPEN_STATES = ("queued", "sending", "failed", "uncertain")
_JOB_FIELDS = ("label", "sku", "code", "lot", "expiry", "count", "copies", "printer", "station", "data")


class RawLabelForbidden(ApplianceError):
    code = "forbidden"
    http_status = 403

    def __init__(self, role: str) -> None:
        super().__init__(f"your role ({role}) may not print labels from raw data: that needs the {RAW_PERMISSION} "
                         "permission; name a sku or code instead", permission=RAW_PERMISSION)


def printer_json(printer: PrinterConfig, counts: dict[str, int], problem: str | None = None) -> dict[str, Any]:
    return {"name": printer.name, "problem": problem, "kind": printer.kind, "language": printer.language, "dpi": printer.dpi,
            "width_mm": printer.width_mm, "height_mm": printer.height_mm, "media": printer.media,
            "default": printer.default, "stations": list(printer.station_list()),
            "labels": list(printer.label_list()),
            "jobs": {state: counts.get(state, 0) for state in OPEN_STATES}}


def _open_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for printer, state, count in conn.execute(
            f"SELECT printer, state, count(*) FROM print_job WHERE state IN ({', '.join('?' * len(OPEN_STATES))})"
            " GROUP BY printer, state", OPEN_STATES):
        counts.setdefault(printer, {})[state] = count
    return counts


@bp.get("/printers")
@requires("view")
def list_printers():
    Query().done()
    conn = parts().db.connection()
    counts = _open_counts(conn)
    problems = service.printer_problems(conn)
    return jsonify({"items": [printer_json(p, counts.get(p.name, {}), problems.get(p.name))
                              for p in parts().config.printers]})


@bp.get("/print-jobs")
@requires("view")
def list_print_jobs():
    query = Query("state", "printer", "limit", "offset")
    state = query.choice("state", queue.STATES)
    printer = query.text("printer", max_len=40)
    limit, offset = paging(query)
    query.done()
    jobs = queue.listing(parts().db.connection(), states=(state,) if state else (), printer=printer,
                         limit=limit + 1, offset=offset)
    return jsonify(offset_page([job.as_json() for job in jobs], limit, offset, "api.list_print_jobs", state=state,
                               printer=printer))


@bp.get("/print-jobs/<int:job_id>")
@requires("view")
def get_print_job(job_id: int):
    Query().done()
    return jsonify(queue.require(parts().db.connection(), job_id).as_json())


class LabelRequest:
    """What to print, read from a JSON body or a query string: the label type and what names its contents."""

    def __init__(self, label: Any, sku: Any = None, code: Any = None, lot: Any = None, expiry: Any = None,
                 count: Any = None, data: Any = None) -> None:
        self.label, self.sku, self.code, self.lot, self.expiry, self.count = label, sku, code, lot, expiry, count
        self.data = data

    def check(self, fail) -> None:
        """Report what is missing or out of place through `fail(field, message)`."""
        if self.label is MISSING:
            return
        if self.data is not None:
            return
        if self.label not in BY_REFERENCE:
            fail("label", f"a {self.label} label needs its contents as `data` (labels read from the ledger: "
                          f"{', '.join(BY_REFERENCE)})")
        elif self.label == "location" and not self.code:
            fail("code", "required for a location label")
        elif self.label in ("variant", "case") and not self.sku:
            fail("sku", f"required for a {self.label} label")
        if self.label == "case" and not self.lot:
            fail("lot", "required for a case label (GS1 AI 10)")

    def read(self, conn: sqlite3.Connection) -> dict[str, Any]:
        if self.data is not None:
            return self.data
        if self.label == "variant":
            return service.variant_data(conn, parts().config, self.sku)
        if self.label == "location":
            return service.location_data(conn, self.code)
        return service.case_data(conn, self.sku, self.lot, self.expiry, self.count)


def _label_fields(fields: Fields) -> LabelRequest:
    label = fields.text("label", required=True, max_len=40)
    if label and label not in LABEL_TYPES:
        label = fields.fail("label", f"must be one of {', '.join(LABEL_TYPES)}")
    data = None
    if fields.has("data"):
        data = fields.data["data"]
        if not isinstance(data, dict):
            data = fields.fail("data", "must be a JSON object: the label's contents")
        for name in ("sku", "code", "lot", "expiry", "count"):
            if fields.has(name):
                fields.fail(name, "give either `data` or what names the contents (sku, code, lot, ...), not both")
    request = LabelRequest(
        label, sku=fields.text("sku", nullable=True, default=None), code=fields.text("code", nullable=True,
                                                                                     default=None, max_len=40),
        lot=fields.text("lot", nullable=True, default=None, max_len=64),
        expiry=fields.text("expiry", nullable=True, default=None, max_len=10),
        count=fields.integer("count", nullable=True, default=None, minimum=1, maximum=99_999_999), data=data)
    request.check(fields.fail)
    return request


@bp.post("/print-jobs")
@requires("print")
def create_print_job():
    fields = Fields(json_body())
    fields.only(_JOB_FIELDS)
    what = _label_fields(fields)
    copies = fields.integer("copies", default=1, minimum=1, maximum=queue.MAX_COPIES)
    printer = fields.text("printer", nullable=True, default=None, max_len=40)
    station = fields.text("station", nullable=True, default=None, max_len=32)
    raise_if(fields.errors)
    if what.data is not None and not can(RAW_PERMISSION):
        raise RawLabelForbidden(principal().role)
    login = principal().login
    with parts().ledger.write(user=login, device="api") as ops:
        job = service.queue_label(ops.conn, parts().config, what.label, what.read(ops.conn), now=ops.ts,
                                  copies=copies, printer=printer, station=station, user=login)
    response = jsonify(job.as_json())
    response.status_code = 201
    return response


def _printer_field() -> str | None:
    fields = Fields(json_body(empty_ok=True))
    fields.only(("printer",))
    printer = fields.text("printer", nullable=True, default=None, max_len=40)
    raise_if(fields.errors)
    if printer:
        service.printer_named(parts().config, printer)   # NoPrinter (404) when unknown
    return printer


@bp.post("/print-jobs/<int:job_id>/retry")
@requires("print")
def retry_print_job(job_id: int):
    printer = _printer_field()
    with parts().ledger.write(user=principal().login, device="api") as ops:
        job = queue.requeue(ops.conn, job_id, ops.ts, printer=printer, user=principal().login)
    return jsonify(job.as_json())


@bp.post("/print-jobs/<int:job_id>/cancel")
@requires("print")
def cancel_print_job(job_id: int):
    fields = Fields(json_body(empty_ok=True))
    fields.only(())
    raise_if(fields.errors)
    with parts().ledger.write(user=principal().login, device="api") as ops:
        job = queue.cancel(ops.conn, job_id, ops.ts)
    return jsonify(job.as_json())


@bp.get("/labels/<label>.png")
@requires("view")
def label_preview(label: str):
    query = Query("sku", "code", "lot", "expiry", "count", "printer", "station")
    if label not in BY_REFERENCE:
        query.errors["label"] = f"must be one of {', '.join(BY_REFERENCE)}"
        label = MISSING
    count = query.integer("count", None, 1, 99_999_999)
    what = LabelRequest(label, sku=query.text("sku", max_len=500), code=query.text("code", max_len=40),
                        lot=query.text("lot", max_len=64), expiry=query.text("expiry", max_len=10), count=count)
    what.check(lambda name, message: query.errors.setdefault(name, message))
    printer, station = query.text("printer", max_len=40), query.text("station", max_len=32)
    query.done()
    png, _target = service.preview(parts().config, label, what.read(parts().db.connection()), printer=printer,
                                   station=station)
    return Response(png, mimetype="image/png")
