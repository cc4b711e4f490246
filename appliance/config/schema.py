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

# Pure (no evdev): the layout names come from the decoder so the documented list cannot drift from it.
from appliance.scanning.hid_decoder import layouts

Check = Callable[[Any], Any]


def setting(doc: str, default: Any = dataclasses.MISSING, *, check: Check | dict[str, Check] | None = None,
            default_doc: str | None = None, kinds: tuple[str, ...] | None = None,
            required_for: tuple[str, ...] = (), unique: bool = False) -> Any:
    """A key read from the TOML file. No `default` makes it required; `default_doc` describes a computed one.

    For a section with a `kind` key (a device chosen by kind): `kinds` are the kinds the key belongs to (given
    for another kind it is an error), `required_for` the kinds that must give it, and `check` may be a dict
    kind -> check when one key means different things per kind. `unique`: in an array of tables, no two entries
    may give the same value (two scanners reading one port would split its scans between them).
    """
    metadata: dict[str, Any] = {"doc": doc}
    if check is not None:
        metadata["check"] = check
    if default_doc is not None:
        metadata["default_doc"] = default_doc
    if kinds is not None:
        metadata["kinds"] = kinds
    if required_for:
        metadata["required_for"] = required_for
    if unique:
        metadata["unique"] = True
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


def choice(*choices: str) -> Check:
    """Like one_of, for values written in lower case (kinds, layouts)."""
    def check(value: str) -> str:
        if value.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value.lower()
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
class ScanningConfig:
    idle_timeout_s: float = setting("a station with unfinished work (a receipt, a move) that sees no scan for this "
                                    "long goes back to lookup, in seconds", 300.0, check=in_range(10, 86400))


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:8080 (every address) or 127.0.0.1:8080 (this box only)")
    return value


@dataclass(frozen=True)
class WebConfig:
    bind: str = setting("address and port the web UI listens on (HOST:PORT)", "0.0.0.0:8080", check=_bind)
    workers: int = setting("gunicorn worker processes; each serves `threads` requests at once", 2,
                           check=in_range(1, 16))
    threads: int = setting("threads per worker; every open page holds one for its live updates", 32,
                           check=in_range(2, 256))
    timeout_s: int = setting("a worker silent for this long is restarted, in seconds", 60, check=in_range(10, 3600))
    secret_key: str | None = secret("key that signs session cookies (at least 32 characters); without it a "
                                    "random one is kept in web-secret.key beside the database",
                                    credential="web-secret-key", env="APPLIANCE_WEB_SECRET_KEY")
    secure_cookies: bool = setting("send cookies only over HTTPS; turn on when a TLS proxy fronts the UI", False)
    session_hours: float = setting("a login lasts this long without use, in hours", 12.0,
                                   check=in_range(0.1, 24 * 90))
    login_max_failures: int = setting("wrong passwords in a row before the account is locked", 5,
                                      check=in_range(1, 100))
    login_lockout_s: int = setting("how long a locked account (or a device that guessed too often) waits, in "
                                   "seconds", 900, check=in_range(10, 86400))
    advertise: bool = setting("announce the UI on the LAN with zeroconf (mDNS), so phones find it", True)
    language: str = setting("language of the UI when the browser asks for none we have: en, de or pl", "en",
                            check=choice("en", "de", "pl"))


def _email(value: str) -> str:
    if value and not re.fullmatch(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+", value):
        raise ValueError("must be an email address, e.g. stock@example.com")
    return value


def _emails(value: str) -> str:
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    for address in addresses:
        _email(address)
    return ", ".join(addresses)


def _roles(value: str) -> str:
    roles = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [role for role in roles if role not in ("manager", "staff", "purchasing", "viewer")]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}: roles are manager, staff, purchasing, viewer")
    return ", ".join(roles)


def _clock_time(value: str) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ValueError("must be a time of day HH:MM (24 hours, the site's time zone), e.g. 02:30")
    return value


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _credential_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", value) or value in (".", ".."):
        raise ValueError("must be a credential file name (letters, digits, '.', '_', '-')")
    return value


SEVERITY = choice("info", "warning", "critical")


def _above_zero(high: float) -> Check:
    # in_range would let 0 through: a grace of nothing raises an alert for every gun still being opened at start.
    def check(value: float) -> float:
        if not 0 < value <= high:
            raise ValueError(f"must be more than 0 and at most {high:g}")
        return value
    return check


