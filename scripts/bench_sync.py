#!/usr/bin/env python3
"""Multi-site sync benchmark (issue 3): two sites, BER and WAW, each with its own database and `appliance agent`
process, on a Mosquitto on 127.0.0.1 that this script starts and stops.

Prints ONE JSON object on stdout; progress goes to stderr. `targets` maps every target to
{"measured", "target", "met"}; everything else is detail. Every baseline is measured in the same run.

1. Replication lag at a steady rate: this process posts receive/ship movements at BER (its own connection,
   `Ledger` with BER's key) at 50/s for --seconds, noting the time right after each commit; a thread polls
   WAW's database (its own read connection, every ~1 ms) for BER's `site.head_seq` and notes when each seq
   first appears. Lag = applied − committed; p50/p90/p99/max in ms. Baseline: the QoS 1 publish → receive
   time between two plain paho clients through the same broker, same rate and duration, same payload size.
   Target: lag p99 <= 50 ms.
2. Catch-up: WAW's agent is stopped (SIGTERM), --backlog movements are posted at BER in batches of 100 and
   BER's agent announces them (its retained head reaches BER's head); WAW's agent is started again and we
   time until WAW holds BER's whole log, from the agent's start and from the first backlog movement applied.
   Target: >= 5,000 movements/s from the first applied. Baseline: `Inbox(db, "WAW").receive()` of the same
   tokens, in chunks of 500, in this process, into a copy of WAW's database taken when its agent stopped
   (what applying costs without MQTT and the agent around it).
3. Signature cost per movement (detail only): `Signer.sign(body)` and `open_token` + `parse_body` over
   realistic bodies (a hash chain of receive/ship movements), against raw Ed25519 sign/verify of the same
   bytes with `cryptography`.
4. Post rate with signing vs without: two databases set up identically, `Ledger(db, "BER", key)` and
   `Ledger(db2, "BER", None)`, alternating rounds of N single-movement posts (receive 3 / ship 1, op_ids),
   synchronous=FULL. Target: median over rounds of signed rate / unsigned rate >= 0.8.

The broker gets the minimal config (listener, anonymous, no persistence) plus the queue limits of the shipped
firmware-config/mosquitto/appliance.conf (max_queued_messages, max_queued_bytes, max_inflight_messages), so
that the backlog queued for the offline WAW is kept as it would be in production; `--broker-defaults` leaves
them at Mosquitto's defaults (1,000 queued messages: the backlog then overflows and WAW catches up by fills).

Options: --quick (4 s of lag, 3,000 backlog, few rounds; for CI smoke tests), --seconds, --backlog, --posts,
--rounds, --broker-defaults, --keep (keep the temporary directory: databases, configs, agent and broker logs).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))

import cryptography  # noqa: E402
import paho.mqtt  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from appliance import clock  # noqa: E402
from appliance.ledger.check import check  # noqa: E402
from appliance.ledger.db import open_db  # noqa: E402
from appliance.ledger.movement_token import BODY_VERSION, Body, Signer, parse_body  # noqa: E402
from appliance.ledger.requests import Move  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402
from appliance.ledger.sites import add_location, init_site  # noqa: E402
from appliance.sync import outbox, topics  # noqa: E402
from appliance.sync.inbox import Inbox  # noqa: E402
from appliance.sync.identity import SigningKey  # noqa: E402
from appliance.sync.messages import Head, MovementBatch, decode  # noqa: E402
from appliance.sync.registry import add_entry  # noqa: E402
from appliance.sync.tokens import open_token  # noqa: E402

# Debian puts it in /usr/sbin, which is not on a normal user's PATH.
MOSQUITTO = ("/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK)
             else shutil.which("mosquitto") or "mosquitto")
SHIPPED_BROKER_CONF = ROOT / "firmware-config" / "mosquitto" / "appliance.conf"
QUEUE_KEYS = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages")
HOST = "127.0.0.1"
NAMES = {"BER": "Berlin", "WAW": "Warszawa"}
N_SKUS = 50
BINS = 4
RATE = 50.0             # movements per second in the lag phase
POST_BATCH = 100        # movements per ledger.post() call in the backlog
INBOX_CHUNK = 500       # tokens per Inbox.receive() call in the in-process baseline
POLL_S = 0.001          # how often the head poller reads WAW's database


def log(msg: str) -> None:
    print(f"[bench-sync {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- statistics --------------------------------------------------------------------------------------------

def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def dist_ms(seconds: list[float]) -> dict:
    v = sorted(x * 1e3 for x in seconds)
    if not v:
        return {"n": 0}
    r = lambda x: round(x, 3)  # noqa: E731
    return {"n": len(v), "p50": r(pct(v, 50)), "p90": r(pct(v, 90)), "p99": r(pct(v, 99)), "max": r(v[-1]),
            "min": r(v[0]), "mean": r(statistics.fmean(v))}


def target(measured: float, text: str, limit: float, *, higher_is_better: bool = False, **detail) -> dict:
    met = measured >= limit if higher_is_better else measured <= limit
    return {"measured": measured, "target": text, "met": bool(met), **detail}


# --- processes: never leave one behind ----------------------------------------------------------------------

_live: set[subprocess.Popen] = set()
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:   # in the child between fork and exec: SIGKILL when this process dies
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(args: list[str], **kw) -> subprocess.Popen:
    """Start a child in its own session (a Ctrl-C at the terminal goes to us, and we stop it); from the main
    thread only, since PR_SET_PDEATHSIG fires when the forking thread ends."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
                            **kw)
    _live.add(proc)
    return proc


