"""Warehouse stock appliance: an immutable SQLite ledger of stock movements for small multi-site businesses."""

__version__ = "0.1.0"