@dataclass(frozen=True)
class SmtpConfig:
    host: str = setting("SMTP server that sends alert emails and purchase orders")
    sender: str = setting("From: address of every email the box sends", check=_email)
    port: int = setting("SMTP port: 587 with starttls, 465 with ssl, 25 without", 587, check=in_range(1, 65535))
    security: str = setting("starttls, ssl or none (none only for a relay on this box or the LAN)", "starttls",
                            check=choice("starttls", "ssl", "none"))
    username: str = setting("login name; empty sends without logging in", "")
    password: str | None = secret("SMTP password", credential="smtp-password", env="APPLIANCE_SMTP_PASSWORD")
    timeout_s: float = setting("give up on a silent SMTP server after this long, in seconds", 20.0,
                               check=in_range(1, 300))


@dataclass(frozen=True)
class AlertsConfig:
    email_to: str = setting("addresses (comma-separated) that get every alert email", "", check=_emails,
                            default_doc="none")
    email_roles: str = setting("roles (comma-separated) whose users with an email address get alert emails",
                               "manager", check=_roles)
    email_severity: str = setting("lowest severity that is emailed: info, warning or critical", "warning",
                                  check=SEVERITY)
    digest: bool = setting("send one email a day listing the open alerts, instead of one email per alert",
                           False)
    digest_at: str = setting("when the daily digest goes out (HH:MM, the site's time zone)", "07:00",
                             check=_clock_time)
    expiry_days: int = setting("lots expiring within this many days raise an 'expiring lot' alert", 14,
                               check=in_range(0, 3650))
    count_variance: int = setting("a count that changes a line's stock by more than this many units raises an "
                                  "alert", 10, check=in_range(0, 10**9))
    peer_offline_minutes: int = setting("a sync peer silent for this long raises an alert, in minutes", 30,
                                        check=in_range(1, 60 * 24 * 30))
    scanner_gone_s: float = setting("a configured hid or serial scanner not connected for this long (unplugged, or "
                                    "missing since the agent started) raises a 'scanner gone' alert, in seconds", 30.0,
                                    check=_above_zero(86400))
    retry_base_s: float = setting("first retry of a failed email or webhook after this long; doubled each time, "
                                  "in seconds", 30.0, check=in_range(1, 3600))
    retry_max_s: float = setting("longest wait between two delivery attempts, in seconds", 3600.0,
                                 check=in_range(1, 86400))
    give_up_hours: float = setting("a delivery still failing after this long is marked failed, in hours", 48.0,
                                   check=in_range(0.01, 24 * 30))


@dataclass(frozen=True)
class WebhookConfig:
    name: str = setting("name of this webhook in logs and the delivery log", unique=True,
                        check=pattern(r"[A-Za-z0-9_-]{1,40}", "must be 1-40 letters, digits, '_' or '-'"))
    url: str = setting("where alerts are POSTed as JSON", check=_url)
    secret_credential: str = setting("credential (file in $CREDENTIALS_DIRECTORY, else $APPLIANCE_WEBHOOK_<NAME>) "
                                     "holding the key of the X-Appliance-Signature HMAC-SHA256 header", "",
                                     check=lambda v: _credential_name(v) if v else v, default_doc="unsigned")
    severity: str = setting("lowest severity sent to this webhook", "warning", check=SEVERITY)
    timeout_s: float = setting("how long one POST may take, in seconds", 10.0, check=in_range(0.5, 120))


@dataclass(frozen=True)
class PurchasingConfig:
    auto_draft: bool = setting("the reorder trigger drafts purchase orders (off: it only raises alerts)", True)
    receive_location: str = setting("where goods ordered by a site rule arrive (a location code of this site)",
                                    "", default_doc="the site's first dock, else its first location")
    sweep_minutes: int = setting("how often every rule is checked again besides after each movement, in minutes",
                                 15, check=in_range(1, 24 * 60))
    po_prefix: str = setting("purchase order numbers are <site>-<prefix>-0001", "PO",
                             check=pattern(r"[A-Z]{1,6}", "must be 1-6 upper-case letters"))


@dataclass(frozen=True)
class JobsConfig:
    backup_dir: Path = setting("where nightly backups of the database go; relative to this config file", None,
                               default_doc="backups/ beside the database")
    backup_at: str = setting("when the nightly backup runs (HH:MM, the site's time zone)", "02:30",
                             check=_clock_time)
    backup_keep_days: int = setting("backups older than this many days are deleted", 14, check=in_range(1, 3650))
    check_at: str = setting("when the nightly check of stock against movements runs (HH:MM)", "03:00",
                            check=_clock_time)
    expiry_check_at: str = setting("when lots are checked for coming expiry dates (HH:MM)", "06:00",
                                   check=_clock_time)
    misfire_grace_s: int = setting("a job that could not start on time still runs within this long; later it is "
                                   "recorded as missed, in seconds", 3600, check=in_range(1, 86400))


# Scanner checks import the reader modules lazily: loading the config must not need pyserial.

