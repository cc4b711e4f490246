"""Placeholder: filled in by the admin pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)
