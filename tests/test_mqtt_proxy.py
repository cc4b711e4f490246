"""The MQTT fault proxy (tests/mqtt_proxy.py): its framing and fault decisions packet by packet, then each fault
against a real Mosquitto with paho MQTT 5 clients, and the broker/client behaviours the proxy's docstring
promises (what is resent after a drop, what a duplicate does).

Every test starts its own Mosquitto on a free port (config and log in `tmp_path`) and waits on events with a
timeout; nothing asserts on speed. Reconnects go through paho's own reconnect loop (1 s delay)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mqtt_proxy import (
    DirectionFaulter,
    Faults,
    MalformedPacket,
    MqttFaultProxy,
    PacketReader,
    encode_remaining_length,
    packet_length,
    publish_topic,
    with_dup,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MOSQUITTO = "/usr/sbin/mosquitto"
TIMEOUT = 10.0
MV = "wh/v1/BER/mv"
HEAD = "wh/v1/BER/head"


def publish_packet(topic: str, payload: bytes = b"x", *, qos: int = 1, mid: int = 1) -> bytes:
    """An MQTT 3.1.1 PUBLISH (an MQTT 5 one only adds a properties length, which the proxy never reads)."""
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | qos << 1]) + encode_remaining_length(len(body)) + body


PUBACK = bytes([0x40, 0x02, 0x00, 0x01])
PINGREQ = bytes([0xC0, 0x00])
DISCONNECT = bytes([0xE0, 0x00])


# --- framing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("remaining, encoded", [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_encoding_matches_the_spec_table(remaining, encoded):
    assert encode_remaining_length(remaining) == encoded
    assert packet_length(b"\x30" + encoded) == 1 + len(encoded) + remaining


@pytest.mark.parametrize("buf, length", [
    (b"", None),
    (b"\x30", None),
    (b"\x30\x80", None),
    (PINGREQ, 2),
    (PUBACK + PINGREQ, 4),
])
def test_packet_length_waits_for_the_whole_header(buf, length):
    assert packet_length(buf) == length


def test_a_fifth_length_byte_is_not_mqtt():
    with pytest.raises(MalformedPacket):
        packet_length(b"\x30\xff\xff\xff\xff\x01")


def test_reader_cuts_packets_whatever_the_chunking():
    big = publish_packet(MV, b"p" * 300, mid=7)  # two-byte remaining length
    stream = PINGREQ + big + PUBACK + publish_packet(HEAD, qos=0)
    for size in (1, 2, 3, 7, len(stream)):
        reader = PacketReader()
        packets = []
        for i in range(0, len(stream), size):
            packets += reader.feed(stream[i:i + size])
        assert packets == [PINGREQ, big, PUBACK, publish_packet(HEAD, qos=0)]


@pytest.mark.parametrize("topic", [MV, "", "wh/v1/ŁÓD/mv", "t" * 200])
def test_publish_topic_reads_the_variable_header(topic):
    assert publish_topic(publish_packet(topic, b"payload" * 40)) == topic


@pytest.mark.parametrize("qos, first_byte", [(0, 0x30), (1, 0x3A), (2, 0x3C)])
def test_a_duplicate_carries_dup_only_above_qos_0(qos, first_byte):
    packet = publish_packet(MV, qos=qos)
    assert with_dup(packet)[0] == first_byte
    assert with_dup(packet)[1:] == packet[1:]


@pytest.mark.parametrize("kwargs", [{"drop": -0.1}, {"duplicate": 1.5}, {"reorder": 2}, {"max_hold": -1}])
def test_faults_reject_impossible_values(kwargs):
    with pytest.raises(ValueError):
        Faults(**kwargs)


# --- fault decisions, packet by packet ------------------------------------------------------------------


def faulter(seed: int = 0) -> tuple[DirectionFaulter, list[str]]:
    counted: list[str] = []
    return DirectionFaulter(random.Random(seed), counted.append), counted


def test_reorder_swaps_each_pair_and_keeps_other_packets_flowing():
    f, counted = faulter()
    faults = Faults(reorder=1.0, max_hold=60)
    p = [publish_packet(MV, bytes([i]), mid=i + 1) for i in range(4)]
    out = []
    for packet in (p[0], PUBACK, p[1], p[2], PINGREQ, p[3]):
        out += f.packet(packet, faults, now=0.0)
    assert out == [PUBACK, p[1], p[0], PINGREQ, p[3], p[2]]
    assert counted.count("reordered") == 2


def test_a_held_packet_goes_out_after_max_hold_or_before_disconnect():
    f, _ = faulter()
    faults = Faults(reorder=1.0, max_hold=0.2)
    packet = publish_packet(MV)
    assert f.packet(packet, faults, now=10.0) == []
    assert f.deadline == 10.2
    assert f.expire(now=10.1) == []
    assert f.expire(now=10.2) == [packet]
    assert f.deadline is None
    assert f.packet(packet, faults, now=20.0) == []
    assert f.packet(DISCONNECT, faults, now=20.0) == [packet, DISCONNECT]


def test_the_topic_filter_limits_faults_and_reordering_to_its_topics():
    f, counted = faulter()
    faults = Faults(drop=0.0, reorder=1.0, topic_filter="/mv", max_hold=60)
    mv1, head, mv2 = publish_packet(MV, mid=1), publish_packet(HEAD, mid=2), publish_packet(MV, mid=3)
    out = []
    for packet in (mv1, head, mv2):
        out += f.packet(packet, faults, now=0.0)
    assert out == [head, mv2, mv1]
    predicate = Faults(drop=1.0, topic_filter=lambda topic: topic.endswith("/head"))
    assert f.packet(mv1, predicate, now=0.0) == [mv1]
    assert f.packet(head, predicate, now=0.0) == []
    assert counted.count("dropped") == 1


def test_the_same_seed_gives_the_same_faults():
    faults = Faults(drop=0.3, duplicate=0.3, reorder=0.3, max_hold=60)
    packets = [publish_packet(MV, bytes([i]), mid=i + 1) for i in range(200)]

    def run(seed: int) -> list[bytes]:
        f, _ = faulter(seed)
        return [out for packet in packets for out in f.packet(packet, faults, now=0.0)]

    assert run(1) == run(1)
    assert run(1) != run(2)


# --- a real broker and real clients ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto on a free port, nothing persisted; its log is tmp_path/mosquitto.log. Yields the port."""
    if not shutil.which(MOSQUITTO):
        pytest.skip(f"{MOSQUITTO} is not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stdout\nlog_type all\n"
    )
    with open(tmp_path / "mosquitto.log", "wb") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def proxy(broker: int) -> Iterator[MqttFaultProxy]:
    with MqttFaultProxy("127.0.0.1", broker, seed=42) as p:
        yield p


