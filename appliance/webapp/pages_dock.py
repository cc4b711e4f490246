"""The dock screen: a full-screen page per scanning station, read at arm's length (web/static/dock.js).

`/dock` lists the stations (the configured guns', those that have scanned, or any name typed in).
`/dock/<station>` shows every scan of that station as it happens (SSE topic `scan`), green, amber or red with
a sound, what to scan next, and the last scans. `POST /dock/<station>/scan` takes `{"code": "..."}` typed in
or read by the phone's camera and hands it to the station desk exactly as a gun's scan is: one transaction,
the scan log row, the station's session, one `Feedback` back (scanning/station.py).
"""

from __future__ import annotations

import json
import re
import time

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.scanning import workflow
from appliance.scanning.scan import visible
from appliance.scanning.station import load_session
from appliance.scanning.workflow import Session
from appliance.webapp import events
from appliance.webapp.context import parts, requires
from appliance.webapp.errors import error_body
from appliance.webapp.station_scans import scan_at_station

bp = Blueprint("dock", __name__)

# What a URL may name: the config's rule for new names, a little wider for stations `appliance scan` made up.
STATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
NEW_STATION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")   # as ScannerConfig.station
RECENT_SCANS = 10
SEEN_WINDOW = 5000     # stations seen among this many latest scans (scan_log has no index on station)
MAX_CODE = 1000        # a GS1 DataMatrix holds at most ~2,300 characters; nobody types more than this
SOURCES = {"manual": "web", "camera": "web-camera"}
GS_SUBSTITUTES = ("<GS>",)   # typed by hand, the separator is written <GS>; a camera delivers 0x1D itself


def _check_station(name: str) -> str:
    if not STATION.fullmatch(name):
        abort(404, description=_("There is no station %(name)s: a station name is 1-32 letters, digits, '.', "
                                 "'_' or '-'.", name=name))
    return name


def stations(conn) -> list[str]:
    configured = {scanner.station for scanner in parts().config.scanners}
    seen = {row[0] for row in conn.execute(
        "SELECT station FROM station_session UNION"
        " SELECT station FROM (SELECT station FROM scan_log ORDER BY id DESC LIMIT ?)", (SEEN_WINDOW,))}
    return sorted(name for name in configured | seen if STATION.fullmatch(name))


def recent_scans(conn, station: str, limit: int = RECENT_SCANS) -> list[dict]:
    """The latest scans of a station, newest first, shaped like the SSE `scan` events (events.scans_after)."""
    rows = conn.execute("SELECT id, at, station, device, raw, kind, outcome, message, feedback FROM scan_log"
                        " WHERE station = ? ORDER BY id DESC LIMIT ?", (station, limit)).fetchall()
    return [{"id": id_, "at": at, "station": st, "device": device, "raw": raw, "raw_visible": visible(raw),
             "kind": kind, "outcome": outcome, "message": message,
             "feedback": json.loads(feedback) if feedback else None}
            for id_, at, st, device, raw, kind, outcome, message, feedback in rows]


def current_step(conn, station: str, latest: dict | None) -> tuple[str, str]:
    """(mode, prompt) the station is at: its saved session, as the next scan will find it."""
    if conn.execute("SELECT 1 FROM station_session WHERE station = ?", (station,)).fetchone():
        session = load_session(conn, station)
        idle = parts().config.scanning.idle_timeout_s
        if session.busy and session.touched and time.time() - session.touched > idle:
            session = Session()   # the next scan starts over (workflow.step), so say what it will expect
        return session.mode, workflow.prompt(session)
    if latest and latest["feedback"]:
        return latest["feedback"].get("mode", "lookup"), latest["feedback"].get("prompt", "")
    return "lookup", workflow.prompt(Session())


@bp.route("/dock")
@requires("scan")
def index():
    conn = parts().db.connection()
    asked = request.args.get("station")
    error = None
    if asked is not None:
        name = asked.strip().lower()
        if NEW_STATION.fullmatch(name):
            return redirect(url_for("dock.station", station=name))
        error = _("%(name)s is not a station name: use 1-32 lower-case letters, digits and '-', starting with a "
                  "letter or digit, e.g. dock-1.", name=asked)
    return render_template("dock/index.html", stations=stations(conn), asked=asked or "", error=error), \
        400 if error else 200


@bp.route("/dock/<station>")
@requires("scan")
def station(station: str):
    _check_station(station)
    conn = parts().db.connection()
    cursor = events.current_cursor(conn).text()   # before reading: a scan meanwhile arrives over SSE
    scans = recent_scans(conn, station)
    latest = scans[0] if scans else None
    mode, prompt = current_step(conn, station, latest)
    return render_template("dock/station.html", station=station, cursor=cursor, scans=scans, latest=latest,
                           mode=mode, prompt=prompt)


def _bad(message: str, field: str, status: int = 400):
    response = jsonify(error_body("invalid_input", message, field=field, fields={field: message}))
    response.status_code = status
    return response


@bp.route("/dock/<station>/scan", methods=["POST"])
@requires("scan")
def scan(station: str):
    _check_station(station)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad('the body must be a JSON object such as {"code": "4006381333931"}', "code")
    code = body.get("code")
    if not isinstance(code, str) or not code.strip(" \t\r\n"):
        return _bad(f"code must be the scanned text, not {code!r}", "code")
    # str.strip() would also eat GS (0x1D), which begins some GS1 codes: strip only what a keyboard adds.
    code = code.strip(" \t\r\n")
    if len(code) > MAX_CODE:
        return _bad(f"code is {len(code)} characters long; a barcode has at most {MAX_CODE}", "code")
    source = body.get("source", "manual")
    if source not in SOURCES:
        return _bad(f"source {source!r} is not one of {', '.join(SOURCES)}", "source")
    return jsonify(scan_at_station(station, code, SOURCES[source], GS_SUBSTITUTES).to_dict())
