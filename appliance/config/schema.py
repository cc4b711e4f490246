"""The configuration schema: one frozen dataclass per TOML section, one field per key.

Each field carries its one-line description in `metadata["doc"]` and, where a type check is not enough, a
`metadata["check"]` function that returns the normalised value or raises ValueError with the reason. The
loader, `check-config` and the README reference are all generated from these declarations, so a new key is
added here and nowhere else. Code reads attributes (`config.database.path`), never string paths.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Check = Callable[[Any], Any]


def setting(doc: str, default: Any = dataclasses.MISSING, *, check: Check | None = None,
            default_doc: str | None = None) -> Any:
    """A key read from the TOML file. No `default` makes it required; `default_doc` describes a computed one."""
    metadata: dict[str, Any] = {"doc": doc}
    if check is not None:
        metadata["check"] = check
    if default_doc is not None:
        metadata["default_doc"] = default_doc
    return field(default=default, metadata=metadata)


def secret(doc: str, *, credential: str, env: str) -> Any:
    """A key that is never read from the TOML: from `$CREDENTIALS_DIRECTORY/<credential>`, else `$<env>`."""
    return field(default=None, metadata={"doc": doc, "secret": True, "credential": credential, "env": env})


# Checks: value in (already of the declared type), normalised value out, ValueError("reason") otherwise.

def pattern(regex: str, reason: str) -> Check:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        # fullmatch: `$` would let a trailing newline through.
        if not compiled.fullmatch(value):
            raise ValueError(reason)
        return value
    return check


def one_of(*choices: str) -> Check:
    def check(value: str) -> str:
        if value.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value.upper()
    return check


def in_range(low: int, high: int) -> Check:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value
    return check


def time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("must be an IANA time zone name, e.g. Europe/Berlin") from None
    return value


SITE_ID_REASON = "must be 2-8 upper-case letters/digits starting with a letter, e.g. BER"


@dataclass(frozen=True)
class SiteConfig:
    id: str = setting("this box's site id, e.g. BER; stamped on every ledger row and sync message",
                      check=pattern(r"[A-Z][A-Z0-9]{1,7}", SITE_ID_REASON))
    name: str = setting("human name of the site, e.g. Berlin", "", default_doc="the id")
    currency: str = setting("ISO 4217 currency of prices and stock values", "EUR",
                            check=pattern(r"[A-Z]{3}", "must be an ISO 4217 code of three upper-case letters, "
                                          "e.g. EUR"))
    timezone: str = setting("IANA time zone for reports and dates typed without an offset", "Europe/Berlin",
                            check=time_zone)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = setting("SQLite ledger file; a relative path is relative to this config file")
    synchronous: str = setting("SQLite synchronous pragma: OFF, NORMAL, FULL or EXTRA (FULL survives power loss)",
                               "FULL", check=one_of("OFF", "NORMAL", "FULL", "EXTRA"))
    busy_timeout_ms: int = setting("how long a writer waits for a lock held by another process, in ms", 15000,
                                   check=in_range(100, 600_000))


@dataclass(frozen=True)
class LogConfig:
    level: str = setting("log level: DEBUG, INFO, WARNING or ERROR", "INFO",
                         check=one_of("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class MqttConfig:
    host: str = setting("MQTT broker host name or address")
    port: int = setting("broker port (8883 is MQTT over TLS, 1883 plain)", 8883, check=in_range(1, 65535))
    tls: bool = setting("connect with TLS; turn off only for a broker on this box or a test", True)
    ca_file: Path = setting("CA certificate that signed the broker's certificate", None,
                            default_doc="the system's CA store")
    client_cert: Path = setting("client certificate (CN = site id) when the broker requires one", None,
                                default_doc="none")
    client_key: Path = setting("private key of client_cert", None, default_doc="none")
    username: str = setting("broker user name; the broker ACL expects the site id", "", default_doc="the site id")
    password: str | None = secret("broker password", credential="mqtt-password", env="APPLIANCE_MQTT_PASSWORD")
    keepalive_s: int = setting("MQTT keepalive: how soon a dead link is noticed, in seconds", 30,
                               check=in_range(5, 3600))
    session_expiry_s: int = setting("how long the broker keeps this box's session while it is away, in seconds",
                                    7 * 24 * 3600, check=in_range(60, 2**32 - 1))
    batch_size: int = setting("movements per published batch", 200, check=in_range(1, 1000))
    gap_grace_s: float = setting("how long a gap may last before this box asks a peer to fill it, in seconds",
                                 2.0, check=in_range(0, 600))
    recovery_wait_s: float = setting("at start, how long to wait for the peers' high-water marks before "
                                     "accepting writes when none have arrived, in seconds", 10.0,
                                     check=in_range(0, 3600))
    head_interval_s: float = setting("how often the head and high-water marks are re-announced, in seconds", 30.0,
                                     check=in_range(1, 3600))
    rpc_timeout_s: float = setting("how long a reserve/release request to another site waits for its answer "
                                   "before the result is UNKNOWN, in seconds", 5.0, check=in_range(0.1, 600))


@dataclass(frozen=True)
class Config:
    """The whole configuration. Fields typed as a dataclass are TOML sections, in this order."""

    site: SiteConfig = field(metadata={"doc": "this box's site"})
    database: DatabaseConfig = field(metadata={"doc": "the SQLite ledger"})
    log: LogConfig = field(default_factory=LogConfig, metadata={"doc": "logging (to stdout, for journald)"})
    mqtt: MqttConfig | None = field(default=None, metadata={
        "doc": "the MQTT broker that carries multi-site sync; without this section sync is off"})
    # Not compared: the same settings read from another file are the same configuration.
    source: Path | None = field(default=None, compare=False)


# ISO 4217 minor units that differ from the usual 2 (HUF, for one, is 2).
_CURRENCY_DIGITS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                     "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


def currency_digits(code: str) -> int:
    """Digits after the decimal point in amounts of currency `code` (JPY 0, EUR 2, KWD 3)."""
    return _CURRENCY_DIGITS.get(code.upper(), 2)


def sections(schema: type = Config) -> list[tuple[dataclasses.Field, type]]:
    """The TOML sections of `schema`: its fields whose type is a dataclass (or `dataclass | None`: a section
    that may be absent), with that dataclass."""
    hints = typing.get_type_hints(schema)
    found = []
    for f in dataclasses.fields(schema):
        cls = section_class(hints[f.name])
        if cls is not None:
            found.append((f, cls))
    return found


def section_class(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) == 1 and type(None) in typing.get_args(hint) and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def is_optional_section(f: dataclasses.Field) -> bool:
    return f.default is None


def keys(section: type) -> list[tuple[dataclasses.Field, type]]:
    """The keys of a section class, with their declared types."""
    hints = typing.get_type_hints(section)
    return [(f, hints[f.name]) for f in dataclasses.fields(section)]


def is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
