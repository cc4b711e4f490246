"""POST /scans: a scan handed to the station desk exactly as a gun's would be; GET /scans: the scan log.

The desk runs the station's workflow in one ledger transaction and always answers with its `Feedback` (an
error level when the ledger refused), so the response is 200 whenever the scan was taken. The scan log names
the device `api:<login>`, so a scan posted by a script is told apart from one read by a gun.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

from flask import jsonify

from appliance.config.schema import ScannerConfig
from appliance.scanning import scan_log
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import Fields, Query, json_body, raise_if
from appliance.webapp.context import parts, requires
from appliance.webapp.station_scans import scan_at_station

# The station-name rule of the scanner config, so a station the API feeds is one a gun could belong to.
_STATION_CHECK = next(f for f in dataclass_fields(ScannerConfig) if f.name == "station").metadata["check"]
MAX_CODE = 4000   # GS1 codes with many AIs stay far below this


def station_name(fields: Fields, value):
    if isinstance(value, str):
        try:
            return _STATION_CHECK(value)
        except ValueError as exc:
            return fields.fail("station", str(exc))
    return value


@bp.post("/scans")
@requires("scan")
def post_scan():
    fields = Fields(json_body())
    fields.only(("station", "code", "gs"))
    station = station_name(fields, fields.text("station", required=True, max_len=32))
    code = fields.text("code", required=True, max_len=MAX_CODE)
    gs = fields.text("gs", nullable=True, default=None, max_len=16)
    raise_if(fields.errors)
    config = parts().config
    if gs is None:
        # What the station's own guns send instead of the GS separator, as their readers would decode it.
        gs_substitutes = next((s.gs_substitutes for s in config.scanners if s.station == station), ("<GS>",))
    else:
        gs_substitutes = (gs,) if gs else ()
    return jsonify(scan_at_station(station, code, "api", gs_substitutes).to_dict())


@bp.get("/scans")
@requires("view")
def list_scans():
    query = Query("station", "unresolved", "limit")
    station = query.text("station", max_len=32)
    unresolved = query.boolean("unresolved")
    limit = query.integer("limit", 50, 1, 500)
    query.done()
    return jsonify({"items": scan_log.recent(parts().db, station=station, unresolved=unresolved, limit=limit),
                    "limit": limit})
