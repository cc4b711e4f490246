"""GET /api/v1/alerts, GET /api/v1/alerts/<id>, POST /api/v1/alerts/<id>/acknowledge: every role, real app."""

from __future__ import annotations

import pytest
from webtools import ROLES, USERS, token_for

from appliance import clock
from appliance.access.roles import allowed
from appliance.notify.alerts import Alert, raise_alert, resolve_alert
from appliance.webapp.events import open_alerts

T0 = "2026-03-02T08:00:00.000000Z"


def bearer(web, role):
    return {"Authorization": f"Bearer {token_for(web, role)}"}


def raise_one(web, kind="low_stock", subject="DOG-5@BER-A-01", when=T0, severity=""):
    with web.ledger.write() as ops:
        alert_id, _ = raise_alert(ops.conn, Alert(kind, subject, f"{subject} is low", severity=severity, site="BER",
                                                  detail={"available": 2}), when, None)
    return alert_id


@pytest.fixture
def alerts(web):
    low = raise_one(web)
    out = raise_one(web, "out_of_stock", "CAT-2@BER-A-02", "2026-03-02T09:00:00.000000Z")
    gone = raise_one(web, "low_stock", "DOG-15@BER-A-01", "2026-03-02T07:00:00.000000Z")
    with web.ledger.write() as ops:
        resolve_alert(ops.conn, "low_stock", "DOG-15@BER-A-01", "2026-03-02T07:30:00.000000Z", None)
    return {"low": low, "out": out, "gone": gone}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_lists_and_reads_alerts(web, alerts, role):
    client, headers = web.client(), bearer(web, role)
    body = client.get("/api/v1/alerts", headers=headers).get_json()
    assert [a["id"] for a in body["items"]] == [alerts["out"], alerts["low"]]   # open ones, newest first
    first = body["items"][1]
    assert first == {"id": alerts["low"], "kind": "low_stock", "subject": "DOG-5@BER-A-01", "site": "BER",
                     "severity": "warning", "message": "DOG-5@BER-A-01 is low", "detail": {"available": 2},
                     "state": "open", "first_seen": T0, "last_seen": T0, "seen_count": 1, "resolved_at": None,
                     "acknowledged_at": None, "acknowledged_by": None}
    response = client.get(f"/api/v1/alerts/{alerts['gone']}", headers=headers)
    assert response.status_code == 200 and response.get_json()["state"] == "resolved"


@pytest.mark.parametrize("role", ROLES)
def test_acknowledge_needs_the_alerts_permission(web, alerts, role):
    response = web.client().post(f"/api/v1/alerts/{alerts['low']}/acknowledge", headers=bearer(web, role))
    if allowed(role, "alerts"):
        assert response.status_code == 200
        assert response.get_json()["acknowledged_by"] == USERS[role]
    else:
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
        row = web.db.connection().execute("SELECT acknowledged_by FROM alert WHERE id = ?", (alerts["low"],))
        assert row.fetchone() == (None,)


def test_roles_with_the_alerts_permission():
    assert [role for role in ROLES if allowed(role, "alerts")] == ["manager", "staff", "purchasing"]


def test_acknowledgement_is_recorded_once(web, alerts):
    client = web.client()
    url = f"/api/v1/alerts/{alerts['low']}/acknowledge"
    first = client.post(url, headers=bearer(web, "staff")).get_json()
    assert first["acknowledged_by"] == "sam" and first["acknowledged_at"]
    again = client.post(url, headers=bearer(web, "manager"), json={})
    assert again.status_code == 200
    assert (again.get_json()["acknowledged_by"], again.get_json()["acknowledged_at"]) == (
        "sam", first["acknowledged_at"])
    detail = client.get(f"/api/v1/alerts/{alerts['low']}", headers=bearer(web, "viewer")).get_json()
    assert detail["acknowledged_by"] == "sam"


def test_unknown_alerts_are_404(web, alerts):
    client, headers = web.client(), bearer(web, "manager")
    for response in (client.get("/api/v1/alerts/999", headers=headers),
                     client.post("/api/v1/alerts/999/acknowledge", headers=headers),
                     client.get(f"/api/v1/alerts/{2 ** 63}", headers=headers)):
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert error["code"] == "unknown_alert" and "unknown alert" in error["message"]


def test_state_kind_and_paging(web, alerts):
    client, headers = web.client(), bearer(web, "viewer")

    def ids(query):
        response = client.get(f"/api/v1/alerts{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [a["id"] for a in response.get_json()["items"]]

    assert ids("?state=resolved") == [alerts["gone"]]
    assert ids("?state=all") == [alerts["out"], alerts["low"], alerts["gone"]]
    assert ids("?state=all&kind=low_stock") == [alerts["low"], alerts["gone"]]
    page = client.get("/api/v1/alerts?state=all&limit=2", headers=headers).get_json()
    assert len(page["items"]) == 2 and page["next"] == "/api/v1/alerts?state=all&limit=2&offset=2"
    assert [a["id"] for a in client.get(page["next"], headers=headers).get_json()["items"]] == [alerts["gone"]]
    bad = client.get("/api/v1/alerts?state=closed&kind=low", headers=headers)
    assert bad.status_code == 400 and set(bad.get_json()["error"]["details"]["fields"]) == {"state", "kind"}


def test_acknowledge_refuses_a_body_with_fields(web, alerts):
    response = web.client().post(f"/api/v1/alerts/{alerts['low']}/acknowledge", headers=bearer(web, "manager"),
                                 json={"user": "someone else"})
    assert response.status_code == 400 and "user" in response.get_json()["error"]["details"]["fields"]


def test_anonymous_gets_401(web, alerts):
    assert web.client().get("/api/v1/alerts").status_code == 401
    assert web.client().post(f"/api/v1/alerts/{alerts['low']}/acknowledge").status_code == 401


def test_open_alerts_feed_lists_stock_alerts_newest_first(web, alerts):
    conn = web.db.connection()
    rows = open_alerts(conn)
    assert [(r["source"], r["id"]) for r in rows] == [("stock", alerts["out"]), ("stock", alerts["low"])]
    assert rows[0]["severity"] == "critical" and rows[0]["subject"] == "CAT-2@BER-A-02"
    assert rows[0]["acknowledged"] is False and rows[0]["first_seen"] == "2026-03-02T09:00:00.000000Z"


def test_the_dashboard_shows_the_open_alerts(web, alerts):
    html = web.client("viewer").get("/").get_data(as_text=True)
    assert "CAT-2@BER-A-02" in html and "DOG-5@BER-A-01" in html and "DOG-15@BER-A-01" not in html
    assert '<li class="muted none">No open alerts.' not in html


def test_an_alert_change_moves_the_live_alerts_cursor(web):
    from appliance.webapp.events import current_cursor
    conn = web.db.connection()
    before = current_cursor(conn).alerts
    alert_id = raise_one(web, when=clock.now_ts())
    raised = current_cursor(conn).alerts
    assert raised != before
    with web.ledger.write() as ops:
        ops.conn.execute("UPDATE alert SET acknowledged_by = 'mia' WHERE id = ?", (alert_id,))
    assert current_cursor(conn).alerts != raised
