"""Announce the web UI on the LAN with zeroconf (mDNS / DNS-SD), so a phone or laptop finds the box by name.

The UI is announced as an `_http._tcp.local.` service named "Inventory <site name>" (e.g. "Inventory Berlin")
on the port of `[web] bind`, with TXT records site=<site id>, version=<appliance version> and path=/. Only when
`[web] advertise` is true, and only from the agent (one process per box): gunicorn workers would each announce.

Which addresses: a wildcard bind (0.0.0.0, ::) announces every non-loopback IPv4 address of the box and
answers on every interface; a specific address announces that one and answers only on its interface.
Two boxes with the same site name on one LAN: zeroconf probes first and renames the second ("Inventory
Berlin-2"); the name it got is logged. Registering takes a couple of seconds of probing, and the box may boot
before DHCP has given it an address, so a background thread does it and re-checks the addresses every
`recheck_s`: when they change (new lease, cable moved) the service is announced again with the new ones.
Nothing here can stop the agent: a failed announcement is logged and retried at the next check.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Sequence

from appliance import __version__
from appliance.config import Config

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_http._tcp.local."
INSTANCE_PREFIX = "Inventory "
MAX_INSTANCE_BYTES = 63          # RFC 6763 §4.1.1
WILDCARDS = frozenset({"0.0.0.0", "::", "*", ""})
RECHECK_S = 30.0


def instance_name(site_name: str) -> str:
    """"Inventory <site name>", without control characters (RFC 6763 forbids them), cut to 63 UTF-8 bytes."""
    text = INSTANCE_PREFIX + "".join(c for c in site_name if c.isprintable()).strip()
    data = text.encode()[:MAX_INSTANCE_BYTES]
    return data.decode(errors="ignore").rstrip()


def split_bind(bind: str) -> tuple[str, int]:
    """HOST and PORT of a `[web] bind` value (already checked by the config); IPv6 brackets removed."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def is_wildcard(host: str) -> bool:
    return host in WILDCARDS


def local_ipv4_addresses() -> list[str]:
    """The box's non-loopback IPv4 addresses, sorted (ifaddr: the library zeroconf itself lists them with)."""
    import ifaddr
    found = {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4}
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)


def bound_addresses(host: str) -> list[str]:
    """The IPv4 addresses a UI bound to `host` is reachable at."""
    if is_wildcard(host):
        return local_ipv4_addresses()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:   # a host name: what it resolves to here
        try:
            return sorted({info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET)})
        except OSError:
            return []
    return [str(address)] if address.version == 4 else []


def service_info(config: Config, addresses: Sequence[str], *, host_name: str | None = None):
    """The zeroconf ServiceInfo announcing this box's UI at `addresses` (pure: builds, sends nothing)."""
    from zeroconf import ServiceInfo
    _, port = split_bind(config.web.bind)
    host_name = (host_name or socket.gethostname()).split(".")[0] or "appliance"
    return ServiceInfo(
        SERVICE_TYPE,
        f"{instance_name(config.site.name)}.{SERVICE_TYPE}",
        port=port,
        properties={"site": config.site.id, "version": __version__, "path": "/"},
        server=f"{host_name}.local.",
        parsed_addresses=list(addresses),
    )


class Advertiser:
    """`Advertiser(config).start()` announces the UI in a background thread; `.stop()` withdraws it (goodbye
    packets, so phones forget it at once) and closes zeroconf. Does nothing when `[web] advertise` is false.

    `addresses` (a callable returning the IPv4 addresses to announce) defaults to those of `[web] bind`.
    """

    def __init__(self, config: Config, *, addresses: Callable[[], list[str]] | None = None,
                 recheck_s: float = RECHECK_S) -> None:
        self.config = config
        host, _ = split_bind(config.web.bind)
        self._interfaces = None if is_wildcard(host) else bound_addresses(host)
        self._addresses = addresses or (lambda: bound_addresses(host))
        self._recheck_s = recheck_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.name: str | None = None           # the announced service name, once registered
        self.registered = threading.Event()    # set each time an announcement is in place

    @property
    def enabled(self) -> bool:
        return self.config.web.advertise

    def start(self) -> None:
        if not self.enabled:
            logger.info("web UI not announced on the LAN ([web] advertise = false)")
            return
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="zeroconf-advertiser", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("zeroconf announcement did not stop within %.0f s", timeout)
            self._thread = None

    def _run(self) -> None:
        current: list[str] | None = None
        live = None   # (zeroconf, info) while announced
        try:
            while not self._stop.is_set():
                try:
                    addresses = self._addresses()
                    if addresses != current:
                        live = self._withdraw(live)
                        if addresses:
                            live = self._announce(addresses)
                        else:
                            logger.warning("web UI not announced on the LAN yet: no IPv4 address for %s",
                                           self.config.web.bind)
                        current = addresses
                except Exception:   # noqa: BLE001 - a LAN announcement must never stop the agent
                    logger.warning("announcing the web UI with zeroconf failed; retrying in %.0f s",
                                   self._recheck_s, exc_info=True)
                    live = self._withdraw(live)
                    current = None
                self._stop.wait(self._recheck_s)
        finally:
            self._withdraw(live)

    def _announce(self, addresses: list[str]):
        from zeroconf import InterfaceChoice, IPVersion, Zeroconf
        zc = Zeroconf(interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
        info = service_info(self.config, addresses)
        wanted = info.name
        try:
            zc.register_service(info, allow_name_change=True)   # probes the LAN; renames on a conflict
        except BaseException:
            zc.close()
            raise
        self.name = info.name
        _, port = split_bind(self.config.web.bind)
        if info.name != wanted:
            logger.warning("another device on the LAN announces %r; this box's web UI is announced as %r",
                           wanted[:-len(SERVICE_TYPE) - 1], info.name[:-len(SERVICE_TYPE) - 1])
        logger.info("web UI announced on the LAN as %r at %s port %d", info.name[:-len(SERVICE_TYPE) - 1],
                    ", ".join(addresses), port)
        self.registered.set()
        return zc, info

    def _withdraw(self, live) -> None:
        if live is None:
            return None
        zc, info = live
        self.registered.clear()
        try:
            zc.unregister_service(info)
        except Exception:   # noqa: BLE001 - leaving anyway; peers forget the name when its TTL runs out
            logger.debug("zeroconf unregister failed", exc_info=True)
        finally:
            zc.close()
        return None