def _hid_device(value: str) -> str:
    from appliance.scanning.hid_reader import check_spec
    return check_spec(value)


def _layout(value: str) -> str:
    from appliance.scanning.keymaps import get_layout
    return get_layout(value).name


def _hid_terminator(value: str) -> str:
    from appliance.scanning.hid_decoder import HidDecoder
    HidDecoder("us", terminators=(value,))   # raises ValueError naming the supported keys
    return value.strip().lower() if value.strip().lower() in ("enter", "tab") else value.strip().upper()


def _serial_terminator(value: str) -> str:
    from appliance.scanning.serial_reader import terminator_bytes
    terminator_bytes(value)
    return value.upper()


def _hex_bytes(value: str) -> str:
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise ValueError("must be bytes in hex, e.g. \"07\" or \"1B 42\"; empty for none") from None
    return data.hex(" ").upper()


def _latin1(value: str) -> str:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("must be bytes 0x00-0xFF, written as characters (\\u0002 for STX)") from None
    return value


SCANNER_KINDS = ("hid", "serial", "replay")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


def _baud(value: int) -> int:
    if value not in BAUD_RATES:
        raise ValueError(f"must be one of {', '.join(map(str, BAUD_RATES))}")
    return value


@dataclass(frozen=True)
class ScannerConfig:
    """One barcode gun, a `[[scanner]]` entry. One flat table for every kind; a key of another kind is an error."""

    kind: str = setting("hid (a USB gun that types, read through evdev), serial (a serial or USB-serial gun) or "
                        "replay (scans from a file or a local socket: demos and tests)",
                        check=choice(*SCANNER_KINDS))
    station: str = setting("the station this gun belongs to, e.g. dock-1; its scans share that station's session",
                           check=pattern(r"[a-z0-9][a-z0-9-]{0,31}", "must be 1-32 lower-case letters, digits "
                                         "and -, starting with a letter or digit, e.g. dock-1"))
    device: str = setting("which input device: a /dev/input/by-id/... path, vendor:product in hex as lsusb "
                          "prints it (0c2e:0b61), or a name pattern (*Honeywell*)", "", check=_hid_device,
                          kinds=("hid",), required_for=("hid",), unique=True, default_doc="none")
    layout: str = setting("the keyboard layout the gun emulates: " + ", ".join(layouts()),
                          "us", check=_layout, kinds=("hid",))
    terminator: str = setting("what ends a scan: hid enter, tab or a key name (KEY_F12); serial CR, LF, CRLF, "
                              "TAB, ETX or one byte 0xNN", "", kinds=("hid", "serial"),
                              check={"hid": _hid_terminator, "serial": _serial_terminator},
                              default_doc="enter (hid), CR (serial)")
    timeout_ms: int = setting("keys further apart than this are not one scan: the half read so far is discarded, "
                              "in ms", 500, check=in_range(20, 10_000), kinds=("hid",))
    port: str = setting("serial port; prefer the stable /dev/serial/by-id/... name", "", kinds=("serial",),
                        required_for=("serial",), unique=True,
                        check=pattern(r"\S.*", "must name a port, e.g. /dev/ttyUSB0"), default_doc="none")
    baud: int = setting("baud rate", 9600, check=_baud, kinds=("serial",))
    parity: str = setting("parity: N, E, O, M or S", "N", check=one_of("N", "E", "O", "M", "S"), kinds=("serial",))
    strip_prefix: str = setting("removed from the start of each scan when present (STX, a code-ID letter)", "",
                                check=_latin1, kinds=("serial",))
    strip_suffix: str = setting("removed from the end of each scan when present (ETX)", "", check=_latin1,
                                kinds=("serial",))
    path: Path = setting("a file of scans, one per line (<GS> for the separator), replayed once at start; "
                         "with socket = true a unix socket to create, one scan per line written to it",
                         None, kinds=("replay",), required_for=("replay",), unique=True, default_doc="none")
    socket: bool = setting("path is a unix socket to listen on rather than a file", False, kinds=("replay",))
    gs: str = setting("what this gun sends instead of the GS separator (0x1D) in GS1 codes, e.g. ~ or <GS>; empty "
                      "when it sends 0x1D itself", "<GS>")
    ok_reply: str = setting("bytes in hex written to the gun after a scan whose feedback is ok (many guns beep or "
                            "light an LED on a host command); empty for nothing", "", check=_hex_bytes,
                            kinds=("serial",))
    warning_reply: str = setting("bytes in hex written to the gun after a scan whose feedback is a warning", "",
                                 check=_hex_bytes, kinds=("serial",))
    error_reply: str = setting("bytes in hex written to the gun after a scan whose feedback is an error", "",
                               check=_hex_bytes, kinds=("serial",))

    def __post_init__(self) -> None:
        if not self.terminator and self.kind in ("hid", "serial"):
            object.__setattr__(self, "terminator", "enter" if self.kind == "hid" else "CR")

    @property
    def gs_substitutes(self) -> tuple[str, ...]:
        return (self.gs,) if self.gs else ()

    def reply(self, level: str) -> bytes:
        """The bytes to send back for a feedback `level` (ok, warning, error); b"" for none."""
        return bytes.fromhex(getattr(self, f"{level}_reply", "") or "")


