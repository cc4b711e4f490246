"""A TCP proxy between MQTT clients and a broker that drops, duplicates and reorders PUBLISH packets.

`tc netem` is not available on the test machines, so faults are injected at the application level: every
connection a client opens to `MqttFaultProxy.port` gets its own upstream connection to the broker, and the bytes
in each direction are cut into MQTT control packets (fixed-header byte + variable-length "remaining length",
the same framing in MQTT 3.1.1 and 5) so faults can act on whole packets. Only PUBLISH packets (type 3) are
ever dropped, duplicated or held back; every other packet passes unchanged and in order, so the protocol stays
valid. Plain module, no pytest import, so a worker process can use it too.

    with MqttFaultProxy("127.0.0.1", broker_port, seed=7) as proxy:
        proxy.set_faults("to_client", drop=0.3, topic_filter="/mv")
        ...connect clients to ("127.0.0.1", proxy.port)...
        proxy.wait_for(lambda s: s.to_client.dropped >= 3, timeout=10)
        proxy.cut()          # every open connection is reset, both sides, like a network failure
        proxy.block(True)    # new connections are accepted and reset at once (a partition)

Directions: "to_broker" is client → broker, "to_client" is broker → client. Each connection and direction draws
from its own `random.Random(f"{seed}/{n}/{direction}")` (n = 0, 1, ... in accept order), so a run is
reproducible whatever the thread timing. For every PUBLISH the direction's `topic_filter` selects, three numbers
are drawn (drop, duplicate, reorder):
- drop: the packet is not forwarded.
- duplicate: it is forwarded twice; for QoS > 0 the second copy has the DUP flag set (for QoS 0 it must not).
- reorder: it is held back and released right after the next *selected* PUBLISH in that direction (so with
  a topic filter, movements are reordered among themselves), or after `max_hold` seconds (default 0.2), or
  before a DISCONNECT or the end of the stream, whichever comes first. One packet (with its duplicate) is
  held at a time; with reorder=1.0 and a long `max_hold` the order 1,2,3,4 becomes exactly 2,1,4,3.
`set_faults` applies to open connections from their next packet on.

What MQTT does about these faults, seen with Mosquitto 2.0.11 and paho-mqtt 2.2 (test_mqtt_proxy.py checks the
resend, duplicate and disconnect points; the in-flight stall was seen in a manual run):
- Nothing is retransmitted on a timer, by either side.
- A dropped QoS 1 PUBLISH to the client leaves Mosquitto waiting for a PUBACK that never comes. It resends it
  (DUP set) only when that client id reconnects and its session survived: MQTT 5 needs a Session Expiry
  Interval > 0 in CONNECT (paho reconnects with clean_start=False by default). With the default expiry of 0
  the session ends with the connection and the message is lost, as are messages queued behind it.
- A dropped QoS 1 PUBLISH to the broker leaves paho waiting likewise. paho resends every unacknowledged QoS 1
  message (DUP set) after each reconnect of the same `Client` object, whatever the broker's session.
- Unacknowledged messages keep their slot in the sender's in-flight window (Mosquitto `max_inflight_messages`,
  default 20, capped by the client's Receive Maximum; paho `max_inflight_messages`, default 20). Once 20 QoS 1
  messages are dropped on one connection the sender sends no further QoS 1/2 PUBLISH on it (observed: later
  messages on other topics stop too) until a reconnect, after which the session rules above decide what comes
  back. A test that drops many QoS 1 messages must reconnect its clients.
- A duplicated QoS 1 PUBLISH is delivered twice. paho hands both copies to `on_message` (it does not
  de-duplicate QoS 1, DUP or not) and PUBACKs each; Mosquitto forwards both copies to subscribers, each under
  a packet id of its own. The second PUBACK, for a packet id no longer in flight, is ignored by both:
  Mosquitto just logs a second "Received PUBACK from <client> (Mid: n, RC:0)" (no warning, connection kept),
  paho ignores a PUBACK for an unknown mid. (QoS 2 copies should be de-duplicated by packet id on both sides;
  not tested, the appliance uses QoS 1.)
- `cut()` makes paho call `on_disconnect` (reason "Unspecified error") and reconnect after its reconnect
  delay; a connection reset while `block(True)` also calls `on_disconnect`, though it never got a CONNACK.
- A held-back packet is lost if the connection is cut while it is held, as on a real network.

Limit: the topic is read from the PUBLISH variable header; an MQTT 5 PUBLISH that uses a topic alias carries an
empty topic, which a substring filter never selects. paho and Mosquitto use no aliases unless configured to.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

logger = logging.getLogger(__name__)

Direction = Literal["to_client", "to_broker"]
DIRECTIONS: tuple[Direction, ...] = ("to_client", "to_broker")

PUBLISH = 3
DISCONNECT = 14
DUP_FLAG = 0x08
MAX_REMAINING_LENGTH = 268_435_455
LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {on, 0 s}: close() sends a TCP RST


class MalformedPacket(ValueError):
    """The byte stream is not MQTT framing (a remaining length longer than four bytes)."""


# --- framing: pure functions -------------------------------------------------------------------------------


def packet_length(buf: bytes | bytearray) -> int | None:
    """Total length of the first packet in `buf` (fixed header included), or None while it is incomplete."""
    multiplier, remaining = 1, 0
    for i in range(1, 5):
        if i >= len(buf):
            return None
        byte = buf[i]
        remaining += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return 1 + i + remaining
        multiplier *= 128
    raise MalformedPacket(f"remaining length longer than four bytes: {bytes(buf[:5]).hex()}")


def encode_remaining_length(n: int) -> bytes:
    """The variable-length encoding of a remaining length (for building test packets)."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length out of range: {n}")
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class PacketReader:
    """Cuts a byte stream into whole MQTT control packets."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        packets = []
        while (length := packet_length(self._buf)) is not None and length <= len(self._buf):
            packets.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return packets


def packet_type(packet: bytes) -> int:
    return packet[0] >> 4


def publish_qos(packet: bytes) -> int:
    return (packet[0] >> 1) & 0x03


def publish_topic(packet: bytes) -> str:
    """The topic name of a PUBLISH packet ("" if it uses an MQTT 5 topic alias or is too short to hold one)."""
    start = 1
    while start < len(packet) and packet[start] & 0x80:
        start += 1
    start += 1
    if start + 2 > len(packet):
        return ""
    size = int.from_bytes(packet[start:start + 2], "big")
    return packet[start + 2:start + 2 + size].decode("utf-8", errors="replace")


def with_dup(packet: bytes) -> bytes:
    """The retransmission of a PUBLISH: DUP flag set for QoS 1 and 2; a QoS 0 packet must keep DUP clear."""
    if publish_qos(packet) == 0:
        return packet
    return bytes([packet[0] | DUP_FLAG]) + packet[1:]


# --- faults and counters -----------------------------------------------------------------------------------

TopicFilter = str | Callable[[str], bool] | None


@dataclass(frozen=True)
class Faults:
    """Faults for one direction: probabilities, which topics (`topic_filter`: a substring or a predicate on the
    topic name, None: all) and how long a reordered packet is held back at most (seconds)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    topic_filter: TopicFilter = None
    max_hold: float = 0.2

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if self.max_hold < 0:
            raise ValueError(f"max_hold must not be negative, got {self.max_hold!r}")

    @property
    def active(self) -> bool:
        return bool(self.drop or self.duplicate or self.reorder)

    def selects(self, topic: str) -> bool:
        if self.topic_filter is None:
            return True
        if isinstance(self.topic_filter, str):
            return self.topic_filter in topic
        return bool(self.topic_filter(topic))


