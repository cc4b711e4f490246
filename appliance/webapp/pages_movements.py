"""Placeholder: filled in by the movements pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("movements", __name__)
