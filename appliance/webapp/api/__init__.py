"""The JSON API, `/api/v1`: catalog, locations, stock, movements, transfers, reservations, scans.

Who may call what is `access.roles`; a script sends `Authorization: Bearer wh_…`, a page of this UI its
session cookie plus the X-CSRF-Token header on writes. Errors have one shape (webapp/errors.py). The
OpenAPI document at /api/v1/openapi.json describes every route here, and a test keeps the two in step.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The endpoint modules register their routes on `bp` when imported.
from appliance.webapp.api import (catalog, catalog_write, locations, movements, movements_post,  # noqa: E402,F401
                                  openapi, reservations, scans, stock, transfers)
