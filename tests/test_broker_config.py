"""The shipped Mosquitto config, ACL and credentials script, against a real Mosquitto (2.0.11 on Debian 12).

- appliance.conf, installed the Debian way (main config with persistence_location and log_dest, then the
  file included from conf.d) with only its paths and ports rewritten, starts, and lets a box in over TLS with
  the client certificate and password broker_credentials.sh made, and nothing in without both.
- broker_credentials.sh is idempotent (a second run changes no byte), refuses bad site ids before creating
  anything, and refuses to lock out a box whose bundle was removed after delivery.
- The shipped ACL: a site publishes only under wh/v1/<its id>/ (MQTT 5 PUBACK 0x87 otherwise, and the message
  reaches nobody) and reads all of wh/v1/.
- tests/brokers.py: a clean stop keeps retained messages, a kill loses what was not saved.

Absence ("no subscriber sees it") is checked without sleeping: a marker is published after the message that
must not arrive, on the same connection, and once the subscriber has the marker the other would have come
before it.
"""

from __future__ import annotations

import grp
import hashlib
import os
import queue
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from brokers import (
    CREDENTIALS_SCRIPT,
    HOST,
    SHIPPED_ACL,
    SHIPPED_CONF,
    Broker,
    free_port,
    mosquitto_available,
)
from paho.mqtt.reasoncodes import ReasonCode

from appliance.sync import topics

pytestmark = pytest.mark.skipif(
    not (mosquitto_available() and shutil.which("openssl")),
    reason="needs mosquitto, mosquitto_passwd and openssl (apt-get install mosquitto mosquitto-clients openssl)")

WAIT = 10.0
NOT_AUTHORIZED = 0x87


