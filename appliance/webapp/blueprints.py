"""Every blueprint of the web app, in one list: adding a page module means adding it here."""

from __future__ import annotations

from importlib import import_module

MODULES = (
    "appliance.webapp.pages_auth",
    "appliance.webapp.pages_dashboard",
    "appliance.webapp.pages_products",
    "appliance.webapp.pages_stock",
    "appliance.webapp.pages_movements",
    "appliance.webapp.pages_actions",
    "appliance.webapp.pages_dock",
    "appliance.webapp.pages_admin",
    "appliance.webapp.pages_labels",
    "appliance.webapp.live",
    "appliance.webapp.api",
)


def all_blueprints():
    return [import_module(name).bp for name in MODULES]