@dataclass(frozen=True)
class Received:
    topic: str
    payload: str
    dup: bool


class Peer:
    """A paho MQTT 5 client on a loop thread that (re)subscribes on every connect and records what happens."""

    def __init__(self, client_id: str, port: int, subscribe: str | None, session_expiry: int | None) -> None:
        self.port = port
        self.topic = subscribe
        self.properties = None
        if session_expiry is not None:
            self.properties = Properties(PacketTypes.CONNECT)
            self.properties.SessionExpiryInterval = session_expiry
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self._changed = threading.Condition()
        self.connected = False
        self.connects = self.disconnects = self.subscribed = 0
        self.received: list[Received] = []
        self.acked: set[int] = set()

    def start(self) -> Peer:
        self.client.connect_async("127.0.0.1", self.port, properties=self.properties)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait(self, predicate: Callable[[Peer], bool], timeout: float = TIMEOUT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def ready(self) -> bool:
        """Connected and, if it subscribes, subscribed on this connection."""
        return self.connected and (self.topic is None or self.subscribed == self.connects)

    def publish(self, topic: str, payload: str) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def payloads(self) -> list[str]:
        with self._changed:
            return [m.payload for m in self.received]

    def _update(self, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        if self.topic is not None:
            client.subscribe(self.topic, qos=1)
        self._update(lambda: self._count_connect(True))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        # Also called for an attempt that never got a CONNACK (the proxy reset it while blocked).
        self._update(lambda: self._count_connect(False))

    def _count_connect(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self.connects += 1
        else:
            self.disconnects += 1

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._update(lambda: setattr(self, "subscribed", self.subscribed + 1))

    def _on_message(self, client, userdata, message) -> None:
        received = Received(message.topic, message.payload.decode(), bool(message.dup))
        self._update(lambda: self.received.append(received))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._update(lambda: self.acked.add(mid))


@pytest.fixture
def peer(broker: int) -> Iterator[Callable[..., Peer]]:
    """`peer(client_id, port, subscribe=None, session_expiry=None)`: a started Peer that is ready (connected and
    subscribed); stopped at the end of the test, before the proxy and the broker."""
    peers: list[Peer] = []

    def start(
        client_id: str, port: int, subscribe: str | None = None, session_expiry: int | None = None,
        wait_ready: bool = True,
    ) -> Peer:
        p = Peer(client_id, port, subscribe, session_expiry).start()
        peers.append(p)
        if wait_ready:
            assert p.wait(Peer.ready), f"{client_id} did not connect"
        return p

    yield start
    for p in peers:
        p.stop()


def publish_all(publisher: Peer, messages: list[tuple[str, str]]) -> None:
    mids = {publisher.publish(topic, payload) for topic, payload in messages}
    assert publisher.wait(lambda p: mids <= p.acked), "the broker did not acknowledge every publish"


def test_without_faults_everything_passes_in_order(proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    pub = peer("pub", proxy.port)
    sent = [str(i) for i in range(30)]
    publish_all(pub, [(MV, payload) for payload in sent])
    assert sub.wait(lambda p: len(p.received) >= 30)
    assert sub.payloads() == sent
    stats = proxy.stats()
    assert (stats.to_broker.publishes, stats.to_broker.forwarded) == (30, 30)
    assert (stats.to_client.publishes, stats.to_client.forwarded) == (30, 30)
    assert stats.accepted == stats.open == 2


def test_drop_to_client_hits_only_the_filtered_topic(broker, proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    pub = peer("pub", broker)
    proxy.set_faults("to_client", drop=1.0, topic_filter="/mv")
    publish_all(pub, [(topic, str(i)) for i in range(5) for topic in (MV, HEAD)])
    assert proxy.wait_for(lambda s: s.to_client.dropped == 5, TIMEOUT)
    assert sub.wait(lambda p: len(p.received) >= 5)
    assert sub.received == [Received(HEAD, str(i), False) for i in range(5)]


def test_duplicate_to_client_delivers_twice_and_the_extra_puback_is_harmless(broker, proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    pub = peer("pub", broker)
    proxy.set_faults("to_client", duplicate=1.0)
    publish_all(pub, [(MV, str(i)) for i in range(5)])
    assert sub.wait(lambda p: len(p.received) >= 10)
    assert sub.received == [Received(MV, str(i), dup) for i in range(5) for dup in (False, True)]
    # Mosquitto got two PUBACKs for each packet id; the connection carries on and nothing is resent.
    proxy.clear_faults()
    publish_all(pub, [(MV, "after"), (HEAD, "sentinel")])
    assert sub.wait(lambda p: len(p.received) >= 12)
    assert sub.payloads()[10:] == ["after", "sentinel"]
    assert sub.disconnects == 0


def test_duplicate_to_broker_is_delivered_twice_qos1_is_not_deduplicated(broker, proxy, peer):
    sub = peer("sub", broker, subscribe="wh/v1/#")
    pub = peer("pub", proxy.port)
    proxy.set_faults("to_broker", duplicate=1.0)
    publish_all(pub, [(MV, str(i)) for i in range(3)])
    assert sub.wait(lambda p: len(p.received) >= 6)
    assert sub.payloads() == ["0", "0", "1", "1", "2", "2"]
    assert proxy.stats().to_broker.duplicated == 3
    assert pub.disconnects == 0


def test_reorder_delivers_everything_in_swapped_pairs(broker, proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    pub = peer("pub", broker)
    proxy.set_faults("to_client", reorder=1.0, max_hold=60)  # a pair is always completed, never timed out
    publish_all(pub, [(MV, str(i)) for i in range(6)])
    assert sub.wait(lambda p: len(p.received) >= 6)
    assert sub.payloads() == ["1", "0", "3", "2", "5", "4"]
    assert proxy.stats().to_client.reordered == 3


def test_a_held_back_message_is_released_after_max_hold(broker, proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    pub = peer("pub", broker)
    proxy.set_faults("to_client", reorder=1.0, max_hold=0.2)
    publish_all(pub, [(MV, "alone")])
    assert sub.wait(lambda p: len(p.received) >= 1)
    assert sub.payloads() == ["alone"]
    assert proxy.stats().to_client.reordered == 1


def test_cut_disconnects_the_client_and_it_reconnects(broker, proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    assert proxy.cut() == 1
    assert sub.wait(lambda p: p.disconnects == 1), "on_disconnect did not fire"
    assert sub.wait(lambda p: p.connects == 2 and p.ready()), "did not reconnect"
    pub = peer("pub", broker)
    publish_all(pub, [(MV, "after the cut")])
    assert sub.wait(lambda p: len(p.received) >= 1)
    assert proxy.stats().cut == 1


def test_block_refuses_connections_until_unblocked(proxy, peer):
    proxy.block(True)
    client = peer("late", proxy.port, wait_ready=False)
    assert proxy.wait_for(lambda s: s.refused >= 1, TIMEOUT)
    assert client.wait(lambda p: p.disconnects >= 1), "paho reports a refused attempt as a disconnect"
    assert client.connects == 0
    proxy.block(False)
    assert client.wait(lambda p: p.connects == 1), "did not connect after the block was lifted"


def test_a_partition_is_cut_plus_block(proxy, peer):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#")
    proxy.block(True)
    proxy.cut()
    assert sub.wait(lambda p: p.disconnects == 1)
    assert proxy.wait_for(lambda s: s.refused >= 1, TIMEOUT)
    assert sub.connects == 1
    proxy.block(False)
    assert sub.wait(lambda p: p.connects == 2 and p.ready())


@pytest.mark.parametrize("session_expiry, resent", [(None, False), (300, True)])
def test_mosquitto_resends_a_dropped_qos1_message_only_on_reconnect_with_a_session(
    broker, proxy, peer, session_expiry, resent
):
    sub = peer("sub", proxy.port, subscribe="wh/v1/#", session_expiry=session_expiry)
    pub = peer("pub", broker)
    proxy.set_faults("to_client", drop=1.0)
    publish_all(pub, [(MV, str(i)) for i in range(3)])
    assert proxy.wait_for(lambda s: s.to_client.dropped == 3, TIMEOUT)
    proxy.clear_faults()
    proxy.cut()
    assert sub.wait(lambda p: p.connects == 2 and p.ready())
    publish_all(pub, [(HEAD, "sentinel")])  # anything resent on reconnect arrives before it
    assert sub.wait(lambda p: len(p.received) >= 1 and p.received[-1].payload == "sentinel")
    expected = [Received(MV, str(i), True) for i in range(3)] if resent else []
    assert sub.received == expected + [Received(HEAD, "sentinel", False)]


def test_paho_resends_a_dropped_qos1_publish_only_after_reconnecting(broker, proxy, peer):
    sub = peer("sub", broker, subscribe="wh/v1/#")
    pub = peer("pub", proxy.port)
    proxy.set_faults("to_broker", drop=1.0)
    mid = pub.publish(MV, "lost once")
    assert proxy.wait_for(lambda s: s.to_broker.dropped == 1, TIMEOUT)
    assert mid not in pub.acked
    proxy.clear_faults()
    proxy.cut()
    assert pub.wait(lambda p: mid in p.acked), "not resent after the reconnect"
    assert sub.wait(lambda p: len(p.received) >= 1)
    assert sub.payloads() == ["lost once"]
