"""The WSGI entry gunicorn loads in each worker: `appliance.webapp.wsgi:app`.

The configuration path comes from `$APPLIANCE_CONFIG` (set by `appliance web`, or by the systemd unit). Each
worker opens its own database connection after the fork; nothing is preloaded in the master.
"""

from __future__ import annotations

from appliance.config import find_config_path, load_config
from appliance.webapp import create_app

app = create_app(load_config(find_config_path(None)))
