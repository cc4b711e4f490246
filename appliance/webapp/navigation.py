"""The menu: (endpoint, label, permission). Entries whose page is not registered are left out."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

LINKS = (
    ("products.index", _l("Products"), "view"),
    ("stock.index", _l("Stock"), "view"),
    ("movements.index", _l("Movements"), "view"),
    ("actions.index", _l("Book"), "receive"),
    ("dock.index", _l("Dock"), "scan"),
    ("labels.queue_page", _l("Print queue"), "print"),
    ("admin.users", _l("Users"), "manage_users"),
    ("admin.settings", _l("Settings"), "settings"),
)


def nav_links():
    return [link for link in LINKS if link[0] in current_app.view_functions]

# Role names are shown translated with `_(role)`; listed here so that extraction finds them.
ROLE_NAMES = {"manager": _l("manager"), "staff": _l("staff"), "purchasing": _l("purchasing"), "viewer": _l("viewer")}
