"""A scan typed or posted through the web, handed to the station desk exactly as a gun's scan would be.

The dock screen and `POST /api/v1/scans` both come here: the device names where the scan came from and who sent
it (`web:sam`, `api:shop`), and the movements it books carry the logged-in user, unless a badge scanned at the
station says otherwise.
"""

from __future__ import annotations

import time

from appliance.scanning.feedback import Feedback
from appliance.scanning.scan import Scan
from appliance.scanning.station import StationDesk
from appliance.webapp.context import parts, principal


def scan_at_station(station: str, code: str, source: str, gs_substitutes: tuple[str, ...]) -> Feedback:
    app = parts()
    login = principal().login
    desk = StationDesk(app.db, app.ledger, idle_timeout_s=app.config.scanning.idle_timeout_s, config=app.config)
    return desk.handle(Scan(station, f"{source}:{login}", code, time.time()), gs_substitutes, user=login)
