"""Printer discovery: the kind guess and the pasteable stanza (checked by the real config loader), and a real
zeroconf browse on the loopback interface that finds printers announced by a second, independent instance."""

from __future__ import annotations

import secrets
import tomllib

import pytest
from zeroconf import EventLoopBlocked, ServiceInfo, Zeroconf

from appliance.config import load_config
from appliance.printing.discover import Found, browse, guess_kind, slug, stanza


def load_stanza(tmp_path, text: str):
    """The stanza pasted into a config file with a site and a database, loaded the way the appliance does."""
    path = tmp_path / "appliance.toml"
    path.write_text(f'[site]\nid = "BER"\n\n[database]\npath = "ledger.db"\n\n{text}', encoding="utf-8")
    config = load_config(path)
    assert len(config.printers) == 1
    return config.printers[0]


def found(**changes) -> Found:
    values = dict(name="Zebra ZD421", service="_pdl-datastream._tcp", host="zd421-1234.local",
                  address="192.168.1.50", port=9100, model="ZD421", kind="zpl_tcp")
    values.update(changes)
    return Found(**values)


# --- pure ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("texts, kind", [
    (("Zebra ZD421",), "zpl_tcp"),
    (("Lager links", "ZT410-300dpi ZPL"), "zpl_tcp"),
    (("ZDesigner GK420d",), "zpl_tcp"),
    (("Etiketten", "GX430t"), "zpl_tcp"),
    (("EPSON TM-T88VI",), "escpos_network"),
    (("Kasse", "TM-m30"), "escpos_network"),
    (("Bondrucker", "", "ESC/POS"), "escpos_network"),
    (("HP LaserJet M404",), "unknown"),
    (("Brother QL-820NWB",), "unknown"),
])
def test_guess_kind(texts, kind):
    assert guess_kind(*texts) == kind


@pytest.mark.parametrize("name, expected", [
    ("Zebra ZD421", "zebra-zd421"),
    ("Drucker Küche (1. OG)", "drucker-kuche-1-og"),
    ("Łódź", "odz"),                       # ł has no ASCII decomposition; the rest stays readable
    ("***", "printer"),
    ("x" * 60, "x" * 40),
])
def test_slug(name, expected):
    assert slug(name) == expected


def test_zebra_stanza_loads_as_a_printer(tmp_path):
    text = stanza(found(model="ZD421-300dpi"))
    assert text.startswith("# Zebra ZD421 (ZD421-300dpi), announced as _pdl-datastream._tcp\n[[printer]]\n")
    printer = load_stanza(tmp_path, text)
    assert (printer.name, printer.kind, printer.host, printer.port, printer.dpi) == (
        "zebra-zd421", "zpl_tcp", "192.168.1.50", 9100, 300)
    assert (printer.width_mm, printer.height_mm, printer.media) == (50.0, 30.0, "gap")


def test_epson_stanza_is_escpos_on_continuous_paper(tmp_path):
    printer = load_stanza(tmp_path, stanza(found(name="EPSON TM-T88VI", model="", kind="escpos_network")))
    assert (printer.kind, printer.media, printer.width_mm, printer.dpi) == ("escpos_network", "continuous", 72.0, 203)


def test_lpd_announcement_points_at_the_raw_port(tmp_path):
    text = stanza(found(service="_printer._tcp", port=515))
    assert "it announced LPD on 515; raw printing is usually 9100" in text
    assert load_stanza(tmp_path, text).port == 9100


def test_unknown_language_still_gives_a_loadable_stanza_that_says_so(tmp_path):
    text = stanza(found(name="Some Printer", model="", kind="unknown"))
    assert 'kind = "zpl_tcp"   # a guess: zpl_tcp if it speaks ZPL, escpos_network if ESC/POS' in text
    assert load_stanza(tmp_path, text).kind == "zpl_tcp"