# --- a paho MQTT 5 client whose callbacks the test can wait on ------------------------------------------------
class Client:
    def __init__(self, client_id: str, *, username: str | None = None, password: str | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.client_id = client_id
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        if tls is not None:
            self.mqtt.tls_set_context(tls)
        self._cond = threading.Condition()
        self.connack: ReasonCode | None = None
        self.disconnected = False
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_disconnect = self._on_disconnect
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_publish = self._on_publish
        self.mqtt.on_message = lambda _client, _userdata, message: self.messages.put(message)

    def _on_connect(self, _client: object, _userdata: object, _flags: object, reason_code: ReasonCode,
                    _properties: object) -> None:
        if reason_code.is_failure:
            self.mqtt.disconnect()   # no reconnect attempts: paho's thread ends instead of waiting to retry
        with self._cond:
            self.connack = reason_code
            self._cond.notify_all()

    def _on_disconnect(self, *_args: object) -> None:
        self.mqtt.disconnect()   # as above: a test client never reconnects
        with self._cond:
            self.disconnected = True
            self._cond.notify_all()

    def _on_subscribe(self, _client: object, _userdata: object, mid: int, reason_codes: list[ReasonCode],
                      _properties: object) -> None:
        with self._cond:
            self.subacks[mid] = reason_codes
            self._cond.notify_all()

    def _on_publish(self, _client: object, _userdata: object, mid: int, reason_code: ReasonCode,
                    _properties: object) -> None:
        with self._cond:
            self.pubacks[mid] = reason_code
            self._cond.notify_all()

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, WAIT):
                raise AssertionError(f"{self.client_id}: no {what} within {WAIT} s")

    def connect(self, port: int) -> ReasonCode | None:
        """CONNACK's reason code, or None if the connection closed before one arrived."""
        self.mqtt.connect(HOST, port)
        self.mqtt.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnected, "CONNACK")
        return self.connack

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _, mid = self.mqtt.subscribe(topic, qos=1)
        assert mid is not None
        self._wait(lambda: mid in self.subacks, f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.mqtt.publish(topic, payload, qos=1, retain=retain)
        self._wait(lambda: info.mid in self.pubacks, f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def receive_until(self, topic: str) -> list[tuple[str, bytes]]:
        """Every message received up to and including the first one on `topic`."""
        got: list[tuple[str, bytes]] = []
        while True:
            try:
                message = self.messages.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"nothing on {topic} within {WAIT} s; got {got}") from None
            got.append((message.topic, message.payload))
            if message.topic == topic:
                return got

    def close(self) -> None:   # idempotent: the fixture closes every client again
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(client_id: str, **kwargs: object) -> Client:
        client = Client(client_id, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def run_credentials(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CREDENTIALS_SCRIPT), *args], capture_output=True, text=True, timeout=60)


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """What a box would use: verify the broker by the appliance CA and its name, strict X.509 checks."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


# --- (a) the shipped appliance.conf ------------------------------------------------------------------------------
class ShippedConfBroker(Broker):
    """appliance.conf as Debian would load it: a main mosquitto.conf that sets persistence_location and
    log_dest and includes conf.d/, where the shipped file sits with its paths and ports rewritten."""

    def __init__(self, workdir: Path, etc: Path) -> None:
        super().__init__(workdir)
        self.etc = etc
        self.plain_port = free_port()

    def config_text(self) -> str:
        text = SHIPPED_CONF.read_text(encoding="utf-8")
        for old, new, times in [
            ("/etc/mosquitto/appliance/", f"{self.etc}/", 5),
            ("\nlistener 8883\n", f"\nlistener {self.port} {HOST}\n", 1),
            ("\nlistener 1883 127.0.0.1\n", f"\nlistener {self.plain_port} {HOST}\n", 1),
        ]:
            assert text.count(old) == times, f"appliance.conf changed shape: {old!r} is not there {times} times"
            text = text.replace(old, new)
        conf_d = self.workdir / "conf.d"
        conf_d.mkdir(exist_ok=True)
        (conf_d / "appliance.conf").write_text(text, encoding="utf-8")
        main = [
            f"pid_file {self.workdir}/mosquitto.pid",
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_path}",
            "log_type all",
            f"include_dir {conf_d}",
        ]
        if os.geteuid() == 0:
            main.append("user root")
        return "\n".join(main) + "\n"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedConfBroker]:
    root = tmp_path_factory.mktemp("shipped")
    etc = root / "etc"
    done = run_credentials("--dir", str(etc), "--host", "localhost", "--host", HOST, "BER", "WAW")
    assert done.returncode == 0, done.stderr
    with ShippedConfBroker(root / "broker", etc) as broker:
        yield broker


def bundle(etc: Path, site: str) -> tuple[Path, Path, Path, str]:
    files = etc / "sites" / site
    password = (files / "password").read_text(encoding="utf-8").strip()
    return files / "ca.crt", files / f"{site}.crt", files / f"{site}.key", password


def test_shipped_conf_lets_a_box_in_over_tls_with_its_certificate_and_password(
        shipped: ShippedConfBroker, clients: Callable[..., Client]) -> None:
    ca, cert, key, password = bundle(shipped.etc, "BER")
    box = clients("BER", username="BER", password=password, tls=tls_context(ca, cert, key))
    connack = box.connect(shipped.port)
    assert connack is not None and not connack.is_failure, connack
    assert not box.publish(topics.head("BER"), b"{}", retain=True).is_failure
    # "OpenSSL Error[0]: ... unexpected eof" lines are the helper's readiness probe; configuration and file
    # errors look like "<time>: Error: ...".
    assert [line for line in shipped.log_text().splitlines() if ": Error: " in line] == []


def test_shipped_conf_refuses_a_wrong_password_even_with_a_valid_certificate(
        shipped: ShippedConfBroker, clients: Callable[..., Client]) -> None:
    ca, cert, key, _ = bundle(shipped.etc, "BER")
    _, _, _, waw_password = bundle(shipped.etc, "WAW")
    box = clients("BER", username="BER", password=waw_password, tls=tls_context(ca, cert, key))
    connack = box.connect(shipped.port)
    assert connack is not None and connack.is_failure, connack


def test_shipped_conf_refuses_a_box_without_a_client_certificate(shipped: ShippedConfBroker) -> None:
    ca, _, _, _ = bundle(shipped.etc, "BER")
    context = tls_context(ca)
    # With TLS 1.3 the client finishes its side of the handshake before the broker says no, so the refusal
    # shows up as an alert (or the end of the stream) on the first read, if not already in the handshake.
    with socket.create_connection((HOST, shipped.port), timeout=WAIT) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=HOST) as tls:
                data = tls.recv(1)
        except (ssl.SSLError, ConnectionResetError) as error:
            assert "certificate" in str(error).lower() or isinstance(error, ConnectionResetError), error
        else:
            assert data == b"", "the broker kept a TLS connection without a client certificate open"


def test_shipped_conf_local_listener_is_plain_but_still_needs_a_password(
        shipped: ShippedConfBroker, clients: Callable[..., Client]) -> None:
    _, _, _, password = bundle(shipped.etc, "WAW")
    box = clients("WAW", username="WAW", password=password)
    connack = box.connect(shipped.plain_port)
    assert connack is not None and not connack.is_failure, connack
    anonymous = clients("anonymous-probe")
    connack = anonymous.connect(shipped.plain_port)
    assert connack is not None and connack.is_failure, connack


def test_shipped_conf_leaves_debians_main_config_settings_alone() -> None:
    # Debian's mosquitto.conf sets these and Mosquitto refuses a second persistence_location; a pid_file or
    # log_dest here would fight the packaged service. (The Debian-style start above proves the first.)
    directives = {line.split()[0] for line in SHIPPED_CONF.read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.lstrip().startswith("#")}
    assert not directives & {"persistence_location", "persistence_file", "pid_file", "log_dest", "include_dir",
                             "user"}


# --- (b) broker_credentials.sh -----------------------------------------------------------------------------------
def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under `directory`: content hash and mode."""
    return {str(path.relative_to(directory)): (hashlib.sha256(path.read_bytes()).hexdigest(),
                                               stat.S_IMODE(path.stat().st_mode))
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_credentials_script_is_idempotent(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    first = run_credentials("--dir", str(etc), "BER", "WAW")
    assert first.returncode == 0, first.stderr
    before = snapshot(etc)
    assert {"ca.crt", "ca.key", "server.crt", "server.key", "passwd", "acl", "sites/BER/ca.crt", "sites/BER/BER.crt",
            "sites/BER/BER.key", "sites/BER/password", "sites/WAW/password"} <= set(before)

    again = run_credentials("--dir", str(etc), "BER", "WAW")
    assert again.returncode == 0, again.stderr
    assert snapshot(etc) == before
    assert again.stdout == ""   # says nothing when it made nothing

    passwd = (etc / "passwd").read_text(encoding="utf-8")
    more = run_credentials("--dir", str(etc), "WAW", "PAR", "BER")
    assert more.returncode == 0, more.stderr
    after = snapshot(etc)
    del before["passwd"]
    assert {name: after[name] for name in before} == before   # same CA, keys, certificates, passwords
    grown = (etc / "passwd").read_text(encoding="utf-8")
    assert grown.startswith(passwd)   # existing entries untouched, the new site appended once
    assert [line.split(":")[0] for line in grown.splitlines()] == ["BER", "WAW", "PAR"]


def has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def test_credentials_script_sets_modes_for_the_broker_and_the_box(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    done = run_credentials("--dir", str(etc), "BER")
    assert done.returncode == 0, done.stderr
    modes = {name: mode for name, (_, mode) in snapshot(etc).items()}
    for secret in ("ca.key", "sites/BER/BER.key", "sites/BER/password"):
        assert modes[secret] == 0o600, secret
    for broker_reads in ("ca.crt", "server.crt", "server.key", "passwd", "acl"):
        assert modes[broker_reads] == 0o640, broker_reads
    if os.geteuid() == 0 and has_group("mosquitto"):   # else the broker runs as whoever owns the files
        for broker_reads in ("", "ca.crt", "server.crt", "server.key", "passwd", "acl"):
            assert grp.getgrgid((etc / broker_reads).stat().st_gid).gr_name == "mosquitto", broker_reads or "DIR"
    assert (etc / "acl").read_bytes() == SHIPPED_ACL.read_bytes()


@pytest.mark.parametrize("bad", ["ber", "B", "BERLIN123", "1BER", "BER-1", "BER\n", ""])
def test_credentials_script_rejects_a_bad_site_id_before_creating_anything(tmp_path: Path, bad: str) -> None:
    etc = tmp_path / "etc"
    done = run_credentials("--dir", str(etc), "WAW", bad)
    assert done.returncode != 0
    assert f"bad site id '{bad}'" in done.stderr
    assert "2-8 upper-case letters/digits" in done.stderr
    assert not etc.exists()


def test_credentials_script_will_not_lock_out_a_box_whose_bundle_was_removed(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    assert run_credentials("--dir", str(etc), "BER").returncode == 0
    passwd = (etc / "passwd").read_bytes()
    shutil.rmtree(etc / "sites" / "BER")   # copied to the box and deleted here, as the README suggests
    done = run_credentials("--dir", str(etc), "BER")
    assert done.returncode != 0
    assert "mosquitto_passwd -D" in done.stderr
    assert (etc / "passwd").read_bytes() == passwd


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_credentials_script_is_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(CREDENTIALS_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


# --- (c) the shipped ACL -----------------------------------------------------------------------------------------
def acl_rules(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_shipped_acl_is_the_one_topics_describes() -> None:
    assert acl_rules(SHIPPED_ACL.read_text(encoding="utf-8")) == topics.acl_lines(), (
        "firmware-config/mosquitto/acl and appliance.sync.topics.acl_lines() differ; the shipped file is the one "
        "tested against Mosquitto: see test_topic_read_without_a_user_line_grants_logged_in_sites_nothing")


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("acl"), passwords={"BER": "ber-pw", "WAW": "waw-pw"}, acl=True) as broker:
        yield broker


def site(clients: Callable[..., Client], broker: Broker, name: str) -> Client:
    client = clients(name, username=name, password=f"{name.lower()}-pw")
    connack = client.connect(broker.port)
    assert connack is not None and not connack.is_failure, connack
    return client


def test_a_site_publishes_under_its_own_id_and_is_refused_under_another(
        acl_broker: Broker, clients: Callable[..., Client]) -> None:
    waw = site(clients, acl_broker, "WAW")
    assert all(not code.is_failure for code in waw.subscribe("wh/v1/#"))
    ber = site(clients, acl_broker, "BER")

    assert not ber.publish(topics.mv("BER"), b"ours").is_failure
    assert waw.receive_until(topics.mv("BER")) == [(topics.mv("BER"), b"ours")]

    refused = ber.publish(topics.mv("WAW"), b"forged")
    assert refused.value == NOT_AUTHORIZED, refused
    refused = ber.publish(topics.resp("WAW", "BER"), b"forged")
    assert refused.value == NOT_AUTHORIZED, refused
    assert ber.publish("elsewhere/BER", b"outside").value == NOT_AUTHORIZED

    assert not ber.publish(topics.head("BER"), b"marker").is_failure
    assert waw.receive_until(topics.head("BER")) == [(topics.head("BER"), b"marker")]
    assert "Denied PUBLISH from BER" in acl_broker.log_text()


def test_a_site_reads_everything_under_wh_v1(acl_broker: Broker, clients: Callable[..., Client]) -> None:
    waw = site(clients, acl_broker, "WAW")
    assert not waw.publish(topics.status("WAW"), b"online", retain=True).is_failure
    ber = site(clients, acl_broker, "BER")
    granted = ber.subscribe("wh/v1/#")
    assert [code.value for code in granted] == [1], granted   # granted QoS 1
    assert ber.receive_until(topics.status("WAW")) == [(topics.status("WAW"), b"online")]   # retained
    assert not waw.publish(topics.req("WAW", "BER"), b"fill").is_failure
    assert ber.receive_until(topics.req("WAW", "BER")) == [(topics.req("WAW", "BER"), b"fill")]


def test_topic_read_without_a_user_line_grants_logged_in_sites_nothing(
        tmp_path: Path, clients: Callable[..., Client]) -> None:
    # Mosquitto applies `topic` lines that come before any `user` line to anonymous clients only; `pattern`
    # lines apply to everyone. The trap: the SUBSCRIBE is granted, and then nothing is ever delivered. That
    # is why the shipped ACL reads with a pattern. (marker/# only lets the test see that delivery finished.)
    acl = tmp_path / "acl"
    acl.write_text("pattern write wh/v1/%u/#\ntopic read wh/v1/#\npattern readwrite marker/#\n", encoding="utf-8")
    with Broker(tmp_path / "broker", passwords={"BER": "ber-pw", "WAW": "waw-pw"},
                extra_conf=f"acl_file {acl}") as broker:
        ber = site(clients, broker, "BER")
        granted = ber.subscribe("wh/v1/#") + ber.subscribe("marker/#")
        assert [code.value for code in granted] == [1, 1], granted
        waw = site(clients, broker, "WAW")
        assert not waw.publish(topics.status("WAW"), b"online").is_failure
        assert not waw.publish("marker/WAW", b"after").is_failure
        assert ber.receive_until("marker/WAW") == [("marker/WAW", b"after")]
        ber.close()
        waw.close()


# --- (d) the Broker helper: persistence across stop, kill and wipe -----------------------------------------------
def retained_after_subscribe(clients: Callable[..., Client], broker: Broker, name: str) -> list[tuple[str, bytes]]:
    """The retained messages under wh/v1/# a fresh subscriber gets (ended by a marker it publishes itself)."""
    client = clients(name)
    connack = client.connect(broker.port)
    assert connack is not None and not connack.is_failure, connack
    client.subscribe("wh/v1/#")
    marker = f"wh/v1/{name}/mv"
    assert not client.publish(marker, b"marker").is_failure
    got = client.receive_until(marker)
    client.close()
    return got[:-1]


def test_broker_keeps_retained_messages_over_a_clean_stop_and_loses_them_to_kill_and_wipe(
        tmp_path: Path, clients: Callable[..., Client]) -> None:
    # autosave_interval 0: saved only on a clean exit, so what a kill loses does not depend on timing.
    broker = Broker(tmp_path / "broker", extra_conf="autosave_interval 0")
    with broker:
        port = broker.port
        box = clients("BER")
        assert box.connect(broker.port) == 0
        assert not box.publish(topics.head("BER"), b"seq 1", retain=True).is_failure
        box.close()

        broker.stop()
        assert not broker.running
        broker.restart()
        assert broker.port == port and broker.running
        assert retained_after_subscribe(clients, broker, "PA1") == [(topics.head("BER"), b"seq 1")]

        box = clients("WAW")
        assert box.connect(broker.port) == 0
        assert not box.publish(topics.head("WAW"), b"seq 7", retain=True).is_failure
        box.close()
        broker.kill()   # after the last save: WAW's head was never written
        assert not broker.running
        broker.restart()
        assert retained_after_subscribe(clients, broker, "PA2") == [(topics.head("BER"), b"seq 1")]

        broker.restart(wipe=True, kill=True)
        assert broker.port == port
        assert retained_after_subscribe(clients, broker, "PA3") == []
    assert not broker.running


def test_broker_start_failure_names_the_reason(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker", extra_conf="no_such_option true")
    with pytest.raises(RuntimeError, match='Unknown configuration variable "no_such_option"'):
        broker.start()
    assert not broker.running


def test_broker_with_tls_and_passwords(tmp_path: Path, clients: Callable[..., Client]) -> None:
    with Broker(tmp_path / "broker", passwords={"BER": "ber-pw"}, acl=True, tls=True) as broker:
        assert broker.url == f"mqtts://{HOST}:{broker.port}"
        box = clients("BER", username="BER", password="ber-pw", tls=broker.client_tls("BER"))
        connack = box.connect(broker.port)
        assert connack is not None and not connack.is_failure, connack
        assert box.publish(topics.mv("WAW"), b"forged").value == NOT_AUTHORIZED
        box.close()


def test_each_broker_gets_its_own_port(tmp_path: Path) -> None:
    with Broker(tmp_path / "one") as one, Broker(tmp_path / "two") as two:
        assert one.port != two.port
        assert one.url == f"mqtt://{HOST}:{one.port}"
