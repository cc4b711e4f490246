"""Roles and the permissions each has. Pure: the web app and the API ask `allowed(role, permission)`.

One table, so that "may a purchaser adjust stock?" has one answer, read in one place, and the test that tries
every role against every action reads it too.
"""

from __future__ import annotations

ROLES = ("manager", "staff", "purchasing", "viewer")

# permission -> roles that have it
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),                        # stock, products, movements, transfers, dashboard
    "export": frozenset(ROLES),                      # CSV downloads
    "receive": frozenset({"manager", "staff", "purchasing"}),
    "ship": frozenset({"manager", "staff"}),
    "move": frozenset({"manager", "staff"}),         # within this site
    "transfer": frozenset({"manager", "staff"}),     # to another site, and booking arrivals
    "count": frozenset({"manager", "staff"}),
    "reserve": frozenset({"manager", "staff"}),      # reserve and release
    "print": frozenset({"manager", "staff"}),
    "scan": frozenset({"manager", "staff"}),         # dock screen and POST /scans
    "adjust": frozenset({"manager"}),                # damaged, lost, found, count correction, expired, theft
    "reverse": frozenset({"manager"}),
    "edit_products": frozenset({"manager"}),
    "suppliers": frozenset({"manager", "purchasing"}),
    "purchase_orders": frozenset({"manager", "purchasing"}),
    "see_costs": frozenset({"manager", "purchasing"}),
    "alerts": frozenset({"manager", "staff", "purchasing"}),   # acknowledge alerts (everyone may see them)
    "manage_users": frozenset({"manager"}),
    "settings": frozenset({"manager"}),
}

# What each movement kind needs when posted through the API or a form.
KIND_PERMISSION = {
    "receive": "receive", "return_in": "receive",
    "ship": "ship", "return_out": "ship",
    "transfer_out": "transfer", "transfer_in": "transfer",
    "count": "count",
    "reserve": "reserve", "release": "reserve",
    "adjust": "adjust", "damage": "adjust",
}

# Reason codes offered for adjustments (free text is still accepted from the API).
ADJUST_REASONS = ("damaged", "lost", "found", "count_correction", "expired", "theft")


def allowed(role: str | None, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role in PERMISSIONS[permission]


def permissions_of(role: str) -> frozenset[str]:
    return frozenset(p for p, roles in PERMISSIONS.items() if role in roles)


def role_at_most(role: str, ceiling: str) -> bool:
    """A token may carry the role of its user or a narrower one, never more."""
    return permissions_of(role) <= permissions_of(ceiling)
