"""Placeholder: filled in by the actions pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("actions", __name__)