# Example entries `appliance init` writes commented out, one per kind (tests load them).
SCANNER_EXAMPLES = (
    {"kind": "hid", "station": "dock-1", "device": "/dev/input/by-id/usb-Honeywell_Imaging_1900-event-kbd",
     "layout": "de"},
    {"kind": "serial", "station": "packing", "port": "/dev/serial/by-id/usb-Datalogic_Gryphon-if00-port0",
     "baud": 9600, "ok_reply": "07"},
    {"kind": "replay", "station": "demo", "path": "scan.sock", "socket": True},
)


# After the helpers above, which it uses: the printer section lives in its own module.
from appliance.config.printers import PRINTER_EXAMPLES, PrinterConfig  # noqa: E402


@dataclass(frozen=True)
class Config:
    """The whole configuration. Fields typed as a dataclass are TOML sections, in this order; fields typed as a
    tuple of a dataclass are arrays of tables (`[[scanner]]`), named by `metadata["toml"]`."""

    site: SiteConfig = field(metadata={"doc": "this box's site"})
    database: DatabaseConfig = field(metadata={"doc": "the SQLite ledger"})
    log: LogConfig = field(default_factory=LogConfig, metadata={"doc": "logging (to stdout, for journald)"})
    mqtt: MqttConfig | None = field(default=None, metadata={
        "doc": "the MQTT broker that carries multi-site sync; without this section sync is off"})
    web: WebConfig = field(default_factory=WebConfig, metadata={"doc": "the LAN web UI and JSON API"})
    scanning: ScanningConfig = field(default_factory=ScanningConfig, metadata={
        "doc": "what all scanners share"})
    smtp: SmtpConfig | None = field(default=None, metadata={
        "doc": "the mail server for alert emails and purchase orders; without this section no email is sent"})
    alerts: AlertsConfig = field(default_factory=AlertsConfig, metadata={"doc": "who is told about alerts"})
    purchasing: PurchasingConfig = field(default_factory=PurchasingConfig, metadata={
        "doc": "reorder trigger and purchase orders"})
    jobs: JobsConfig = field(default_factory=JobsConfig, metadata={"doc": "the agent's scheduled jobs"})
    webhooks: tuple[WebhookConfig, ...] = field(default=(), metadata={
        "doc": "chat or ticket tools that receive alerts: one [[webhook]] entry each", "toml": "webhook",
        "examples": ({"name": "chat", "url": "https://chat.example.com/hooks/stock",
                      "secret_credential": "webhook-chat"},)})
    scanners: tuple[ScannerConfig, ...] = field(default=(), metadata={
        "doc": "barcode guns: one [[scanner]] entry per gun; none by default", "toml": "scanner",
        "examples": SCANNER_EXAMPLES})
    printers: tuple[PrinterConfig, ...] = field(default=(), metadata={
        "doc": "label printers: one [[printer]] entry per printer; none by default", "toml": "printer",
        "examples": PRINTER_EXAMPLES})
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


def arrays(schema: type = Config) -> list[tuple[dataclasses.Field, type]]:
    """The arrays of tables of `schema`: its fields typed `tuple[SomeDataclass, ...]`, with that dataclass."""
    hints = typing.get_type_hints(schema)
    found = []
    for f in dataclasses.fields(schema):
        hint = hints[f.name]
        args = typing.get_args(hint)
        if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis \
                and dataclasses.is_dataclass(args[0]):
            found.append((f, args[0]))
    return found


def toml_name(f: dataclasses.Field) -> str:
    """The name a section or array is written with in the file (`[[scanner]]` fills `Config.scanners`)."""
    return f.metadata.get("toml", f.name)


def applies(f: dataclasses.Field, kind: str | None) -> bool:
    """Whether key `f` belongs to an entry of `kind` (keys without `kinds` belong to every kind)."""
    kinds = f.metadata.get("kinds")
    return kinds is None or kind is None or kind in kinds


def is_optional_section(f: dataclasses.Field) -> bool:
    return f.default is None


def keys(section: type) -> list[tuple[dataclasses.Field, type]]:
    """The keys of a section class, with their declared types."""
    hints = typing.get_type_hints(section)
    return [(f, hints[f.name]) for f in dataclasses.fields(section)]


def is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
