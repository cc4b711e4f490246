"""Alerts: list (open ones by default), read one, acknowledge (POST /alerts/<id>/acknowledge).

Everyone who may view stock sees the alerts; acknowledging needs the `alerts` permission. The first
acknowledgement stands: a second one answers the alert as it is, with the first person's name.
"""

from __future__ import annotations

from flask import jsonify

from appliance.notify.alerts import KINDS
from appliance.notify.book import ALERT_STATES, acknowledge_alert, get_alert, list_alerts
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Fields, Query, json_body, offset_page, paging, raise_if
from appliance.webapp.context import parts, principal, requires


@bp.get("/alerts")
@requires("view")
def list_alerts_view():
    query = Query("state", "kind", "limit", "offset")
    state = query.choice("state", ALERT_STATES) or "open"
    kind = query.choice("kind", tuple(KINDS))
    limit, offset = paging(query)
    query.done()
    items = list_alerts(parts().db.connection(), state, kind, limit=limit + 1, offset=offset)
    return jsonify(offset_page(items, limit, offset, "api.list_alerts_view", state=state, kind=kind))


@bp.get("/alerts/<int:alert_id>")
@requires("view")
def get_alert_view(alert_id: int):
    Query().done()
    return jsonify(get_alert(parts().db.connection(), alert_id))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@requires("alerts")
def acknowledge_alert_view(alert_id: int):
    fields = Fields(json_body(empty_ok=True))
    fields.only(())
    raise_if(fields.errors)
    return jsonify(acknowledge_alert(parts(), alert_id, principal().login))