@dataclass
class DirectionStats:
    """What happened to the packets of one direction, over all connections.

    publishes: PUBLISH packets read; forwarded: PUBLISH packets written (duplicates included); dropped,
    duplicated, reordered: faults applied; passed: other packets written."""

    publishes: int = 0
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    passed: int = 0


@dataclass
class ProxyStats:
    """A snapshot: per-direction counters, connections accepted / refused while blocked / cut / open now."""

    to_client: DirectionStats = dataclasses.field(default_factory=DirectionStats)
    to_broker: DirectionStats = dataclasses.field(default_factory=DirectionStats)
    accepted: int = 0
    refused: int = 0
    cut: int = 0
    open: int = 0

    def direction(self, direction: Direction) -> DirectionStats:
        return self.to_client if direction == "to_client" else self.to_broker


class DirectionFaulter:
    """The fault decisions for one direction of one connection: packets in, packets to write out.

    No sockets and no clock of its own (`now` is passed in), so it can be exercised packet by packet."""

    def __init__(self, rng: random.Random, record: Callable[[str], None]) -> None:
        self._rng = rng
        self._record = record
        self._held: list[bytes] = []
        self._deadline = 0.0

    @property
    def deadline(self) -> float | None:
        """When the held packet must go out at the latest (None: nothing held)."""
        return self._deadline if self._held else None

    def packet(self, packet: bytes, faults: Faults, now: float) -> list[bytes]:
        if packet_type(packet) != PUBLISH:
            return (self.release() if packet_type(packet) == DISCONNECT else []) + [packet]
        self._record("publishes")
        if not faults.active or not faults.selects(publish_topic(packet)):
            return [packet]
        drop, duplicate, reorder = self._rng.random(), self._rng.random(), self._rng.random()
        released = self.release()
        if drop < faults.drop:
            self._record("dropped")
            return released
        copies = [packet]
        if duplicate < faults.duplicate:
            copies.append(with_dup(packet))
            self._record("duplicated")
        if not released and reorder < faults.reorder:
            self._held, self._deadline = copies, now + faults.max_hold
            self._record("reordered")
            return []
        return copies + released

    def expire(self, now: float) -> list[bytes]:
        return self.release() if self._held and now >= self._deadline else []

    def release(self) -> list[bytes]:
        held, self._held = self._held, []
        return held


