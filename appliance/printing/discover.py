"""Finding network printers on the LAN with zeroconf, and the `[[printer]]` stanza to paste for each.

Printers announce raw printing as `_pdl-datastream._tcp` (port 9100) and LPD as `_printer._tcp` (port 515);
`browse()` listens for both for a few seconds and resolves what answered. Which language a printer speaks is
not announced; `guess_kind` reads it from the names (Zebra → ZPL, Epson TM → ESC/POS) and says "unknown"
otherwise. The stanza is a starting point: resolution and label size are not announced either, so it says
which lines to check.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

SERVICES = ("_pdl-datastream._tcp", "_printer._tcp")
RAW_PORT = 9100
RESOLVE_MS = 2000

_ZPL = re.compile(r"zebra|zdesigner|\bzpl|\b(zd|zt|zq|gk|gx|gt|zm|zp)\d{3}", re.IGNORECASE)
_ESCPOS = re.compile(r"epson|\btm-|esc/?pos", re.IGNORECASE)
_DPI = re.compile(r"(203|300|600)\s*-?\s*dpi", re.IGNORECASE)


@dataclass(frozen=True)
class Found:
    name: str      # the announced instance name, e.g. "Zebra ZD421"
    service: str   # "_pdl-datastream._tcp" or "_printer._tcp"
    host: str      # its mDNS host name, e.g. "zebra-1234.local"
    address: str   # first IPv4 address, "" when none was announced
    port: int      # the announced port (515 for LPD)
    model: str     # TXT "ty", else "product" without its parentheses; "" when neither
    kind: str      # best guess: zpl_tcp, escpos_network or unknown


def guess_kind(*texts: str) -> str:
    """zpl_tcp for Zebra / ZPL names, escpos_network for Epson TM / ESC/POS names, unknown otherwise."""
    text = " ".join(texts)
    if _ZPL.search(text):
        return "zpl_tcp"
    if _ESCPOS.search(text):
        return "escpos_network"
    return "unknown"


def browse(seconds: float = 3.0, *, interfaces=None) -> list[Found]:
    """Listen `seconds` for printers on the LAN (or on `interfaces`, a list of addresses), sorted by name."""
    from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def changed(zeroconf, service_type: str, name: str, state_change) -> None:
        # Runs on zeroconf's thread, which must not block: resolving happens afterwards, here below.
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            with lock:
                seen.add((service_type, name))

    zc = Zeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zc, [f"{s}.local." for s in SERVICES], handlers=[changed])
        threading.Event().wait(seconds)
        browser.cancel()
        with lock:
            names = sorted(seen)
        found = [f for f in (_resolve(zc, service_type, name) for service_type, name in names) if f is not None]
    finally:
        zc.close()
    return sorted(found, key=lambda f: (f.name.lower(), f.service))


def _resolve(zc, service_type: str, name: str) -> Found | None:
    from zeroconf import IPVersion
    info = zc.get_service_info(service_type, name, timeout=RESOLVE_MS)
    if info is None or info.port is None:
        return None
    txt = {key.decode("utf-8", "replace").lower(): (value or b"").decode("utf-8", "replace")
           for key, value in (info.properties or {}).items()}
    model = txt.get("ty") or txt.get("product", "").strip().strip("()")
    instance = name[:-len(service_type) - 1] if name.endswith("." + service_type) else name
    addresses = info.parsed_addresses(IPVersion.V4Only)
    return Found(
        name=instance, service=service_type.removesuffix(".local."),
        host=(info.server or "").rstrip("."), address=addresses[0] if addresses else "", port=info.port,
        model=model, kind=guess_kind(instance, model, txt.get("pdl", ""), txt.get("usb_mfg", ""),
                                     txt.get("usb_mdl", "")),
    )


def slug(name: str) -> str:
    """A printer name the config accepts: "Zebra ZD421 (Lager)" -> "zebra-zd421-lager"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return text[:40].rstrip("-") or "printer"


def _comment(text: str) -> str:
    """Announced text goes into TOML comments: without line breaks it cannot start a line of its own."""
    return "".join(c for c in text if c.isprintable())


def _toml_string(text: str) -> str:
    """A TOML basic string; control characters (which TOML forbids raw) escaped."""
    escaped = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return f'"{escaped}"'


def stanza(found: Found) -> str:
    """A `[[printer]]` block for the config file, with comments on what to check."""
    kind = found.kind if found.kind != "unknown" else "zpl_tcp"
    kind_note = "" if found.kind != "unknown" else (
        "   # a guess: zpl_tcp if it speaks ZPL, escpos_network if ESC/POS")
    dpi_match = _DPI.search(f"{found.name} {found.model}")
    dpi_note = ("   # from its model name" if dpi_match
                else "   # check: 203, 300 or 600, as its configuration label says")
    if found.service == "_printer._tcp":
        port_note = f"   # it announced LPD on {found.port}; raw printing is usually {RAW_PORT}"
        port = RAW_PORT
    else:
        port_note, port = "", found.port
    host = found.address or found.host
    host_note = (f"   # {_comment(found.host)}; give it a fixed address in the DHCP server"
                 if found.address and found.host else "")
    escpos = kind == "escpos_network"
    lines = [
        f"# {_comment(found.name)}" + (f" ({_comment(found.model)})" if found.model else "")
        + f", announced as {found.service}",
        "[[printer]]",
        f"name = {_toml_string(slug(found.name))}",
        f"kind = {_toml_string(kind)}{kind_note}",
        f"host = {_toml_string(host)}{host_note}",
        f"port = {port}{port_note}",
        f"dpi = {int(dpi_match.group(1)) if dpi_match else 203}{dpi_note}",
        f"width_mm = {72.0 if escpos else 50.0}   # check: the {'paper' if escpos else 'label'} width",
        f"height_mm = {60.0 if escpos else 30.0}   # check: "
        + ("the length one label may take on the paper" if escpos else "the label height"),
    ]
    if escpos:
        lines.append('media = "continuous"')
    return "\n".join(lines) + "\n"
