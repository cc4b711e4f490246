"""A real Mosquitto for tests, one per `Broker`, in a directory of its own. Plain module, no pytest import.

    with Broker(tmp_path / "broker") as broker:            # anonymous, plain MQTT on 127.0.0.1:<free port>
        client.connect(broker.host, broker.port)
        broker.kill()                                      # SIGKILL: loses everything since the last save
        broker.restart(wipe=True)                          # same port, persistence file deleted

    Broker(dir, passwords={"BER": "pw", "WAW": "pw"}, acl=True)   # logins required, the shipped ACL
    Broker(dir, passwords={...}, tls=True)                 # TLS, client certificate required: `client_tls`

Files in `workdir`: mosquitto.conf (rewritten by every start), mosquitto.log (log_type all, so denials and
PUBACKs are there; kept across restarts), mosquitto.out (the process's stdout/stderr: configuration errors),
mosquitto.db (persistence), passwd, and tls/ when `tls=True`.

What Mosquitto 2.0.11 does here that shapes this helper:
- Started as root it switches to the `mosquitto` user *before* reading password_file, acl_file and the TLS
  files, and then cannot read them under pytest's tmp directories (mode 0700): it exits with
  `Error: Unable to open pwfile` (or, for a persistence_location it cannot write, keeps running and saves
  nothing). As root the config therefore says `user root`, which keeps root and prints a warning
  ("Mosquitto should not be run as root/administrator") into the log. As another user nothing is dropped.
- Persistence is a snapshot written on a clean exit (SIGTERM), on SIGUSR1 and every autosave_interval
  (default 1800 s): `stop()` saves, `kill()` loses everything since the last save.
- Readiness is the log line `mosquitto version ... running` (printed once every listener is open) and then a
  TCP connect to the port; Mosquitto logs that probe as a client that disconnected.

No broker outlives the test process: each runs in its own session (a Ctrl-C at the terminal does not reach
it), gets SIGKILL from the kernel when the thread that started it dies (PR_SET_PDEATHSIG; so start brokers
from the main thread, or from a thread that lives longer than they do), and is killed by an atexit hook.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

REPO = Path(__file__).resolve().parent.parent
SHIPPED_ACL = REPO / "firmware-config" / "mosquitto" / "acl"
SHIPPED_CONF = REPO / "firmware-config" / "mosquitto" / "appliance.conf"
CREDENTIALS_SCRIPT = REPO / "scripts" / "broker_credentials.sh"
HOST = "127.0.0.1"
_RUNNING = re.compile(r"mosquitto version \S+ running")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def mosquitto_path() -> str | None:
    """The mosquitto binary: on PATH, or Debian's /usr/sbin (not on a normal user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def mosquitto_available() -> bool:
    """True when a broker can be run: mosquitto, and mosquitto_passwd for the password files."""
    return mosquitto_path() is not None and shutil.which("mosquitto_passwd") is not None