def end(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
    """Send `sig` to one child we started and wait; SIGKILL if it does not exit within `timeout`."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)
    return proc.returncode


@atexit.register
def _kill_live() -> None:
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _live.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Broker:
    """Mosquitto with a minimal config in `workdir`: anonymous, no persistence, loopback, a free port."""

    def __init__(self, workdir: Path, shipped_queues: bool) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.extra = shipped_queue_lines() if shipped_queues else []

    def config_lines(self) -> list[str]:
        lines = [f"listener {self.port} {HOST}", "allow_anonymous true", "persistence false",
                 f"log_dest file {self.workdir / 'mosquitto.log'}"] + self.extra
        if os.geteuid() == 0:
            lines.append("user root")   # Mosquitto 2.0.11 drops to `mosquitto` otherwise
        return lines

    def start(self) -> None:
        for _ in range(3):   # the port we picked may be taken before Mosquitto binds it
            self.port = free_port()
            conf = self.workdir / "mosquitto.conf"
            conf.write_text("\n".join(self.config_lines()) + "\n", encoding="utf-8")
            with open(self.workdir / "mosquitto.out", "ab") as out:
                self.proc = spawn([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                  cwd=self.workdir)
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    with socket.create_connection((HOST, self.port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.02)
            end(self.proc, signal.SIGKILL)
        raise RuntimeError(f"mosquitto did not start; {self.workdir / 'mosquitto.out'}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("mosquitto.out", "mosquitto.log"):
            path = self.workdir / name
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        end(self.proc)
        self.proc = None


def shipped_queue_lines() -> list[str]:
    """The queue limits of the shipped broker config, as config lines (none if the file is not there)."""
    if not SHIPPED_BROKER_CONF.exists():
        return []
    found = {}
    for line in SHIPPED_BROKER_CONF.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in QUEUE_KEYS:
            found[parts[0]] = parts[1]
    return [f"{k} {v}" for k, v in found.items()]


# --- sites -------------------------------------------------------------------------------------------------

def site_key(site: str) -> SigningKey:
    """The fixed key of a bench site (the same in every process that needs it)."""
    return SigningKey.from_seed(f"{site}#1", hashlib.sha256(f"bench-sync {site}".encode()).digest())


def registry_entry(site: str) -> dict:
    key = site_key(site)
    return {"site": site, "name": NAMES.get(site, site), "kid": key.kid, "public_key": key.public.text(),
            "location_prefix": site}


def build_site(path: Path, site: str, peers: list[str]) -> None:
    """A fresh ledger for `site`: its own key registered, the peers' entries (as `appliance site add` would),
    bins {site}-A-01..04, and a catalog of N_SKUS variants BENCH-001.. with cost prices, no stock."""
    db = open_db(path)
    try:
        init_site(db, site, NAMES.get(site, site))
        key = site_key(site)
        ts = clock.now_ts()
        with db.atomic("IMMEDIATE"):
            db.execute_sql("INSERT INTO site_key (kid, site_id, public_key, created_at) VALUES (?, ?, ?, ?)",
                           (key.kid, site, key.public.text(), ts))
            db.execute_sql("UPDATE site SET location_prefix = ? WHERE id = ?", (site, site))
        for peer in peers:
            add_entry(db, registry_entry(peer))
        for i in range(1, BINS + 1):
            add_location(db, site, f"{site}-A-{i:02d}", name=f"bay {i}")
        with db.atomic("IMMEDIATE"):
            db.execute_sql("INSERT INTO product (id, sku, name, created_at, updated_at)"
                           " VALUES (1, 'BENCH', 'Bench', ?, ?)", (ts, ts))
            for i in range(1, N_SKUS + 1):
                db.execute_sql("INSERT INTO variant (id, product_id, sku, cost_price, created_at, updated_at)"
                               " VALUES (?, 1, ?, ?, ?, ?)", (i, f"BENCH-{i:03d}", 100 + i, ts, ts))
    finally:
        db.close()


def move(site: str, g: int) -> Move:
    """Movement number g of the workload: pairs (receive 3, ship 1) of one SKU at one bin, cycling over SKUs."""
    pair = g // 2
    sku, location = f"BENCH-{pair % N_SKUS + 1:03d}", f"{site}-A-{pair % BINS + 1:02d}"
    if g % 2 == 0:
        return Move("receive", sku=sku, location=location, qty=3)
    return Move("ship", sku=sku, location=location, qty=1)


def head_row(conn: sqlite3.Connection, origin: str) -> tuple[int, int, str]:
    return conn.execute("SELECT epoch, head_seq, head_hash FROM site WHERE id = ?", (origin,)).fetchone()


def read_conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=15, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 15000")
    return conn


class Agent:
    """One site's `appliance agent` process: its config beside the database, its log in agent.log."""

    def __init__(self, workdir: Path, site: str, db_path: Path, port: int) -> None:
        self.site = site
        self.dir = workdir / site
        self.db_path = db_path
        self.config_path = self.dir / "appliance.toml"
        self.log_path = self.dir / "agent.log"
        self.proc: subprocess.Popen | None = None
        self.notify: socket.socket | None = None
        self.config_path.write_text(
            f'[site]\nid = "{site}"\n\n[database]\npath = "{db_path}"\n\n'
            f'[mqtt]\nhost = "{HOST}"\nport = {port}\ntls = false\n\n[log]\nlevel = "INFO"\n', encoding="utf-8")

    def start(self) -> None:
        sock_path = self.dir / "notify.sock"
        sock_path.unlink(missing_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(sock_path))
        env = {**os.environ, "APPLIANCE_SITE_KEY": site_key(self.site).to_json(), "PYTHONUNBUFFERED": "1",
               "NOTIFY_SOCKET": str(sock_path)}
        with self.log_path.open("ab") as out:
            self.proc = spawn([sys.executable, "-m", "appliance", "--config", str(self.config_path), "agent"],
                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the agent says READY=1 on its notify socket, as it does to systemd."""
        self.notify.settimeout(timeout)
        try:
            if self.notify.recv(64) != b"READY=1":
                raise RuntimeError(f"{self.site} agent sent something other than READY=1")
        except TimeoutError:
            raise RuntimeError(f"{self.site} agent not ready after {timeout}s:\n{self.log_tail()}") from None

    def stop(self) -> int | None:
        code = end(self.proc)
        self.proc = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def wait_until(predicate, timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class HeadPoller(threading.Thread):
    """Reads `origin`'s head_seq in a database every POLL_S on its own connection; notes when each seq first
    appears (`seen`), and when the head first moved past where it was at start."""

    def __init__(self, path: Path, origin: str) -> None:
        super().__init__(daemon=True, name=f"poll-{origin}")
        self.conn = read_conn(path)
        self.origin = origin
        self.start_seq = self.last = head_row(self.conn, origin)[1]
        self.seen: dict[int, float] = {}
        self.first: tuple[float, int] | None = None   # (time, head seen) of the first move
        self.polls = 0
        self._halt = threading.Event()

    def run(self) -> None:
        clock_ = time.perf_counter
        query = "SELECT head_seq FROM site WHERE id = ?"
        args = (self.origin,)
        while not self._halt.is_set():
            seq = self.conn.execute(query, args).fetchone()[0]
            self.polls += 1
            if seq > self.last:
                t = clock_()
                if self.first is None:
                    self.first = (t, seq)
                for s in range(self.last + 1, seq + 1):
                    self.seen[s] = t
                self.last = seq
            time.sleep(POLL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.conn.close()


def paho_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


# --- 1. replication lag ------------------------------------------------------------------------------------

def bench_lag(ber: Ledger, waw_path: Path, seconds: float) -> dict:
    n = int(seconds * RATE)
    log(f"lag: {n} posts at BER, {RATE:.0f}/s, polling WAW every {POLL_S * 1e3:.0f} ms")
    poller = HeadPoller(waw_path, "BER")
    poller.start()
    commits: dict[int, float] = {}
    late = 0
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        delay = t0 + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.005:
            late += 1
        result = ber.post(move("BER", i), op_id=f"lag-{i}")
        commits[result.movements[0].seq] = time.perf_counter()
    posting_s = time.perf_counter() - t0
    last = max(commits)
    try:
        wait_until(lambda: poller.last >= last, 30, f"WAW to apply BER seq {last}", step=0.005)
    finally:
        poller.stop()
    lags = [poller.seen[s] - t for s, t in commits.items()]
    return {"posts": n, "rate_per_s": RATE, "seconds": round(posting_s, 2), "posts_behind_schedule": late,
            "lag_ms": dist_ms(lags), "poller_reads": poller.polls,
            "what": "time from BER's commit returning (this process) to BER's seq showing in WAW's site.head_seq"}


def bench_paho_rtt(port: int, seconds: float, payload_size: int) -> dict:
    """Baseline: QoS 1 publish -> on_message between two paho clients (MQTT 5) through the same broker."""
    n = int(seconds * RATE)
    log(f"lag baseline: {n} paho QoS 1 publishes of {payload_size} bytes, {RATE:.0f}/s")
    received: dict[int, float] = {}
    subscribed = threading.Event()
    sub, pub = paho_client(f"bench-rtt-sub-{os.getpid()}"), paho_client(f"bench-rtt-pub-{os.getpid()}")
    sub.on_connect = lambda c, *_: c.subscribe("bench/rtt", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda c, u, msg: received.setdefault(int.from_bytes(msg.payload[:8], "big"),
                                                            time.perf_counter())
    connected = threading.Event()
    pub.on_connect = lambda *_: connected.set()
    sent: dict[int, float] = {}
    try:
        for client in (sub, pub):
            client.connect(HOST, port, keepalive=30)
            client.loop_start()
        if not (subscribed.wait(10) and connected.wait(10)):
            raise RuntimeError("paho baseline clients did not connect/subscribe")
        padding = b"x" * max(0, payload_size - 8)
        t0 = time.perf_counter() + 0.05
        for i in range(n):
            delay = t0 + i / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[i] = time.perf_counter()
            pub.publish("bench/rtt", i.to_bytes(8, "big") + padding, qos=1)
        wait_until(lambda: len(received) >= n, 15, "the paho baseline messages", step=0.005)
    finally:
        for client in (pub, sub):
            client.disconnect()
            client.loop_stop()
    return {"messages": n, "payload_bytes": payload_size, "latency_ms": dist_ms([received[i] - sent[i] for i in sent]),
            "what": "paho publish(qos=1) called -> subscriber's on_message, both clients in this process"}


# --- 2. catch-up -------------------------------------------------------------------------------------------

class HeadWatch:
    """A paho client on BER's retained head topic: what BER's agent has announced."""

    def __init__(self, port: int, origin: str) -> None:
        self.seq = 0
        self.client = paho_client(f"bench-head-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe(topics.head(origin), qos=1)
        self.client.on_message = self._on_message
        self.client.connect(HOST, port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            head = decode(msg.payload, kind="head")
        except Exception:   # noqa: BLE001  (a cleared retained message; not ours to judge)
            return
        if isinstance(head, Head):
            self.seq = max(self.seq, head.seq)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bench_catchup(ber: Ledger, agents: dict[str, Agent], waw_path: Path, copy_path: Path, port: int,
                  backlog: int, timeout: float) -> dict:
    waw = agents["WAW"]
    log("catch-up: stopping WAW's agent (SIGTERM)")
    code = waw.stop()
    src = sqlite3.connect(waw_path)   # the agent is gone: a consistent copy of WAW before the backlog
    dst = sqlite3.connect(copy_path)
    src.backup(dst)
    dst.close()
    src.close()

    conn = ber.db.connection()
    epoch, base, _ = head_row(conn, "BER")
    log(f"catch-up: posting {backlog} movements at BER in batches of {POST_BATCH} (BER head {base})")
    watch = HeadWatch(port, "BER")
    t0 = time.perf_counter()
    g = 0
    while g < backlog:
        k = min(POST_BATCH, backlog - g)
        ber.post([move("BER", 10**7 + g + j) for j in range(k)], op_id=f"backlog-{g}")
        g += k
    post_s = time.perf_counter() - t0
    goal = head_row(conn, "BER")[1]
    assert goal == base + backlog, (goal, base, backlog)
    try:
        wait_until(lambda: watch.seq >= goal, 120, f"BER's agent to announce head {goal}")
    finally:
        watch.close()
    announced_s = time.perf_counter() - t0
    log(f"catch-up: posted in {post_s:.1f}s ({backlog / post_s:.0f}/s), announced by BER's agent after "
        f"{announced_s:.1f}s; starting WAW's agent")

    poller = HeadPoller(waw_path, "BER")
    poller.start()
    log_mark = len(waw.log_text())
    t_start = time.perf_counter()
    waw.start()
    waw.wait_ready()
    t_ready = time.perf_counter()
    timed_out = False
    try:
        wait_until(lambda: poller.last >= goal, timeout, f"WAW to catch up to BER seq {goal}", step=0.005)
    except RuntimeError:
        timed_out = True
        log(f"catch-up: TIMED OUT after {timeout}s at seq {poller.last} of {goal}")
    poller.stop()
    t_done = poller.seen.get(goal, time.perf_counter())
    applied = poller.last - base
    first_t, first_seq = poller.first or (t_done, poller.last)
    from_start = t_done - t_start
    from_first = t_done - first_t
    new_log = waw.log_text()[log_mark:]
    out = {
        "backlog": backlog, "waw_agent_exit_code_on_sigterm": code,
        "posted_s": round(post_s, 2), "posted_per_s": round(backlog / post_s, 1),
        "ber_agent_announced_head_after_s": round(announced_s, 2),
        "timed_out": timed_out, "applied": applied,
        "s_from_agent_start": round(from_start, 3),
        "s_agent_start_to_ready": round(t_ready - t_start, 3),
        "s_agent_start_to_first_applied": round(first_t - t_start, 3),
        "s_from_first_applied": round(from_first, 3),
        "first_applied_seq": first_seq - base,
        "rate_from_agent_start_per_s": round(applied / from_start, 1),
        # Movements applied after the first observation, over the time since it (the first commit is a point).
        "rate_from_first_applied_per_s": round((poller.last - first_seq) / from_first, 1) if from_first > 0 else 0.0,
        "head_steps_seen": len(set(poller.seen.values())),
        "waw_fill_requests": len(re.findall(r"asking \S+ for BER", new_log)),
        "waw_log_warnings": len(re.findall(r" (WARNING|ERROR) ", new_log)),
    }
    return out


def bench_inbox(ber: Ledger, copy_path: Path, base: int, goal: int) -> dict:
    """Baseline: the same backlog tokens applied in this process by the inbox, no MQTT, no agent."""
    conn = ber.db.connection()
    epoch = head_row(conn, "BER")[0]
    tokens = outbox.tokens(conn, "BER", epoch, base + 1, goal, limit=10**9)
    db = open_db(copy_path)
    try:
        inbox = Inbox(db, "WAW")
        log(f"catch-up baseline: Inbox.receive() of {len(tokens)} tokens in chunks of {INBOX_CHUNK}")
        applied = duplicates = rejected = 0
        t0 = time.perf_counter()
        for i in range(0, len(tokens), INBOX_CHUNK):
            outcome = inbox.receive(tokens[i:i + INBOX_CHUNK])
            applied += outcome.total_applied
            duplicates += outcome.duplicates
            rejected += outcome.rejected
        elapsed = time.perf_counter() - t0
        copy_head = head_row(db.connection(), "BER")[1]
        # The share of verification (signature, body, owner; no writes) in that: the same tokens again.
        t0 = time.perf_counter()
        for token in tokens:
            inbox.verify(token, "BER")
        verify_s = time.perf_counter() - t0
    finally:
        db.close()
    if applied != len(tokens) or copy_head != goal:
        raise RuntimeError(f"inbox baseline applied {applied} of {len(tokens)} (head {copy_head} of {goal}; "
                           f"{duplicates} duplicates, {rejected} rejected)")
    return {"tokens": len(tokens), "chunk": INBOX_CHUNK, "s": round(elapsed, 3),
            "rate_per_s": round(applied / elapsed, 1), "verify_only_s": round(verify_s, 3),
            "verify_share": round(verify_s / elapsed, 3),
            "what": "Inbox(db, 'WAW').receive(chunk) (verify + apply + commit) into a copy of WAW's database"}


# --- 3. signatures -----------------------------------------------------------------------------------------

def realistic_bodies(key: SigningKey, n: int) -> list[Body]:
    """n bodies of a hash chain as the ledger writes them: receive 3 (with unit cost) / ship 1, op ids."""
    signer = Signer(key)
    bodies, prev = [], ""
    for seq in range(1, n + 1):
        mv = move("BER", seq - 1)
        receive = mv.kind == "receive"
        ts = f"2026-03-02T08:{(seq // 60) % 60:02d}:{seq % 60:02d}.{seq % 10**6:06d}Z"
        body = Body(BODY_VERSION, "BER", 1, seq, prev, mv.kind, mv.sku, mv.location, None, "", None,
                    3 if receive else -1, 0, 0, 100 + int(mv.sku[-3:]) if receive else None, None, None, None,
                    None, None, "dock1", "gun-1", f"bench-{seq}", ts)
        bodies.append(body)
        prev = signer.sign(body)[1]
    return bodies


def bench_signatures(n: int, rounds: int) -> dict:
    key = site_key("BER")
    log(f"signatures: {rounds} rounds over {n} bodies")
    bodies = realistic_bodies(key, n)
    signer = Signer(key)
    keys = {key.kid: key.public}
    tokens = [signer.sign(b)[0] for b in bodies]
    signing_inputs = [t.rsplit(".", 1)[0].encode("ascii") for t in tokens]
    raw_private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench-sync BER").digest())
    raw_public = raw_private.public_key()
    raw_sigs = [raw_private.sign(x) for x in signing_inputs]
    for t in tokens[:10]:   # the measured paths give the right answers
        assert parse_body(open_token(t, keys)[1]) in bodies

    def sign_all():
        for b in bodies:
            signer.sign(b)

    def verify_all():
        for t in tokens:
            parse_body(open_token(t, keys)[1])

    def raw_sign_all():
        for x in signing_inputs:
            raw_private.sign(x)

    def raw_verify_all():
        for s, x in zip(raw_sigs, signing_inputs):
            raw_public.verify(s, x)

    arms = {"sign": sign_all, "verify_open_token_parse_body": verify_all, "raw_ed25519_sign": raw_sign_all,
            "raw_ed25519_verify": raw_verify_all}
    per_round = {name: [] for name in arms}
    for _ in range(rounds):
        for name, fn in arms.items():
            t0 = time.perf_counter()
            fn()
            per_round[name].append((time.perf_counter() - t0) / n * 1e6)
    us = {name: round(statistics.median(v), 2) for name, v in per_round.items()}
    return {"bodies": n, "rounds": rounds, "us_per_movement_median": us,
            "us_per_movement_rounds": {k: [round(x, 2) for x in v] for k, v in per_round.items()},
            "sign_over_raw": round(us["sign"] / us["raw_ed25519_sign"], 2),
            "verify_over_raw": round(us["verify_open_token_parse_body"] / us["raw_ed25519_verify"], 2),
            "body_bytes_mean": round(statistics.fmean(len(t.split(".")[1]) * 3 / 4 for t in tokens)),
            "token_chars_mean": round(statistics.fmean(len(t) for t in tokens)),
            "what": "Signer.sign (encode body, JWS, sha256 hash) and open_token + parse_body, per movement; "
                    "raw: Ed25519 sign/verify of the same signing input"}


# --- 4. post rate, signed vs unsigned ----------------------------------------------------------------------

def bench_posts(work: Path, n: int, rounds: int) -> tuple[dict, list]:
    log(f"posts: {rounds} rounds x {n} single-movement posts per arm, synchronous=FULL")
    arms = {}
    for name, key in (("signed", site_key("BER")), ("unsigned", None)):
        path = work / f"posts-{name}.db"
        build_site(path, "BER", [])
        arms[name] = Ledger(open_db(path, synchronous="FULL"), "BER", key)
    done = {name: 0 for name in arms}

    def run(name: str, count: int, tag: str) -> float:
        ledger = arms[name]
        t0 = time.perf_counter()
        for g in range(done[name], done[name] + count):
            ledger.post(move("BER", g), op_id=f"{tag}-{g}")
        done[name] += count
        return time.perf_counter() - t0

    for name in arms:   # warm-up: statement caches, first pages, the WAL file
        run(name, 20, "warm")
    rates = {name: [] for name in arms}
    names = list(arms)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            rates[name].append(n / run(name, n, "p"))
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()))
    ratios = [a / b for a, b in zip(rates["signed"], rates["unsigned"])]
    problems = []
    for name, ledger in arms.items():
        conn = ledger.db.connection()
        # check() reports the unsigned arm's movements as unsigned (they would not sync): expected here.
        problems += [f"{name}: {p}" for p in check(conn, signatures=(name == "signed"))
                     if not (name == "unsigned" and p.what == "unsigned")]
        unsigned = conn.execute("SELECT count(*) FROM movement WHERE token IS NULL").fetchone()[0]
        if unsigned != (0 if name == "signed" else done[name]):
            problems.append(f"{name}: {unsigned} of {done[name]} movements without a token")
        ledger.db.close()
    out = {"posts_per_arm_per_round": n, "rounds": rounds, "synchronous": "FULL",
           "signed_per_s_median": round(statistics.median(rates["signed"]), 1),
           "unsigned_per_s_median": round(statistics.median(rates["unsigned"]), 1),
           "rates_per_s_rounds": {k: [round(x, 1) for x in v] for k, v in rates.items()},
           "ratio_rounds": [round(x, 3) for x in ratios],
           "ratio_median_of_rounds": round(statistics.median(ratios), 3)}
    return out, problems


# --- sanity and main ---------------------------------------------------------------------------------------

def sanity(ber_path: Path, waw_path: Path, post_problems: list) -> dict:
    ber, waw = read_conn(ber_path), read_conn(waw_path)
    try:
        problems = [p.to_dict() for p in check(waw, signatures=False)]
        ber_head, waw_view = head_row(ber, "BER"), head_row(waw, "BER")
        count = waw.execute("SELECT count(*) FROM movement WHERE origin = 'BER'").fetchone()[0]
    finally:
        ber.close()
        waw.close()
    holds = waw_view == ber_head and count == ber_head[1]
    return {"waw_check_problems": problems[:20], "waw_check_empty": not problems,
            "waw_holds_ber_log": holds, "ber_head_seq": ber_head[1], "waw_ber_head_seq": waw_view[1],
            "waw_ber_movements": count, "post_dbs_problems": post_problems[:20],
            "ok": not problems and holds and not post_problems}


def machine_info() -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   "")
    except OSError:
        pass
    version = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.splitlines()[:1]
    commit = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "paho": paho.mqtt.__version__,
            "cryptography": cryptography.__version__, "mosquitto": version[0] if version else None,
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "cpu": cpu, "git_commit": commit,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run (~30 s)")
    ap.add_argument("--seconds", type=float, default=None, help="lag phase duration (default 30, quick 4)")
    ap.add_argument("--backlog", type=int, default=None, help="catch-up backlog (default 100000, quick 3000)")
    ap.add_argument("--posts", type=int, default=None, help="posts per arm per round (default 1000, quick 200)")
    ap.add_argument("--rounds", type=int, default=None, help="post rounds (default 5, quick 3)")
    ap.add_argument("--broker-defaults", action="store_true",
                    help="do not add the shipped queue limits to the broker config")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    seconds = args.seconds or (4.0 if args.quick else 30.0)
    backlog = args.backlog or (3_000 if args.quick else 100_000)
    posts = args.posts or (200 if args.quick else 1000)
    rounds = args.rounds or (3 if args.quick else 5)
    sig_rounds = 3 if args.quick else 7

    # SIGTERM (a CI timeout) unwinds through the finally below, so that no agent or broker is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The poller and the paho callbacks note times: let them get the GIL soon after they become runnable.
    sys.setswitchinterval(0.0005)

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    log(f"working in {work}")
    out: dict = {"benchmark": "sync", "quick": args.quick, "machine": machine_info()}
    broker = Broker(work / "broker", shipped_queues=not args.broker_defaults)
    agents: dict[str, Agent] = {}
    ber_ledger = None
    try:
        paths = {}
        for site in NAMES:
            (work / site).mkdir()
            paths[site] = work / site / "ledger.db"
            build_site(paths[site], site, [s for s in NAMES if s != site])
        broker.start()
        log(f"mosquitto on {HOST}:{broker.port}")
        agents = {site: Agent(work, site, paths[site], broker.port) for site in NAMES}
        for agent in agents.values():
            agent.start()
        for agent in agents.values():
            agent.wait_ready()
        ber_ledger = Ledger(open_db(paths["BER"]), "BER", site_key("BER"))
        conn = ber_ledger.db.connection()
        wait_until(lambda: not conn.execute("SELECT recovering FROM site WHERE id = 'BER'").fetchone()[0], 30,
                   "BER's agent to finish its start-up recovery")
        out["setup"] = {"sites": list(NAMES), "broker_config": broker.config_lines(),
                        "agent_config": agents["BER"].config_path.read_text(encoding="utf-8"),
                        "seconds_to_ready": round(time.perf_counter() - t_start, 2)}

        one = MovementBatch("BER", 1, (Signer(site_key("BER")).sign(realistic_bodies(site_key("BER"), 1)[0])[0],))
        out["lag_baseline_paho"] = bench_paho_rtt(broker.port, seconds, len(one.to_bytes()))
        out["lag"] = lag = bench_lag(ber_ledger, paths["WAW"], seconds)
        base_p99 = out["lag_baseline_paho"]["latency_ms"]["p99"]
        lag["lag_p99_over_baseline_p99"] = round(lag["lag_ms"]["p99"] / base_p99, 1) if base_p99 else None
        log(f"lag: p50 {lag['lag_ms']['p50']} ms, p99 {lag['lag_ms']['p99']} ms; paho baseline p99 {base_p99} ms")

        base = head_row(conn, "BER")[1]
        timeout = max(60.0, backlog / 500)
        out["catchup"] = cu = bench_catchup(ber_ledger, agents, paths["WAW"], work / "waw-before-backlog.db",
                                            broker.port, backlog, timeout)
        log(f"catch-up: {cu['rate_from_first_applied_per_s']:.0f}/s from the first applied, "
            f"{cu['rate_from_agent_start_per_s']:.0f}/s from the agent's start")
        for agent in agents.values():
            agent.stop()
        broker.stop()
        dropped = len(re.findall(r"dropped", broker.log_tail(10**6)))
        cu["broker_log_dropped_lines"] = dropped

        out["catchup_baseline_inbox"] = inbox = bench_inbox(ber_ledger, work / "waw-before-backlog.db", base,
                                                            base + backlog)
        cu["agent_over_inbox"] = round(cu["rate_from_first_applied_per_s"] / inbox["rate_per_s"], 3)
        log(f"catch-up baseline: {inbox['rate_per_s']:.0f}/s in process")

        out["signatures"] = bench_signatures(2000, sig_rounds)
        out["posts"], post_problems = bench_posts(work, posts, rounds)

        ber_ledger.db.close()
        ber_ledger = None
        out["sanity"] = sanity(paths["BER"], paths["WAW"], post_problems)
        out["targets"] = {
            "lag_p99_ms": target(lag["lag_ms"]["p99"], "<= 50", 50, p50=lag["lag_ms"]["p50"],
                                 baseline_paho_p99_ms=base_p99,
                                 what=f"BER commit -> WAW applied at {RATE:.0f} movements/s for {seconds:g} s"),
            "catchup_mv_per_s": target(cu["rate_from_first_applied_per_s"], ">= 5000", 5000, higher_is_better=True,
                                       from_agent_start_per_s=cu["rate_from_agent_start_per_s"],
                                       baseline_inbox_per_s=inbox["rate_per_s"],
                                       what=f"WAW catching up a backlog of {backlog} after its agent restarts, "
                                            "from the first backlog movement applied"),
            "post_rate_signed_ratio": target(out["posts"]["ratio_median_of_rounds"], ">= 0.8", 0.8,
                                             higher_is_better=True,
                                             signed_per_s=out["posts"]["signed_per_s_median"],
                                             unsigned_per_s=out["posts"]["unsigned_per_s_median"],
                                             what="median over rounds of signed / unsigned single-movement post "
                                                  "rate, synchronous=FULL"),
        }
        if cu["timed_out"]:
            out["targets"]["catchup_mv_per_s"]["met"] = False
    except BaseException:
        for agent in agents.values():
            log(f"--- {agent.site} agent log (tail)\n{agent.log_tail()}")
        raise
    finally:
        for agent in agents.values():
            agent.stop()
        broker.stop()
        if ber_ledger is not None:
            ber_ledger.db.close()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["all_targets_met"] = all(t["met"] for t in out["targets"].values())
    out["seconds_total"] = round(time.perf_counter() - t_start, 1)
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