# --- the proxy ---------------------------------------------------------------------------------------------


class MqttFaultProxy:
    """Listens on `listen_host:listen_port` (0: a free port, see `.port`) and relays each connection to the
    broker at `upstream_host:upstream_port`, applying the faults set per direction. Thread-safe; the
    relaying runs in daemon threads between `start()` and `stop()` (or a `with` block)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_port: int = 0,
        listen_host: str = "127.0.0.1",
        seed: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.seed = seed
        self.connect_timeout = connect_timeout
        self._listen_addr = (listen_host, listen_port)
        self._lock = threading.Condition()
        self._faults: dict[Direction, Faults] = {d: Faults() for d in DIRECTIONS}
        self._stats = ProxyStats()
        self._blocked = False
        self._sessions: set[_Session] = set()
        self._next_index = 0
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread: threading.Thread | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return self._listener.getsockname()[1]

    def start(self) -> Self:
        listener = socket.create_server(self._listen_addr, reuse_port=False)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="mqtt-proxy-accept", daemon=True)
        self._accept_thread.start()
        logger.info("MQTT fault proxy on port %s -> %s:%s", self.port, *self.upstream)
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the relay threads."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.abort(reset=False)
        for session in sessions:
            session.join()
        if self._listener is not None:
            self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # run-time controls

    def set_faults(
        self,
        direction: Direction,
        *,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        topic_filter: TopicFilter = None,
        max_hold: float = 0.2,
    ) -> None:
        """Replace the faults of one direction (omitted arguments take their defaults); takes effect on the next
        packet, on open connections too."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        faults = Faults(drop, duplicate, reorder, topic_filter, max_hold)
        with self._lock:
            self._faults[direction] = faults

    def clear_faults(self, direction: Direction | None = None) -> None:
        """No faults in `direction` (both if None). A packet already held back still goes out on time."""
        with self._lock:
            for d in DIRECTIONS if direction is None else (direction,):
                self._faults[d] = Faults()

    def faults(self, direction: Direction) -> Faults:
        with self._lock:
            return self._faults[direction]

    def cut(self) -> int:
        """Reset every open connection on both sides at once (TCP RST); returns how many were cut.

        Packets held back for reordering are lost. New connections are accepted as usual unless blocked."""
        with self._lock:
            sessions = list(self._sessions)
            self._stats.cut += len(sessions)
            self._lock.notify_all()
        for session in sessions:
            session.abort(reset=True)
        return len(sessions)

    def block(self, blocked: bool = True) -> None:
        """While blocked, new connections are accepted and reset at once; open ones are left alone (call
        `cut()` too for a full partition)."""
        with self._lock:
            self._blocked = blocked

    def stats(self) -> ProxyStats:
        with self._lock:
            return self._snapshot()

    def wait_for(self, predicate: Callable[[ProxyStats], bool], timeout: float) -> bool:
        """Wait until `predicate(stats)` holds; False if it still does not after `timeout` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self._snapshot()), timeout)

    # internals

    def _snapshot(self) -> ProxyStats:
        return dataclasses.replace(
            self._stats,
            to_client=dataclasses.replace(self._stats.to_client),
            to_broker=dataclasses.replace(self._stats.to_broker),
            open=len(self._sessions),
        )

    def _record(self, direction: Direction, counter: str, n: int = 1) -> None:
        with self._lock:
            stats = self._stats.direction(direction)
            setattr(stats, counter, getattr(stats, counter) + n)
            self._lock.notify_all()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue
                self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        with self._lock:
            refuse = self._blocked or self._stopping
            if refuse:
                self._stats.refused += 1
                self._lock.notify_all()
        if refuse:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=self.connect_timeout)
            upstream.settimeout(None)
        except OSError as err:
            logger.warning("MQTT fault proxy: cannot reach the broker at %s:%s: %s", *self.upstream, err)
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            session = _Session(self, self._next_index, client, upstream)
            self._next_index += 1
            self._sessions.add(session)
            self._stats.accepted += 1
            self._lock.notify_all()
        session.start()

    def _forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)
            self._lock.notify_all()


class _Session:
    """One client connection and its upstream connection, relayed by one thread per direction."""

    def __init__(self, proxy: MqttFaultProxy, index: int, client: socket.socket, upstream: socket.socket):
        self.proxy = proxy
        self.index = index
        self.client = client
        self.upstream = upstream
        self._lock = threading.Lock()
        self._aborted = False
        self._running = 2
        self._threads = [
            threading.Thread(target=self._pump, args=("to_broker", client, upstream), daemon=True,
                             name=f"mqtt-proxy-{index}-to_broker"),
            threading.Thread(target=self._pump, args=("to_client", upstream, client), daemon=True,
                             name=f"mqtt-proxy-{index}-to_client"),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def abort(self, *, reset: bool) -> None:
        """Shut both sockets down, which wakes both relay threads; with `reset` the close sends a TCP RST."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            for sock in (self.client, self.upstream):
                try:
                    if reset:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already shut down or reset by the peer

    def _pump(self, direction: Direction, src: socket.socket, dst: socket.socket) -> None:
        proxy = self.proxy
        faulter = DirectionFaulter(
            random.Random(f"{proxy.seed}/{self.index}/{direction}"),
            lambda counter: proxy._record(direction, counter),
        )
        reader = PacketReader()
        clean_end = False
        try:  # any other exception (a topic_filter that raises) still ends the session, then surfaces
            with selectors.DefaultSelector() as selector:
                selector.register(src, selectors.EVENT_READ)
                while True:
                    deadline = faulter.deadline
                    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                    if not selector.select(timeout):
                        self._send(direction, dst, faulter.expire(time.monotonic()))
                        continue
                    data = src.recv(65536)
                    if not data:
                        break
                    for packet in reader.feed(data):
                        faults = proxy.faults(direction)
                        self._send(direction, dst, faulter.packet(packet, faults, time.monotonic()))
            with self._lock:
                clean_end = not self._aborted
            if clean_end:
                self._send(direction, dst, faulter.release())
                dst.shutdown(socket.SHUT_WR)
        except MalformedPacket as err:
            logger.warning("MQTT fault proxy: connection %s %s: %s", self.index, direction, err)
            clean_end = False
        except OSError as err:
            logger.debug("MQTT fault proxy: connection %s %s ended: %s", self.index, direction, err)
            clean_end = False
        finally:
            self._finish(clean_end)

    def _finish(self, clean_end: bool) -> None:
        if not clean_end:
            self.abort(reset=True)
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.client.close()
            self.upstream.close()
            self.proxy._forget(self)

    def _send(self, direction: Direction, dst: socket.socket, packets: list[bytes]) -> None:
        for packet in packets:
            dst.sendall(packet)
            self.proxy._record(direction, "forwarded" if packet_type(packet) == PUBLISH else "passed")


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
    sock.close()
