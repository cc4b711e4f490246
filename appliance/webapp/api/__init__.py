"""The JSON API, `/api/v1`: catalog, locations, stock, movements, transfers, reservations, scans, printing.

Who may call what is `access.roles`; a script sends `Authorization: Bearer wh_…`, a page of this UI its
session cookie plus the X-CSRF-Token header on writes. Errors have one shape (webapp/errors.py). The
OpenAPI document at /api/v1/openapi.json describes every route here, and a test keeps the two in step.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The endpoint modules register their routes on `bp` when imported.
from appliance.webapp.api import (alerts, catalog, catalog_write, locations, movements,  # noqa: E402,F401
                                  movements_post, openapi, printing, purchase_orders, reservations, scans, stock,
                                  transfers)
# After openapi: each adds its paths and schemas to the one document.
from appliance.webapp.api import openapi_alerts, openapi_printing, openapi_purchasing  # noqa: E402,F401
