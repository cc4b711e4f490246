"""Placeholder: filled in by the stock pages work."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("stock", __name__)
