"""The sync engine: one thread that owns the agent's database connection and turns what arrives from the
broker and what was committed locally into applied movements and publishes (DESIGN.md §3; the protocol is
written out in README "Multi-site sync").

Each turn of `run()`: handle the events paho queued (apply, then acknowledge), publish movements this site
committed since the last turn (detected with `PRAGMA data_version`, cheap enough to poll every few ms), and
on timers re-announce head and high-water marks, ask for gaps, re-send remote requests and save the peer
view for `appliance sync status`.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field

from appliance import clock
from appliance.config.schema import MqttConfig
from appliance.ledger.service import Ledger
from appliance.sync import outbox, rpc, topics
from appliance.sync.alarms import raise_alarm
from appliance.sync.inbox import Inbox
from appliance.sync.link import Connected, Disconnected, Incoming, Link
from appliance.sync.messages import (MAX_ITEMS, BadMessage, FillRequest, FillResponse, Head, HighWaterMarks, Mark,
                                     MovementBatch, ReleaseRequest, ReleaseResponse, ReserveRequest,
                                     ReserveResponse, Status, decode)

logger = logging.getLogger(__name__)

POLL_S = 0.005
HWM_MIN_INTERVAL_S = 1.0
PEER_SAVE_INTERVAL_S = 1.0
REWIND_SETTLE_S = 0.5     # after connecting, time for the retained hwm messages to arrive before re-publishing


@dataclass
class Gap:
    noticed: float
    next_ask: float
    backoff: float
    asked_from: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, ledger: Ledger, config: MqttConfig, link: Link) -> None:
        self.ledger = ledger
        self.db = ledger.db
        self.site = ledger.site_id
        self.config = config
        self.link = link
        self.inbox = Inbox(self.db, self.site)
        self.heads: dict[str, Head] = {}
        self.marks: dict[str, dict[str, Mark]] = {}   # peer -> origin -> what the peer has applied
        self.states: dict[str, str] = {}
        self.heard: dict[str, str] = {}
        self.gaps: dict[str, Gap] = {}
        self.rpc_sent: dict[str, tuple[str, float]] = {}   # req_id -> (idem_key, sent at)
        self.pushed = 0              # own movements published up to this seq (since connecting)
        self.rewind_at: float | None = None
        self.recovering_until: float | None = None
        self.recovery_target = 0
        self.counters = {"applied": 0, "duplicates": 0, "rejected": 0, "published": 0, "fills_served": 0}
        self._data_version = -1
        self._force_publish = True
        self._dirty_peers: set[str] = set()
        self._timers = {"head": 0.0, "hwm": 0.0, "peers": 0.0, "gaps": 0.0, "rpc": 0.0}
        self._hwm_dirty = True
        self._rng = random.Random()

    # --- lifecycle ------------------------------------------------------------------------------------------

    def begin_recovery(self) -> None:
        """Refuse local writes until the peers' marks say whether they hold own movements this box lacks."""
        self.db.execute_sql("UPDATE site SET recovering = 1 WHERE id = ?", (self.site,))
        self.recovering_until = time.monotonic() + self.config.recovery_wait_s
        logger.info("recovering: waiting up to %.0fs for the peers' high-water marks", self.config.recovery_wait_s)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.turn()

    def turn(self, wait: float = POLL_S) -> None:
        try:
            event = self.link.events.get(timeout=wait)
        except queue.Empty:
            event = None
        while event is not None:
            try:
                self._handle(event)
            except Exception:
                # One bad event must not stop sync; what it carried is re-sent or re-asked for from the ledgers.
                logger.exception("sync: handling %s failed", type(event).__name__)
            try:
                event = self.link.events.get_nowait()
            except queue.Empty:
                event = None
        now = time.monotonic()
        self._publish_new()
        self._recovery_step(now)
        if self.rewind_at is not None and now >= self.rewind_at:
            self._rewind()
        if now >= self._timers["head"]:
            self._announce_head()
        if self._hwm_dirty and now >= self._timers["hwm"]:
            self._announce_hwm()
        if now >= self._timers["gaps"]:
            self._timers["gaps"] = now + 0.25
            self._ask_for_gaps(now)
        if now >= self._timers["rpc"]:
            self._timers["rpc"] = now + 0.5
            self._send_requests(now)
        if now >= self._timers["peers"]:
            self._timers["peers"] = now + PEER_SAVE_INTERVAL_S
            try:
                self._save_peers()
            except Exception:
                logger.exception("sync: saving the peer view failed")

    def _handle(self, event) -> None:
        if isinstance(event, Connected):
            logger.info("connected to the broker (session present: %s)", event.session_present)
            self._publish_status()
            # Re-announce: a broker that lost its state lost the retained head/hwm too.
            self._timers["head"] = 0.0
            self._hwm_dirty = True
            if self.pushed == 0:
                # First connection of this process: the history went out before; the rewind below re-sends
                # what the slowest peer lacks. After a reconnect, `pushed` is what went out before the break.
                self.pushed = outbox.head_of(self.db.connection(), self.site).seq
            self._force_publish = True
            self.rewind_at = time.monotonic() + REWIND_SETTLE_S
            self.rpc_sent.clear()
        elif isinstance(event, Disconnected):
            logger.warning("lost the broker: %s", event.reason)
        elif isinstance(event, Incoming):
            try:
                self._incoming(event)
            finally:
                self.link.ack(event)   # after the effect committed; a bad message is acked too (it never improves)

    # --- incoming -------------------------------------------------------------------------------------------

    def _incoming(self, event: Incoming) -> None:
        conn = self.db.connection()
        try:
            topic = topics.parse(event.topic)
        except topics.BadTopic as exc:
            raise_alarm(conn, "?", "bad_topic", str(exc))
            return
        if topic.publisher == self.site:
            return   # our own retained head/hwm/status coming back after a (re)subscribe
        if not self.inbox.knows(topic.publisher):
            raise_alarm(conn, topic.publisher, "unknown_site",
                        f"{event.topic}: {topic.publisher} is not in the site registry (`appliance site add`)")
            return
        if not event.payload:
            return   # a cleared retained message
        try:
            message = decode(event.payload, kind=topic.kind)
        except BadMessage as exc:
            raise_alarm(conn, topic.publisher, "bad_message", f"{event.topic}: {exc}")
            return
        self.heard[topic.publisher] = clock.now_ts()
        self._dirty_peers.add(topic.publisher)
        if isinstance(message, MovementBatch):
            self._apply(self.inbox.receive(message.items, claimed_origin=topic.publisher))
        elif isinstance(message, Head):
            if message.origin == topic.publisher:
                self.heads[message.origin] = message
        elif isinstance(message, HighWaterMarks):
            if message.site == topic.publisher:
                self.marks[message.site] = dict(message.have)
        elif isinstance(message, Status):
            self.states[topic.publisher] = message.state
        elif isinstance(message, FillRequest):
            self._serve_fill(topic.publisher, message)
        elif isinstance(message, FillResponse):
            self._apply(self.inbox.receive(message.items))
            gap = self.gaps.get(message.origin)
            if gap is not None and message.more:
                gap.next_ask = 0.0   # more is waiting: ask again at once
        elif isinstance(message, ReserveRequest):
            self._respond(topic.publisher, rpc.answer_reserve(self.ledger, topic.publisher, message))
            self._force_publish = True   # our own commit: data_version only counts other connections'
        elif isinstance(message, ReleaseRequest):
            self._respond(topic.publisher, rpc.answer_release(self.ledger, topic.publisher, message))
            self._force_publish = True
        elif isinstance(message, (ReserveResponse, ReleaseResponse)):
            self.rpc_sent.pop(message.req_id, None)
            rpc.record_answer(self.db, message)   # a late answer is still the owner's answer

    def _apply(self, outcome) -> None:
        self.counters["applied"] += outcome.total_applied
        self.counters["duplicates"] += outcome.duplicates
        self.counters["rejected"] += outcome.rejected
        if outcome.total_applied:
            self._hwm_dirty = True
            for origin in outcome.applied:
                gap = self.gaps.get(origin)
                if gap is not None:
                    gap.backoff = self.config.gap_grace_s or 0.5   # progress: the next chunk is asked for soon

    def _respond(self, peer: str, message) -> None:
        self.link.publish(topics.resp(self.site, peer), message.to_bytes())

    def _serve_fill(self, peer: str, req: FillRequest) -> None:
        conn = self.db.connection()
        items = outbox.tokens(conn, req.origin, req.epoch, req.first, req.last, limit=MAX_ITEMS)
        head = outbox.head_of(conn, req.origin)
        more = bool(items) and req.first + len(items) - 1 < min(req.last, head.seq)
        self.counters["fills_served"] += len(items)
        self._respond(peer, FillResponse(req.req_id, req.origin, req.epoch, tuple(items), more))

    # --- outgoing -------------------------------------------------------------------------------------------

    def _publish_new(self) -> None:
        conn = self.db.connection()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version and not self._force_publish:
            return
        self._data_version = version
        self._force_publish = False
        if not self.link.connected:
            return
        head = outbox.head_of(conn, self.site)
        sent = False
        while self.pushed < head.seq:
            items = outbox.tokens(conn, self.site, head.epoch, self.pushed + 1, head.seq,
                                  limit=self.config.batch_size)
            if not items or not self.link.publish(topics.mv(self.site),
                                                  MovementBatch(self.site, head.epoch, tuple(items)).to_bytes()):
                break
            self.pushed += len(items)
            self.counters["published"] += len(items)
            sent = True
        if sent:
            self._announce_head()

    def _rewind(self) -> None:
        """Re-publish what some peer may have missed while we were apart; receivers drop duplicates."""
        self.rewind_at = None
        known = [marks[self.site].seq for peer, marks in self.marks.items() if self.site in marks]
        if known and min(known) < self.pushed:
            logger.info("re-publishing own movements from seq %d", min(known) + 1)
            self.pushed = min(known)
            self._force_publish = True

    def _announce_head(self) -> None:
        self._timers["head"] = time.monotonic() + self.config.head_interval_s
        conn = self.db.connection()
        head = outbox.head_of(conn, self.site)
        ts = conn.execute("SELECT ts FROM movement WHERE origin = ? AND epoch = ? AND seq = ?",
                          (self.site, head.epoch, head.seq)).fetchone()
        message = Head(self.site, head.epoch, head.seq, head.hash, ts[0] if ts else clock.now_ts())
        self.link.publish(topics.head(self.site), message.to_bytes(), retain=True)

    def _announce_hwm(self) -> None:
        self._timers["hwm"] = time.monotonic() + HWM_MIN_INTERVAL_S
        have = {origin: Mark(epoch, seq, digest) for origin, epoch, seq, digest in self.db.execute_sql(
            "SELECT id, epoch, head_seq, head_hash FROM site WHERE id IN (SELECT site_id FROM site_key)")}
        if self.link.publish(topics.hwm(self.site), HighWaterMarks(self.site, have).to_bytes(), retain=True):
            self._hwm_dirty = False

    def _publish_status(self) -> None:
        state = "recovering" if self.recovering_until is not None else "online"
        self.link.publish(topics.status(self.site), Status(self.site, state).to_bytes(), retain=True)

    # --- gaps and recovery ----------------------------------------------------------------------------------

    def known_seq(self, origin: str) -> int:
        """The furthest seq of `origin` that anyone says exists."""
        head = self.heads.get(origin)
        seqs = [head.seq if head else 0, self.inbox.head_known(origin)]
        seqs += [marks[origin].seq for marks in self.marks.values() if origin in marks]
        return max(seqs)

    def _ask_for_gaps(self, now: float) -> None:
        if not self.link.connected:
            return
        conn = self.db.connection()
        quarantined = {r[0] for r in conn.execute("SELECT site_id FROM sync_peer WHERE quarantined_at IS NOT NULL")}
        for origin, epoch, have in conn.execute("SELECT id, epoch, head_seq FROM site WHERE id IN"
                                                " (SELECT site_id FROM site_key)").fetchall():
            if origin in quarantined or (origin == self.site and self.recovering_until is None):
                continue
            known = self.known_seq(origin)
            if known <= have:
                self.gaps.pop(origin, None)
                continue
            gap = self.gaps.get(origin)
            if gap is None:
                grace = 0.0 if origin == self.site else self.config.gap_grace_s
                gap = self.gaps[origin] = Gap(now, now + grace, max(self.config.gap_grace_s, 0.5))
            if now < gap.next_ask:
                continue
            responder = self._responder(origin, have, gap)
            if responder is None:
                continue
            last = min(have + MAX_ITEMS, known)
            req = FillRequest(f"fill-{origin}-{have + 1}-{self._rng.randrange(10**6)}", origin, epoch, have + 1, last)
            logger.info("asking %s for %s %d..%d", responder, origin, have + 1, last)
            self.link.publish(topics.req(self.site, responder), req.to_bytes())
            gap.next_ask = now + gap.backoff * (1 + self._rng.random() / 2)
            gap.backoff = min(gap.backoff * 2, 30.0)

    def _responder(self, origin: str, have: int, gap: Gap) -> str | None:
        """The origin when it is online, else a peer whose marks say it holds more; rotating between tries."""
        candidates = [peer for peer, marks in self.marks.items()
                      if peer != self.site and origin in marks and marks[origin].seq > have]
        if origin != self.site and self.states.get(origin) == "online":
            candidates.insert(0, origin)
        if not candidates:
            return None
        fresh = [c for c in candidates if c not in gap.asked_from] or candidates
        choice = fresh[0]
        gap.asked_from = (gap.asked_from + [choice])[-len(candidates):]
        return choice

    def _recovery_step(self, now: float) -> None:
        if self.recovering_until is None:
            return
        have = outbox.head_of(self.db.connection(), self.site).seq
        target = max([marks[self.site].seq for marks in self.marks.values() if self.site in marks] or [0])
        settled = self.link.connected and self.rewind_at is None and self.marks
        if (settled and target <= have) or (now >= self.recovering_until and target <= have):
            self.db.execute_sql("UPDATE site SET recovering = 0 WHERE id = ?", (self.site,))
            self.recovering_until = None
            logger.info("recovery done: own head %d, peers know up to %d; accepting writes", have, target)
            self._publish_status()

    # --- remote requests ------------------------------------------------------------------------------------

    def _send_requests(self, now: float) -> None:
        for req_id, (key, sent_at) in list(self.rpc_sent.items()):
            if now - sent_at > self.config.rpc_timeout_s:
                del self.rpc_sent[req_id]
                rpc.record_timeout(self.db, key)
        if not self.link.connected:
            return
        waiting = {key for key, _ in self.rpc_sent.values()}
        for row in rpc.due_requests(self.db):
            if row[0] in waiting:
                continue
            owner, message = rpc.message_for(row)
            if self.link.publish(topics.req(self.site, owner), message.to_bytes()):
                self.rpc_sent[message.req_id] = (row[0], now)
                rpc.record_sent(self.db, row[0])

    # --- the peer view for `sync status` --------------------------------------------------------------------

    def _save_peers(self) -> None:
        for peer in self._dirty_peers:
            head = self.heads.get(peer)
            marks = {o: m.to_json() for o, m in self.marks.get(peer, {}).items()}
            self.db.execute_sql(
                "INSERT INTO sync_peer (site_id, state, last_heard, head_epoch, head_seq, head_hash, head_ts, hwm)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE SET state = excluded.state,"
                " last_heard = excluded.last_heard, head_epoch = excluded.head_epoch, head_seq = excluded.head_seq,"
                " head_hash = excluded.head_hash, head_ts = excluded.head_ts, hwm = excluded.hwm",
                (peer, self.states.get(peer, "unknown"), self.heard.get(peer), head.epoch if head else 0,
                 head.seq if head else 0, head.hash if head else "", head.ts if head else None, json.dumps(marks)))
        self._dirty_peers.clear()
