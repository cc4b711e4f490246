"""The alerts endpoints' part of the OpenAPI document, added to `PATHS` and `SCHEMAS` when imported."""

from __future__ import annotations

from appliance.notify.alerts import KINDS, SEVERITIES
from appliance.notify.book import ALERT_STATES
from appliance.webapp.api.openapi import OFFSET, PATHS, _limit, _op, _path_param, _q
from appliance.webapp.api.openapi_schemas import INT, SCHEMAS, TS, maybe, obj, page, text
from appliance.webapp.api.payloads import MAX_INT

ALERT_ID = _path_param("alert_id", {"type": "integer", "minimum": 1, "maximum": MAX_INT})

SCHEMAS.update({
    "Alert": obj({
        "id": INT, "kind": text(enum=list(KINDS)),
        "subject": text("what it is about, e.g. DOG-5@BER-A-01; with the kind, one open alert each"),
        "site": maybe(text()), "severity": text(enum=list(SEVERITIES)), "message": text("for people"),
        "detail": {"type": "object", "description": "the figures behind it (available, reorder point, ...)"},
        "state": text(enum=["open", "resolved"]), "first_seen": TS, "last_seen": TS,
        "seen_count": {"type": "integer", "minimum": 1, "description": "how often the condition was seen while open"},
        "resolved_at": maybe(TS), "acknowledged_at": maybe(TS),
        "acknowledged_by": maybe(text("the first user who acknowledged it"))}),
    "AlertPage": page("Alert"),
})

PATHS.update({
    "/alerts": {"get": _op("Alerts, newest first: open ones unless `state` says otherwise", "view",
                           ("200", "AlertPage", "a page of alerts"), params=(
        _q("state", {"type": "string", "enum": list(ALERT_STATES), "default": "open"}),
        _q("kind", {"type": "string", "enum": list(KINDS)}), _limit(50, 200), OFFSET))},
    "/alerts/{alert_id}": {"get": _op("One alert", "view", ("200", "Alert", "the alert"), params=(ALERT_ID,),
                                      errors=("400", "404"))},
    "/alerts/{alert_id}/acknowledge": {"post": _op(
        "Acknowledge an alert; the first acknowledgement stands", "alerts",
        ("200", "Alert", "the alert, with who acknowledged it first"), params=(ALERT_ID,), errors=("400", "404"))},
})
