"""Placeholder: filled in by the products pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("products", __name__)
