"""The MQTT connection of the agent: paho-mqtt 2.x set up the way DESIGN.md §3 requires, and nothing else.

- client id = site id = username, MQTT 5, `clean_start=False` with a session expiry: a restart keeps the
  broker session (paho's MQTT 5 default would discard it on every process start);
- `manual_ack=True`: the engine acknowledges a message only after its effect has committed;
- QoS 1 subscriptions with noLocal (a site never receives its own publishes);
- the retained `status` topic carries the last will `offline`.
paho's network thread only enqueues what arrives (`events`); the engine thread does all the work, so a slow
SQLite commit never stalls keepalives.
"""

from __future__ import annotations

import logging
import queue
import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.config.schema import MqttConfig
from appliance.sync import topics
from appliance.sync.messages import Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connected:
    session_present: bool


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retained: bool


class Link:
    def __init__(self, site: str, config: MqttConfig, password: str | None) -> None:
        self.site = site
        self.config = config
        self.events: queue.Queue = queue.Queue()
        self.connected = False
        self.denied = 0   # publishes the broker refused (ACL): counted, alarmed by the engine
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=site, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        client.username_pw_set(config.username or site, password)
        if config.tls:
            client.tls_set(ca_certs=str(config.ca_file) if config.ca_file else None,
                           certfile=str(config.client_cert) if config.client_cert else None,
                           keyfile=str(config.client_key) if config.client_key else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(topics.status(site), Status(site, "offline").to_bytes(), qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.max_inflight_messages_set(50)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        # connect_async + loop_start: paho keeps reconnecting in its thread while the broker is away.
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self, status: Status | None = None) -> None:
        if status is not None and self.connected:
            self.client.publish(topics.status(self.site), status.to_bytes(), qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """False when not connected: the engine re-sends from the ledger after reconnecting, so nothing is
        queued inside paho (which would report failure and deliver later anyway)."""
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def ack(self, event: Incoming) -> None:
        if event.qos:
            self.client.ack(event.mid, event.qos)

    # --- paho thread --------------------------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason_code)
            return
        self.connected = True
        options = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([(f, options) for f in topics.subscriptions(self.site)])
        self.events.put(Connected(bool(flags.session_present)))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self.events.put(Disconnected(str(reason_code)))

    def _on_message(self, client, userdata, message) -> None:
        self.events.put(Incoming(message.topic, message.payload, message.mid, message.qos, bool(message.retain)))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.denied += 1
            logger.error("broker refused a publish (mid %s): %s", mid, reason_code)