def test_without_an_address_the_host_name_is_used(tmp_path):
    assert load_stanza(tmp_path, stanza(found(address=""))).host == "zd421-1234.local"


def test_announced_text_cannot_inject_config(tmp_path):
    text = stanza(found(name='Evil"\n[web]\nbind = "0.0.0.0:1"', model="x\ndefault = true"))
    printer = load_stanza(tmp_path, text)            # no [web] section, no extra key: it loads
    assert printer.name == "evil-web-bind-0-0-0-0-1" and printer.default is False
    assert tomllib.loads(text).keys() == {"printer"}


# --- real mDNS on loopback ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loopback_mdns():
    """Skip when multicast on 127.0.0.1 does not work here (the probe uses zeroconf alone, not our code)."""
    service = "_pdl-datastream._tcp.local."
    for _attempt in range(3):   # a loaded machine can make zeroconf's own event loop miss its deadline
        a, b = Zeroconf(interfaces=["127.0.0.1"]), Zeroconf(interfaces=["127.0.0.1"])
        probe = ServiceInfo(service, f"probe-{secrets.token_hex(4)}.{service}", port=9, server="probe.local.",
                            parsed_addresses=["127.0.0.1"])
        try:
            a.register_service(probe)
            answered = b.get_service_info(service, probe.name, timeout=3000) is not None
            a.unregister_service(probe)
        except EventLoopBlocked:
            continue
        finally:
            a.close()
            b.close()
        if answered:
            return
    pytest.skip("multicast on the loopback interface does not work here")


@pytest.fixture
def announced(loopback_mdns):
    """A Zebra announcing raw printing and an Epson announcing LPD, each under a name unique to this run."""
    tag = secrets.token_hex(3)
    zc = Zeroconf(interfaces=["127.0.0.1"])
    infos = [
        ServiceInfo("_pdl-datastream._tcp.local.", f"Zebra ZD421 {tag}._pdl-datastream._tcp.local.", port=9100,
                    properties={"ty": "Zebra ZD421-300dpi", "product": "(ZD421)"}, server=f"zd421-{tag}.local.",
                    parsed_addresses=["127.0.0.1"]),
        ServiceInfo("_printer._tcp.local.", f"Kasse {tag}._printer._tcp.local.", port=515,
                    properties={"product": "(EPSON TM-T88VI)"}, server=f"tm-{tag}.local.",
                    parsed_addresses=["127.0.0.1"]),
    ]
    try:
        for info in infos:
            zc.register_service(info)
        yield tag
        for info in infos:
            zc.unregister_service(info)
    finally:
        zc.close()


def test_browse_finds_announced_printers_and_their_stanza_loads(tmp_path, announced):
    tag = announced
    wanted = {f"Zebra ZD421 {tag}", f"Kasse {tag}"}
    mine: dict[str, Found] = {}
    for _attempt in range(3):   # mDNS is UDP: on a loaded machine one browse window can miss an answer
        mine.update({f.name: f for f in browse(3.0, interfaces=["127.0.0.1"]) if f.name in wanted})
        if mine.keys() == wanted:
            break
    assert mine.keys() == wanted
    zebra, epson = mine[f"Zebra ZD421 {tag}"], mine[f"Kasse {tag}"]
    assert zebra == Found(name=f"Zebra ZD421 {tag}", service="_pdl-datastream._tcp", host=f"zd421-{tag}.local",
                          address="127.0.0.1", port=9100, model="Zebra ZD421-300dpi", kind="zpl_tcp")
    assert epson == Found(name=f"Kasse {tag}", service="_printer._tcp", host=f"tm-{tag}.local",
                          address="127.0.0.1", port=515, model="EPSON TM-T88VI", kind="escpos_network")
    printer = load_stanza(tmp_path, stanza(zebra))
    assert (printer.name, printer.kind, printer.host, printer.port, printer.dpi) == (
        f"zebra-zd421-{tag}", "zpl_tcp", "127.0.0.1", 9100, 300)
