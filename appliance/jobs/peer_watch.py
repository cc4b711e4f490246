"""Sync peers gone quiet: a peer in `sync_peer` not heard from for `[alerts] peer_offline_minutes` raises
'peer_offline' (subject: its site id), resolved once it is heard from again.

`last_heard` is when the agent last received anything from the peer (its head is re-announced every
`head_interval_s`, so a live peer is heard every few seconds). A peer never heard from has no row and no
baseline to measure from: `appliance sync status` shows it as unknown.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from appliance import clock
from appliance.ledger.models import SyncPeer
from appliance.notify.alerts import Alert, Recipients, open_subjects, raise_alert, resolve_alert

logger = logging.getLogger(__name__)

KIND = "peer_offline"


def run_peer_watch(app, now: datetime) -> str:
    """The `peer_watch` job."""
    minutes = app.config.alerts.peer_offline_minutes
    cutoff = clock.to_ts(now - timedelta(minutes=minutes))
    peers = [(p.site_id, p.last_heard, p.state) for p in
             SyncPeer.select(SyncPeer.site, SyncPeer.last_heard, SyncPeer.state).order_by(SyncPeer.site)]
    silent = {site: heard for site, heard, _ in peers if heard is not None and heard < cutoff}
    now_ts = clock.to_ts(now)
    recipients = Recipients(app.config)
    with app.ledger.write(device="scheduler") as ops:
        for site, heard in silent.items():
            _, new = raise_alert(ops.conn, Alert(
                KIND, site, f"sync peer {site} not heard from since {heard} (over {minutes} min)",
                site=app.config.site.id, detail={"peer": site, "last_heard": heard, "minutes": minutes}),
                now_ts, recipients)
            if new:
                logger.warning("sync peer %s not heard from since %s", site, heard)
        back = open_subjects(ops.conn, KIND) - set(silent)
        for site in sorted(back):
            resolve_alert(ops.conn, KIND, site, now_ts, recipients)
    return f"{len(peers)} peer(s), {len(silent)} silent for over {minutes} min"
