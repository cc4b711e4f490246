"""Multi-site sync end to end: real Mosquitto, one `appliance agent` process and one database per site
(sync-research.md §5.4). Every scenario ends, once the network has healed, with `check_invariants`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from brokers import Broker, mosquitto_available
from mqtt_proxy import MqttFaultProxy
from sync_cluster import Box, check_invariants, make_boxes, wait_converged
from sync_sites import all_tokens, open_box, site_key

from appliance.errors import InsufficientStock
from appliance.ledger import queries
from appliance.ledger.movement_token import encode_body, parse_body
from appliance.ledger.requests import Move
from appliance.sync import rpc, topics
from appliance.sync.identity import SigningKey
from appliance.sync.messages import MovementBatch
from appliance.sync.tokens import open_token, sign

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")


@pytest.fixture
def broker(tmp_path):
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def cluster(tmp_path, broker):
    made = []

    def make(sites=("BER", "WAW"), **mqtt):
        boxes = make_boxes(tmp_path, list(sites), broker.port, **mqtt)
        made.extend(boxes.values())
        return boxes
    yield make
    for box in made:
        box.kill()
        box.close()


def test_steady_state_both_sites_see_each_other(cluster):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]

    def work(box, n):
        for i in range(n):
            box.post_retrying(Move("receive", sku="DOG-5", location=f"{box.site}-A-01", qty=i + 1))
            if i % 3 == 2:
                box.post_retrying(Move("ship", sku="DOG-5", location=f"{box.site}-A-01", qty=1))
    threads = [threading.Thread(target=work, args=(box, 30)) for box in (ber, waw)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_converged(boxes.values(), timeout=20)
    check_invariants(boxes.values())
    # What the admin sees: the peer online, nothing behind (the agent saves its view every second).
    def peer_view():
        done = subprocess.run([sys.executable, "-m", "appliance", "--config", str(ber.config_path), "sync", "status",
                               "--json"], capture_output=True, text=True, timeout=30)
        return json.loads(done.stdout)["peers"][0]
    peer = eventually(peer_view, lambda p: (p["state"], p["head"], p["has_of_ours"]) == (
        "online", waw.heads()["WAW"][1], ber.heads()["BER"][1]), timeout=10)
    assert (peer["site"], peer["lag_movements"], peer["quarantined"]) == ("WAW", 0, False)
    assert peer["last_heard"]


def receive(box, qty=1, sku="DOG-5", bin_="A-01", **kw):
    return box.post_retrying(Move("receive", sku=sku, location=f"{box.site}-{bin_}", qty=qty), **kw)


def burst(box, n, **kw):
    for i in range(n):
        receive(box, 1 + i % 3, **kw)


def test_no_oversell_with_two_scanners_at_one_site_and_two_sites_racing(cluster):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    receive(ber, 10)
    shipped = []

    def scanner():
        ledger = open_box(ber.db_path, "BER")   # its own connection, as a second gun's process would have
        try:
            for _ in range(8):
                try:
                    ledger.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=1))
                    shipped.append(1)
                except InsufficientStock:
                    pass
        finally:
            ledger.db.close()
    keys = [rpc.request_reserve(waw.ledger.db, "BER", "DOG-5", "BER-A-01", 1) for _ in range(6)]
    guns = [threading.Thread(target=scanner) for _ in range(2)]
    for gun in guns:
        gun.start()
    for gun in guns:
        gun.join()
    wait_for_requests(waw, keys)
    held = [r for r in rpc.list_requests(waw.ledger.db) if r["status"] == "HELD"]
    assert len(shipped) + len(held) == 10     # every unit went exactly once, none twice
    wait_converged(boxes.values())
    check_invariants(boxes.values())


def eventually(read, done, timeout: float = 30.0):
    """Poll `read()` until `done(value)`; returns the value, or fails showing the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still not there after {timeout}s: {str(value)[-3000:]}"
        time.sleep(0.05)


def wait_for_requests(box, keys, timeout=30.0):
    return eventually(lambda: {r["idem_key"]: r for r in rpc.list_requests(box.ledger.db)},
                      lambda rows: all(rows[k]["status"] in rpc.FINAL for k in keys), timeout)


def test_receiver_killed_mid_apply_and_origin_killed_between_commit_and_publish(cluster):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    burst(ber, 300)
    waw.kill()                       # SIGKILL while it is still applying the burst
    burst(ber, 50)
    waw.start()
    ber.kill()                       # the origin dies; these commit but nobody publishes them
    burst(ber, 40)
    ber.start()
    wait_converged(boxes.values())
    check_invariants(boxes.values())


def test_broker_killed_and_wiped_then_restarted_cleanly(cluster, broker):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    burst(ber, 50)
    burst(waw, 20)
    broker.kill()
    burst(ber, 30)                   # the link is down: committed locally, published later
    broker.restart(wipe=True)        # every session, queue and retained head is gone
    burst(waw, 30)
    wait_converged(boxes.values())
    broker.stop()
    broker.restart()
    burst(ber, 10)
    wait_converged(boxes.values())
    check_invariants(boxes.values())