_ports_lock = threading.Lock()
_ports_given: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that this process has not handed out before."""
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, 0))
                port = probe.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return int(port)
    raise RuntimeError("no free TCP port found on 127.0.0.1")


# --- never leave a broker behind ---------------------------------------------------------------------------
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _kill_live() -> None:
    with _live_lock:
        processes = list(_live)
        _live.clear()
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


atexit.register(_kill_live)

_PR_SET_PDEATHSIG = 1
# Looked up before any fork: the child may only call it, not load anything (other threads may hold locks).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:   # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class BrokerError(RuntimeError):
    """The broker did not start or stop; the message ends with the tail of its log."""


class Broker:
    """One Mosquitto process with its config, log and persistence in `workdir`, on its own port."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        extra_conf: str = "",
        passwords: dict[str, str] | None = None,
        acl: bool = False,
        tls: bool = False,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self._port = port
        self._port_chosen = port is None   # a port we picked may be re-picked if someone took it first
        self.extra_conf = extra_conf
        self.passwords = dict(passwords) if passwords is not None else None
        self.acl = acl
        self.tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._marks: tuple[int, ...] = (0, 0)   # sizes of mosquitto.out and mosquitto.log when this run began

    # --- addresses ---------------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = free_port()
        return self._port

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    # --- files -------------------------------------------------------------------------------------------------
    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def out_path(self) -> Path:
        return self.workdir / "mosquitto.out"

    @property
    def db_path(self) -> Path:
        return self.workdir / "mosquitto.db"

    @property
    def tls_dir(self) -> Path:
        """CA, broker certificate and per-site bundles made by scripts/broker_credentials.sh (tls=True). The
        passwd and bundle passwords in there are the script's own; the broker checks `passwords`."""
        return self.workdir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    def tls_sites(self) -> list[str]:
        """Sites that get a client certificate: those with a password, else the single site TEST."""
        return sorted(self.passwords) if self.passwords else ["TEST"]

    def client_cert(self, site: str) -> tuple[Path, Path]:
        """(certificate, key) of `site`'s client certificate, CN = site, signed by `ca_file` (tls=True)."""
        bundle = self.tls_dir / "sites" / site
        return bundle / f"{site}.crt", bundle / f"{site}.key"

    def client_tls(self, site: str) -> ssl.SSLContext:
        """For paho's `tls_set_context`: trusts `ca_file` (and checks the broker's name, 127.0.0.1) and
        presents `site`'s client certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        cert, key = self.client_cert(site)
        context.load_cert_chain(str(cert), str(key))
        return context

    def log_text(self) -> str:
        """What the process printed (configuration errors) followed by its log file."""
        parts = []
        for path in (self.out_path, self.log_path):
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(parts)

    def _this_run(self) -> str:
        parts = []
        for path, mark in zip((self.out_path, self.log_path), self._marks):
            if path.exists():
                with open(path, "rb") as file:
                    file.seek(mark)
                    parts.append(file.read().decode("utf-8", errors="replace"))
        return "".join(parts)

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._this_run().splitlines()[-lines:])

    # --- configuration -----------------------------------------------------------------------------------------
    def config_text(self) -> str:
        """The mosquitto.conf `start()` writes. Subclasses may return another (the port to probe stays `port`)."""
        lines = [f"listener {self.port} {HOST}"]
        if self.tls:
            lines += [
                f"cafile {self.tls_dir / 'ca.crt'}",
                f"certfile {self.tls_dir / 'server.crt'}",
                f"keyfile {self.tls_dir / 'server.key'}",
                "require_certificate true",
            ]
        if self.passwords is not None:
            lines += ["allow_anonymous false", f"password_file {self.workdir / 'passwd'}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl:
            lines.append(f"acl_file {SHIPPED_ACL}")
        lines += [
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_path}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            # Else it drops to `mosquitto`, which cannot read this directory. Mosquitto has no trailing comments.
            lines += ["# keep root: the `mosquitto` user cannot read pytest's 0700 directories", "user root"]
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.passwords is not None:
            passwd = self.workdir / "passwd"
            passwd.write_text("", encoding="utf-8")
            passwd.chmod(0o600)
            for user, password in self.passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                               check=True, capture_output=True)
        if self.tls and not (self.tls_dir / "server.crt").exists():
            subprocess.run(
                ["bash", str(CREDENTIALS_SCRIPT), "--dir", str(self.tls_dir), "--host", HOST, "--host", "localhost",
                 *self.tls_sites()],
                check=True, capture_output=True)

    # --- life cycle --------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> None:
        """Write the config, start Mosquitto and return once the port accepts connections.

        Raises BrokerError with the log tail if it exits or does not listen within START_TIMEOUT seconds. If a
        port this helper picked was taken meanwhile, the first start moves to another free port.
        """
        if self.running:
            raise BrokerError(f"broker on port {self.port} is already running")
        self._prepare()
        for attempt in range(3):
            try:
                self._start_once()
                self._port_chosen = False   # from now on clients expect this port back
                return
            except BrokerError:
                in_use = "Address already in use" in self._this_run()
                if not (in_use and self._port_chosen and attempt < 2):
                    raise
                self._port = free_port()

    def _start_once(self) -> None:
        self.conf_path.write_text(self.config_text(), encoding="utf-8")
        binary = mosquitto_path()
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        # Logs accumulate over restarts; readiness and errors are judged on what this run wrote.
        self._marks = tuple(path.stat().st_size if path.exists() else 0 for path in (self.out_path, self.log_path))
        out = open(self.out_path, "ab")   # noqa: SIM115  # the process writes to it until it exits
        try:
            process = subprocess.Popen(
                [binary, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True, preexec_fn=_die_with_parent)
        except BaseException:
            out.close()
            raise
        self._process, self._out = process, out
        with _live_lock:
            _live.add(process)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                self._reap()
                raise BrokerError(f"mosquitto exited with {process.returncode} on start; log:\n{self._log_tail()}")
            # The log line comes after every listener is open; the connect makes sure the port is this one's.
            if _RUNNING.search(self._this_run()):
                try:
                    with socket.create_connection((HOST, self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"mosquitto did not listen on {HOST}:{self.port} within {START_TIMEOUT} s; "
                                  f"log:\n{self._log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM and wait: a clean exit, which writes the persistence file. No-op if not running."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self._reap()
                raise BrokerError(f"mosquitto ignored SIGTERM for {STOP_TIMEOUT} s; killed. log:\n{self._log_tail()}")
        self._reap()

    def kill(self) -> None:
        """SIGKILL and wait, like a crash or power cut: whatever was not saved yet is gone. No-op if not running."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._reap()

    def restart(self, wipe: bool = False, *, kill: bool = False) -> None:
        """Stop (or `kill`) if running, then start again on the same port; `wipe` deletes the persistence file
        in between, as if the broker's disk had been replaced."""
        if kill:
            self.kill()
        else:
            self.stop()
        if wipe:
            for path in (self.db_path, self.db_path.with_name(self.db_path.name + ".new")):
                path.unlink(missing_ok=True)
        self.start()

    def _reap(self) -> None:
        if self._process is not None:
            with _live_lock:
                _live.discard(self._process)
        if self._out is not None:
            self._out.close()
        self._process, self._out = None, None

    def __enter__(self) -> Broker:
        if not self.running:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.stop()
        except BrokerError:
            if exc is None:
                raise
