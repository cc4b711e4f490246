"""Placeholder: filled in by the dock pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dock", __name__)