def test_a_tiny_broker_queue_loses_nothing_for_a_peer_offline_for_2000_movements(tmp_path):
    with Broker(tmp_path / "small-broker", extra_conf="max_queued_messages 5\n") as small:
        boxes = make_boxes(tmp_path, ["BER", "WAW"], small.port, batch_size=1)
        try:
            for box in boxes.values():
                box.start()
            ber, waw = boxes["BER"], boxes["WAW"]
            receive(ber)
            wait_converged(boxes.values())
            waw.stop()               # its session stays on the broker, which queues at most 5 messages
            for i in range(2000):
                receive(ber)
            waw.start()
            wait_converged(boxes.values(), timeout=60)
            check_invariants(boxes.values())
            # The broker dropped what it could not queue; WAW pulled it from BER.
            assert "asking BER for BER" in waw.log_text()
        finally:
            for box in boxes.values():
                box.kill()
                box.close()


def test_partition_with_bursts_on_both_sides_then_heal(cluster, broker):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    receive(ber)
    wait_converged(boxes.values())
    broker.stop()
    burst(ber, 400)
    burst(waw, 300)
    broker.restart()
    wait_converged(boxes.values(), timeout=60)
    check_invariants(boxes.values())


def test_a_gap_is_filled_by_a_third_site_while_the_origin_is_offline(cluster):
    boxes = cluster(("BER", "WAW", "PAR"))
    ber, waw, par = boxes["BER"], boxes["WAW"], boxes["PAR"]
    ber.start()
    waw.start()
    burst(ber, 120)
    wait_converged([ber, waw])
    ber.stop()
    par.start()
    eventually(lambda: par.heads()["BER"], lambda head: head == ber.heads()["BER"])
    assert "asking WAW for BER" in par.log_text()
    ber.start()
    wait_converged(boxes.values())
    check_invariants(boxes.values())


def test_duplicated_reordered_and_dropped_messages_through_a_proxy(cluster, broker):
    with MqttFaultProxy("127.0.0.1", broker.port, seed=3) as proxy:
        boxes = cluster(batch_size=1)              # one movement per message: many messages to hit
        ber, waw = boxes["BER"], boxes["WAW"]
        waw.write_config(port=proxy.port)          # WAW reaches the broker only through the proxy
        for box in boxes.values():
            box.start()
        receive(ber)
        wait_converged(boxes.values())
        proxy.set_faults("to_client", drop=0.1, duplicate=0.2, reorder=0.3, topic_filter="/mv")
        proxy.set_faults("to_broker", duplicate=0.2, reorder=0.3, topic_filter="/mv")
        for i in range(12):
            burst(ber, 25)
            burst(waw, 10)
            if i % 3 == 2:
                # A drop on a live TCP connection stalls Mosquitto's QoS 1 window (20) until the client
                # reconnects; on a real network the loss and the reconnect come together, as here.
                time.sleep(0.3)
                proxy.cut()
                assert proxy.wait_for(lambda s: s.open == 1, timeout=10)
        proxy.clear_faults()
        stats = proxy.stats()
        assert stats.to_client.dropped and stats.to_client.duplicated and stats.to_client.reordered
        assert stats.to_broker.duplicated and stats.to_broker.reordered
        proxy.cut()
        wait_converged(boxes.values(), timeout=60)
        check_invariants(boxes.values())


def test_forged_and_replayed_messages_change_nothing_and_are_counted(cluster, broker):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    burst(ber, 5)
    wait_converged(boxes.values())
    genuine = all_tokens(ber.ledger.db, "BER")
    body = parse_body(open_token(genuine[-1], {site_key("BER").kid: site_key("BER").public})[1])
    nxt = body._replace(seq=body.seq + 1, prev=body.prev, d_on_hand=1000)
    forged = sign(encode_body(nxt), SigningKey.from_seed("BER#1", bytes(32)))        # right kid, wrong key
    stolen_topic = MovementBatch("BER", 1, tuple(genuine)).to_bytes()                # replay on WAW's topic
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="EVE", protocol=mqtt.MQTTv5)
    attacker.connect(broker.host, broker.port)
    attacker.loop_start()
    try:
        for topic, payload in ((topics.mv("BER"), MovementBatch("BER", 1, (forged,)).to_bytes()),
                               (topics.mv("BER"), MovementBatch("BER", 1, tuple(genuine)).to_bytes()),
                               (topics.mv("PAR"), stolen_topic),
                               (topics.mv("BER"), b'{"type":"mv","v":1,"origin":"BER"}')):
            attacker.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
    eventually(lambda: {(site, kind) for site, kind, _ in waw.query("SELECT site_id, kind, count FROM sync_alarm")},
               lambda kinds: {("BER", "bad_signature"), ("BER", "bad_message")} <= kinds, timeout=15)
    assert waw.query("SELECT count(*) FROM movement WHERE origin = 'BER'") == [(5,)]
    burst(ber, 3)
    wait_converged(boxes.values())
    check_invariants(boxes.values())


