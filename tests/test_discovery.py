"""Zeroconf announcement of the web UI: the ServiceInfo built from the config, and a real announcement on the
loopback interface resolved by a second, independent zeroconf instance (real mDNS packets over 127.0.0.1)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading

import pytest
from zeroconf import EventLoopBlocked, ServiceInfo, Zeroconf

from appliance import __version__
from appliance.config import parse_config
from appliance.discovery import (
    SERVICE_TYPE, Advertiser, bound_addresses, instance_name, service_info, split_bind,
)


def config(tmp_path, *, name="Berlin", bind="127.0.0.1:8123", advertise=True, site="BER"):
    return parse_config({"site": {"id": site, "name": name}, "database": {"path": str(tmp_path / "ledger.db")},
                         "web": {"bind": bind, "advertise": advertise}}, label="test", base_dir=tmp_path)


def txt(info: ServiceInfo) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in info.properties.items()}


# --- pure ---------------------------------------------------------------------------------------------------

def test_service_info_names_the_site_and_carries_port_txt_and_addresses(tmp_path):
    info = service_info(config(tmp_path, bind="0.0.0.0:8080"), ["192.168.1.20", "10.0.0.5"], host_name="box1.lan")
    assert info.type == "_http._tcp.local."
    assert info.name == "Inventory Berlin._http._tcp.local."
    assert info.port == 8080
    assert txt(info) == {"site": "BER", "version": __version__, "path": "/"}
    assert sorted(info.parsed_addresses()) == ["10.0.0.5", "192.168.1.20"]
    assert info.server == "box1.local."


@pytest.mark.parametrize("site_name, expected", [
    ("Berlin", "Inventory Berlin"),
    ("Kraków Nord", "Inventory Kraków Nord"),
    ("Lager 2.OG", "Inventory Lager 2.OG"),              # dots are allowed in an instance name
    ("Tab\there\n", "Inventory Tabhere"),                # control characters are not (RFC 6763)
    ("x" * 80, "Inventory " + "x" * 53),                 # at most 63 bytes
    ("ł" * 40, "Inventory " + "ł" * 26),                 # ... without cutting a character in half
])
def test_instance_name(site_name, expected):
    assert instance_name(site_name) == expected
    assert len(instance_name(site_name).encode()) <= 63


def test_site_name_defaults_to_the_id(tmp_path):
    info = service_info(config(tmp_path, name="", site="WAW"), ["10.0.0.5"])
    assert info.name == "Inventory WAW." + SERVICE_TYPE


@pytest.mark.parametrize("bind, host, port", [
    ("0.0.0.0:8080", "0.0.0.0", 8080), ("127.0.0.1:80", "127.0.0.1", 80), ("[::]:8443", "::", 8443),
])
def test_split_bind(bind, host, port):
    assert split_bind(bind) == (host, port)


def test_a_specific_bind_announces_that_address_and_a_wildcard_never_loopback():
    assert bound_addresses("192.168.7.9") == ["192.168.7.9"]
    assert bound_addresses("127.0.0.1") == ["127.0.0.1"]
    everywhere = bound_addresses("0.0.0.0")
    assert "127.0.0.1" not in everywhere
    assert all(a.count(".") == 3 for a in everywhere)
    assert bound_addresses("::1") == []      # IPv4 only


def test_advertise_false_starts_nothing(tmp_path):
    before = {t.ident for t in threading.enumerate()}
    advertiser = Advertiser(config(tmp_path, advertise=False))
    advertiser.start()
    assert not advertiser.enabled
    assert {t.ident for t in threading.enumerate()} == before   # no thread of ours, no zeroconf engine thread
    assert advertiser.name is None and not advertiser.registered.is_set()
    advertiser.stop()


# --- real mDNS on loopback ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loopback_mdns():
    """Skip when multicast on 127.0.0.1 does not work here (the probe uses zeroconf alone, not our code)."""
    found = None
    for _attempt in range(3):  # a loaded machine can make zeroconf's own event loop miss its deadline
        a, b = Zeroconf(interfaces=["127.0.0.1"]), Zeroconf(interfaces=["127.0.0.1"])
        probe = ServiceInfo(SERVICE_TYPE, f"probe-{secrets.token_hex(4)}.{SERVICE_TYPE}", port=9,
                            server="probe.local.", parsed_addresses=["127.0.0.1"])
        try:
            a.register_service(probe)
            found = b.get_service_info(SERVICE_TYPE, probe.name, timeout=3000)
            a.unregister_service(probe)
        except EventLoopBlocked:
            continue
        finally:
            a.close()
            b.close()
        if found is not None:
            break
    if found is None:
        pytest.skip("multicast on the loopback interface does not work here")


@pytest.fixture
def browser():
    zc = Zeroconf(interfaces=["127.0.0.1"])
    yield zc
    zc.close()


def unique_site_name() -> str:
    # Unique per run: nothing else on this loopback may answer for the name.
    return f"Test {secrets.token_hex(4)}"


def test_announced_ui_is_resolved_by_another_zeroconf_instance(tmp_path, loopback_mdns, browser):
    name = unique_site_name()
    advertiser = Advertiser(config(tmp_path, name=name, bind="127.0.0.1:8123"))
    advertiser.start()
    try:
        assert advertiser.registered.wait(15), "the announcement was not registered"
        assert advertiser.name == f"Inventory {name}.{SERVICE_TYPE}"
        info = browser.get_service_info(SERVICE_TYPE, advertiser.name, timeout=3000)
        assert info is not None
        assert info.port == 8123
        assert txt(info) == {"site": "BER", "version": __version__, "path": "/"}
        assert info.parsed_addresses() == ["127.0.0.1"]
    finally:
        advertiser.stop()
    # stop() sent goodbyes and closed zeroconf: a fresh instance finds nothing under that name any more.
    assert not advertiser.registered.is_set()
    fresh = Zeroconf(interfaces=["127.0.0.1"])
    try:
        assert fresh.get_service_info(SERVICE_TYPE, f"Inventory {name}.{SERVICE_TYPE}", timeout=1500) is None
    finally:
        fresh.close()


# Two boxes with one name. Not on loopback: the conflict probe asks for a unicast answer (RFC 6762 §8.1), and
# two zeroconf instances on one host share port 5353, so the kernel may hand that answer to the wrong one.
# "The other box" runs in its own network namespace, linked to this one by a veth pair: two real hosts.
OTHER_BOX = """
import sys
from zeroconf import ServiceInfo, Zeroconf
address, name = sys.argv[1], sys.argv[2]
zc = Zeroconf(interfaces=[address])
info = ServiceInfo("_http._tcp.local.", name + "._http._tcp.local.", port=8080, properties={"site": "OTHER"},
                   server="other-box.local.", parsed_addresses=[address])
