"""Plain helpers (no pytest import) for sync tests with real processes: a `Box` is one site's database, config
and `appliance agent` process; `wait_converged` and `check_invariants` are the checks every scenario ends
with (sync-research.md §5.3).

    boxes = make_boxes(tmp_path, ["BER", "WAW"], broker.port)
    for box in boxes.values(): box.start()
    boxes["BER"].post(Move("receive", ...))
    wait_converged(boxes.values())
    check_invariants(boxes.values())
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sync_sites import build_box, open_box, site_key

from appliance.config.loader import toml_value
from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.db import open_db
from appliance.ledger.requests import Move

REPO = Path(__file__).resolve().parent.parent

FAST = {"gap_grace_s": 0.3, "recovery_wait_s": 3.0, "head_interval_s": 1.0, "rpc_timeout_s": 1.0,
        "keepalive_s": 5}


class Box:
    def __init__(self, root: Path, site: str, peers: list[str], port: int, env: dict | None = None,
                 **mqtt: object) -> None:
        self.site = site
        self.dir = root / site
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.dir / "ledger.db"
        self.config_path = self.dir / "appliance.toml"
        self.log_path = self.dir / "agent.log"
        self.port = port
        self.mqtt = {**FAST, **mqtt}
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.notify: socket.socket | None = None
        self._ledger = None
        build_box(self.db_path, site, peers)
        self.write_config()

    def write_config(self, port: int | None = None) -> None:
        self.port = port or self.port
        mqtt = {"host": "127.0.0.1", "port": self.port, "tls": False, **self.mqtt}
        lines = [f'[site]\nid = "{self.site}"\n', f'[database]\npath = "{self.db_path}"\n', "[mqtt]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in mqtt.items()]
        # Many boxes on one host: none of them announces a web UI on the LAN.
        self.config_path.write_text("\n".join(lines) + '\n[log]\nlevel = "DEBUG"\n\n[web]\nadvertise = false\n',
                                    encoding="utf-8")

    # --- the agent process ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._close_notify()
        path = self.dir / "notify.sock"
        path.unlink(missing_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(path))
        env = {**os.environ, "APPLIANCE_SITE_KEY": site_key(self.site).to_json(), "PYTHONUNBUFFERED": "1",
               "NOTIFY_SOCKET": str(self.dir / "notify.sock"), **self.env}
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(self.config_path), "agent"],
                                     cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until the agent says READY=1 on the notify socket, as it does to systemd."""
        self.notify.settimeout(timeout)
        try:
            assert self.notify.recv(64) == b"READY=1"
        except TimeoutError:
            raise AssertionError(f"{self.site} agent not ready:\n{self.log_text()[-2000:]}") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None
        self._close_notify()

    def _close_notify(self) -> None:
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    # --- the ledger, as the dock would use it ---------------------------------------------------------------

    @property
    def ledger(self):
        if self._ledger is None:
            self._ledger = open_box(self.db_path, self.site)
        return self._ledger

    def post(self, move: Move | list[Move], **kw):
        return self.ledger.post(move, **kw)

    def post_retrying(self, move: Move, timeout: float = 20.0, **kw):
        """Post, waiting while the box recovers (writes refused with `recovering`)."""
        from appliance.errors import Recovering
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.post(move, **kw)
            except Recovering:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.db.close()
            self._ledger = None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        db = open_db(self.db_path, apply_migrations=False)
        try:
            return db.execute_sql(sql, args).fetchall()
        finally:
            db.close()

    def heads(self) -> dict[str, tuple[int, int, str]]:
        return {site: (epoch, seq, digest) for site, epoch, seq, digest in self.query(
            "SELECT id, epoch, head_seq, head_hash FROM site WHERE id IN (SELECT site_id FROM site_key)")}


def make_boxes(root: Path, sites: list[str], port: int, **mqtt: object) -> dict[str, Box]:
    return {site: Box(root, site, [s for s in sites if s != site], port, **mqtt) for site in sites}


def wait_converged(boxes, timeout: float = 30.0) -> None:
    """Until every box holds every site's log up to that site's own head."""
    boxes = list(boxes)
    deadline = time.monotonic() + timeout
    while True:
        heads = {box.site: box.heads() for box in boxes}
        own = {site: heads[site][site] for site in heads}
        behind = [(box, origin, heads[box][origin][1], own[origin][1]) for box in heads for origin in own
                  if heads[box][origin] != own[origin]]
        if not behind:
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {b.site} agent log (tail)\n" + "\n".join(b.log_text().splitlines()[-25:])
                             for b in boxes)
            raise AssertionError(f"not converged after {timeout}s: (box, origin, has, head) {behind}\n{logs}")
        time.sleep(0.05)


def check_invariants(boxes) -> None:
    """sync-research.md §5.3: same movements everywhere (no loss, no duplicate, contiguous, chained, signed),
    same stock for every site on every box, stock = sum of movements, available never negative at the owner."""
    boxes = list(boxes)
    logs = {}
    for box in boxes:
        db = open_db(box.db_path, apply_migrations=False)
        try:
            conn = db.connection()
            problems = check(conn, signatures=True)
            assert problems == [], f"{box.site}: {problems[:5]}"
            logs[box.site] = conn.execute("SELECT origin, epoch, seq, hash FROM movement ORDER BY 1, 2, 3").fetchall()
            totals = {sku: queries.totals_by_site(conn, sku) for (sku,) in conn.execute("SELECT sku FROM variant")}
            negative = conn.execute(
                "SELECT v.sku, l.code, sum(s.on_hand), sum(s.reserved) FROM stock s JOIN variant v ON v.id = s.variant_id"
                " JOIN location l ON l.id = s.location_id WHERE l.site_id = ? GROUP BY s.variant_id, s.location_id"
                " HAVING sum(s.on_hand) - sum(s.reserved) < 0 OR min(s.on_hand) < 0", (box.site,)).fetchall()
            assert not negative, f"{box.site}: negative available {negative}"
            logs[box.site] = (logs[box.site], {sku: t for sku, t in totals.items() if t})
        finally:
            db.close()
    first = boxes[0].site
    for box in boxes[1:]:
        assert logs[box.site][0] == logs[first][0], f"{box.site} and {first} hold different movements"
        assert logs[box.site][1] == logs[first][1], f"{box.site} and {first} compute different stock"