def test_a_box_restored_from_an_old_backup_recovers_its_own_movements_before_writing(cluster):
    boxes = cluster()
    for box in boxes.values():
        box.start()
    ber, waw = boxes["BER"], boxes["WAW"]
    burst(ber, 20)
    backup = ber.dir / "backup.db"
    ber.ledger.db.execute_sql(f"VACUUM INTO '{backup}'")
    burst(ber, 30)
    ber.post(Move("ship", sku="DOG-5", location="BER-A-01", qty=2), op_id="scan-42")
    wait_converged(boxes.values())
    lost_head = ber.heads()["BER"]
    ber.stop()
    ber.close()
    for suffix in ("", "-wal", "-shm"):
        (ber.dir / f"ledger.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, ber.db_path)      # the SD card died; last night's backup goes into a new box
    assert ber.heads()["BER"][1] == 20
    ber.start()
    ber.wait_ready()     # what systemd's ordering does for the web app (Type=notify)
    # The dock retries its last scan: recovery brings the lost movements back first, so it replays instead of
    # shipping twice, and the next new movement continues the chain at 53.
    again = ber.post_retrying(Move("ship", sku="DOG-5", location="BER-A-01", qty=2), op_id="scan-42")
    assert again.replayed and ber.heads()["BER"] == lost_head
    assert receive(ber).movements[0].seq == lost_head[1] + 1
    wait_converged(boxes.values())
    check_invariants(boxes.values())
    assert not waw.query("SELECT * FROM sync_alarm")


def test_transfer_to_an_offline_destination_arrives_and_is_received_there(cluster):
    boxes = cluster()
    ber, waw = boxes["BER"], boxes["WAW"]
    ber.start()
    receive(ber, 10)
    ber.ledger.transfer("DOG-5", "BER-A-01", "WAW-A-01", 6)       # WAW's box is off while the truck drives
    assert queries.totals_by_site(ber.ledger.db.connection(), "DOG-5")["WAW"]["in_transit"] == 6
    waw.start()
    wait_converged(boxes.values())
    assert waw.query("SELECT code, status FROM transfer") == [("BER-TR-000001", "in_transit")]
    waw.post_retrying(Move("transfer_in", transfer="BER-TR-000001", qty=5, close=True))
    wait_converged(boxes.values())
    for box in (ber, waw):
        assert box.query("SELECT status, qty_received, qty_short FROM transfer") == [("closed", 5, 1)]
    check_invariants(boxes.values())


def test_a_reserve_whose_answer_is_lost_is_unknown_then_retried_with_the_same_key(cluster, broker):
    with MqttFaultProxy("127.0.0.1", broker.port, seed=5) as proxy:
        boxes = cluster()
        ber, waw = boxes["BER"], boxes["WAW"]
        ber.write_config(port=proxy.port)
        for box in boxes.values():
            box.start()
        receive(waw, 5)
        wait_converged(boxes.values())
        proxy.set_faults("to_client", drop=1.0, topic_filter="/resp/BER")   # every answer to BER is lost
        key = rpc.request_reserve(ber.ledger.db, "WAW", "DOG-5", "WAW-A-01", 3, ttl_s=600)
        eventually(lambda: next(r for r in rpc.list_requests(ber.ledger.db) if r["idem_key"] == key),
                   lambda row: row["status"] == "UNKNOWN", timeout=20)
        assert proxy.stats().to_client.dropped >= 1
        proxy.clear_faults()
        proxy.cut()                                    # the link comes back
        rows = wait_for_requests(ber, [key])
        assert rows[key]["status"] == "HELD"
        # The owner held it once, however many times the request arrived.
        assert waw.query("SELECT count(*), sum(qty) FROM reservation WHERE status = 'held'") == [(1, 3)]
        assert rows[key]["attempts"] >= 2
        wait_converged(boxes.values())
        check_invariants(boxes.values())


def test_the_production_path_tls_client_certificates_passwords_and_the_shipped_acl(tmp_path):
    passwords = {"BER": "pw-ber", "WAW": "pw-waw"}
    with Broker(tmp_path / "tls-broker", passwords=passwords, acl=True, tls=True) as secure:
        boxes = {}
        for site, peer in (("BER", "WAW"), ("WAW", "BER")):
            cert, key = secure.client_cert(site)
            boxes[site] = Box(tmp_path, site, [peer], secure.port, env={"APPLIANCE_MQTT_PASSWORD": passwords[site]},
                              tls=True, ca_file=str(secure.ca_file), client_cert=str(cert), client_key=str(key))
        try:
            for box in boxes.values():
                box.start()
            burst(boxes["BER"], 20)
            burst(boxes["WAW"], 20)
            wait_converged(boxes.values())
            check_invariants(boxes.values())
        finally:
            for box in boxes.values():
                box.kill()
                box.close()
