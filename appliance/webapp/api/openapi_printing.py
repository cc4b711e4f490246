"""The printing endpoints' part of the OpenAPI document, added to `PATHS` and `SCHEMAS` when imported."""

from __future__ import annotations

from typing import Any

from appliance.config.printers import LABEL_TYPES, PRINTER_KINDS
from appliance.printing.queue import MAX_COPIES, STATES
from appliance.webapp.api.openapi import OFFSET, PATHS, _limit, _op, _path_param, _q, _text
from appliance.webapp.api.openapi_schemas import BOOL, INT, SCHEMAS, TS, maybe, obj, page, ref, text
from appliance.webapp.api.payloads import MAX_INT
from appliance.webapp.api.printing import BY_REFERENCE, OPEN_STATES, RAW_PERMISSION

JOB_ID = _path_param("job_id", {"type": "integer", "minimum": 1, "maximum": MAX_INT})
LABEL = _path_param("label", {"type": "string", "enum": list(BY_REFERENCE)})
_NAMES = {"type": "array", "items": text()}
_COUNT = {"type": "integer", "minimum": 1, "maximum": 99_999_999}

SCHEMAS.update({
    "Printer": obj({
        "name": text(),
        "problem": maybe(text("what the spooler last found wrong (not reachable, paper out, head open, paused), "
                              "null while it prints")), "kind": text(enum=list(PRINTER_KINDS)), "language": text(enum=["zpl", "escpos"]),
        "dpi": {"type": "integer", "enum": [203, 300, 600]}, "width_mm": {"type": "number"},
        "height_mm": {"type": "number", "description": "for ESC/POS paper: the length a label may take"},
        "media": text(enum=["gap", "mark", "continuous"]),
        "default": {**BOOL, "description": "prints everything no other printer claims"},
        "stations": {**_NAMES, "description": "stations whose labels go here by default"},
        "labels": {**_NAMES, "description": "label types that go here by default"},
        "jobs": obj({state: INT for state in OPEN_STATES}, description="jobs of this printer per open state")}),
    "PrinterList": obj({"items": {"type": "array", "items": ref("Printer")}}),
    "PrintJob": obj({
        "id": INT, "printer": text(), "label": text(enum=list(LABEL_TYPES)),
        "data": {"type": "object", "description": "what is printed, as it was when the job was asked for"},
        "copies": INT, "state": text(enum=list(STATES)),
        "attempts": {**INT, "description": "sends tried so far"},
        "last_error": maybe(text("why the last attempt failed, in words")), "created_at": TS, "updated_at": TS,
        "next_attempt_at": TS, "sent_at": maybe(TS), "created_by": maybe(text()), "station": maybe(text()),
        "ref_type": maybe(text()), "ref_id": maybe(text()),
        "reprint_of": maybe({**INT, "description": "the done job this one prints again"}),
        "partial": {**BOOL, "description": "part of a format may be in the printer: the next send cancels it "
                                           "first (~JX)"}}),
    "PrintJobPage": page("PrintJob"),
    "PrintJobRequest": obj({
        "label": text(f"variant, location and case labels are read from the ledger (sku, code, lot); any type "
                      f"with `data` ({RAW_PERMISSION} permission)", enum=list(LABEL_TYPES)),
        "sku": maybe(text("variant and case labels", maxLength=500)),
        "code": maybe(text("location labels: the location's code", maxLength=40)),
        "lot": maybe(text("case labels (GS1 AI 10)", maxLength=64)),
        "expiry": maybe(text("case labels: YYYY-MM-DD (GS1 AI 17)", maxLength=10)),
        "count": maybe({**_COUNT, "description": "case labels: units in the case (GS1 AI 30)"}),
        "copies": {"type": "integer", "minimum": 1, "maximum": MAX_COPIES, "default": 1},
        "printer": maybe(text("default: the printer that claims this label type or station, else the default "
                              "printer", maxLength=40)),
        "station": maybe(text("the station asking, e.g. dock-1: picks its printer", maxLength=32)),
        "data": {"type": "object", "description": "the label's contents as the renderer takes them, instead of "
                                                  "sku/code/lot/expiry/count"}},
        required=("label",), closed=True),
    "PrintJobRetry": obj({"printer": maybe(text("move the job to this printer", maxLength=40))}, required=(),
                         closed=True),
})


def _png(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["200"]["content"] = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
    return operation


def _optional_body(operation: dict[str, Any]) -> dict[str, Any]:
    operation["requestBody"]["required"] = False
    return operation


PATHS.update({
    "/printers": {"get": _op("The configured label printers, with their open jobs", "view",
                             ("200", "PrinterList", "every printer"), errors=("400",))},
    "/print-jobs": {
        "get": _op("Print jobs, newest first", "view", ("200", "PrintJobPage", "a page of jobs"), params=(
            _q("state", {"type": "string", "enum": list(STATES)}), _text("printer", max_len=40), _limit(50, 200),
            OFFSET)),
        "post": _op("Queue a label: by SKU or location code (read from the ledger now), or from raw `data`",
                    "print", ("201", "PrintJob", "queued; the agent sends it"), body="PrintJobRequest",
                    errors=("400", "404", "503"))},
    "/print-jobs/{job_id}": {"get": _op("One print job", "view", ("200", "PrintJob", "the job"), params=(JOB_ID,),
                                        errors=("400", "404"))},
    "/print-jobs/{job_id}/retry": {"post": _optional_body(_op(
        "Print it again: a failed, uncertain or cancelled job is queued again; a done job is reprinted as a new "
        "job (`reprint_of`)", "print", ("200", "PrintJob", "the job now queued"), params=(JOB_ID,),
        body="PrintJobRetry", errors=("400", "404", "409", "503")))},
    "/print-jobs/{job_id}/cancel": {"post": _op(
        "Cancel a queued, failed or uncertain job", "print", ("200", "PrintJob", "the job, cancelled"),
        params=(JOB_ID,), errors=("400", "404", "409", "503"))},
    "/labels/{label}.png": {"get": _png(_op(
        "The label as the printer will print it (PNG at the printer's dpi)", "view",
        ("200", "PrintJob", "the preview"), params=(
            LABEL, _text("sku", max_len=500), _text("code", max_len=40), _text("lot", max_len=64),
            _text("expiry", "YYYY-MM-DD", max_len=10), _q("count", _COUNT), _text("printer", max_len=40),
            _text("station", max_len=32)), errors=("400", "404")))},
})