zc.register_service(info)
print("ready", flush=True)
sys.stdin.read()
zc.unregister_service(info)
zc.close()
"""


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture
def other_box_link():
    """A network namespace joined to this one by a veth pair: (our address, the other box's, the namespace)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    tag = secrets.token_hex(3)
    ns, ours, theirs = f"zc-test-{tag}", f"zcA{tag}", f"zcB{tag}"
    octet = secrets.randbelow(60) * 4
    here, there = f"10.213.{secrets.randbelow(250)}.{octet + 1}", None
    there = here.rsplit(".", 1)[0] + f".{octet + 2}"
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
        run("ip", "link", "set", theirs, "netns", ns)
        run("ip", "addr", "add", f"{here}/30", "dev", ours)
        run("ip", "link", "set", ours, "up", "multicast", "on")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/30", "dev", theirs)
        run("ip", "netns", "exec", ns, "ip", "link", "set", theirs, "up", "multicast", "on")
        run("ip", "netns", "exec", ns, "ip", "route", "add", "224.0.0.0/4", "dev", theirs)
    except subprocess.CalledProcessError as error:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make a network namespace here: {error.stderr.decode().strip()}")
    try:
        yield here, there, ns
    finally:
        # Deleting the namespace deletes its end of the veth pair, and with it ours.
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def test_a_second_box_with_the_same_name_is_renamed_and_says_so(tmp_path, other_box_link, caplog):
    here, there, ns = other_box_link
    name = unique_site_name()
    other = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", OTHER_BOX, there, f"Inventory {name}"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    advertiser = Advertiser(config(tmp_path, name=name, bind=f"{here}:9123"))
    caplog.set_level(logging.INFO, logger="appliance.discovery")
    try:
        assert other.stdout.readline().strip() == "ready", "the other box did not announce itself"
        advertiser.start()
        assert advertiser.registered.wait(20), "the announcement was not registered"
        assert advertiser.name == f"Inventory {name}-2.{SERVICE_TYPE}"
        assert f"announces 'Inventory {name}'" in caplog.text
        assert f"announced as 'Inventory {name}-2'" in caplog.text
        # The other box sees this one under the new name, with this box's address and port.
        lookup = ("import sys; from zeroconf import Zeroconf; zc = Zeroconf(interfaces=[sys.argv[1]]); "
                  "i = zc.get_service_info('_http._tcp.local.', sys.argv[2], timeout=3000); "
                  "print(i.parsed_addresses()[0], i.port, i.properties[b'site'].decode()) if i else print('none'); "
                  "zc.close()")
        seen = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", lookup, there, advertiser.name],
                              capture_output=True, text=True, timeout=30)
        assert seen.stdout.split() == [here, "9123", "BER"], seen.stderr
    finally:
        advertiser.stop()
        other.stdin.close()
        other.wait(timeout=20)
        other.stdout.close()


def test_a_change_of_addresses_is_announced_again(tmp_path, loopback_mdns, browser):
    """A new DHCP lease: the next check re-announces with the new address (here: loopback appears later)."""
    answers = [[], ["127.0.0.1"]]
    advertiser = Advertiser(config(tmp_path, name=unique_site_name(), bind="127.0.0.1:8123"),
                            addresses=lambda: answers.pop(0) if len(answers) > 1 else answers[0], recheck_s=0.2)
    advertiser.start()
    try:
        assert advertiser.registered.wait(15)
        info = browser.get_service_info(SERVICE_TYPE, advertiser.name, timeout=3000)
        assert info is not None and info.parsed_addresses() == ["127.0.0.1"]
    finally:
        advertiser.stop()
