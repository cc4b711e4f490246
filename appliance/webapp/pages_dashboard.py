"""The dashboard (placeholder until the dashboard work lands)."""

from __future__ import annotations

from flask import Blueprint, render_template

from appliance.webapp.context import requires

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@requires("view")
def index():
    return render_template("dashboard.html")
