"""`[[printer]]`: one label printer per entry, its connection and its media profile (issue 7).

The kind says the printer's language and how bytes reach it: `zpl_tcp` (a Zebra-style printer's raw port 9100),
`zpl_device` (a USB `/dev/usb/lp0` or serial device file), the `escpos_*` kinds through python-escpos, and
`capture`, which writes each job's bytes to a file in a folder (demos, tests, a printer still on order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.config.schema import choice, in_range, pattern, setting

ZPL_KINDS = ("zpl_tcp", "zpl_device")
ESCPOS_KINDS = ("escpos_network", "escpos_usb", "escpos_serial", "escpos_file")
PRINTER_KINDS = ZPL_KINDS + ESCPOS_KINDS + ("capture",)
LABEL_TYPES = ("variant", "case", "location", "sscc", "po_receiving", "transfer_document")
NETWORK_KINDS = ("zpl_tcp", "escpos_network")


def _names(allowed: tuple[str, ...] | None, what: str):
    """A comma-separated list, each item checked against `allowed` (None: a station-name pattern)."""
    station = pattern(r"[a-z0-9][a-z0-9-]{0,31}", "")

    def check(value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if allowed is not None and item not in allowed:
                raise ValueError(f"{item!r} is not a {what}; one of {', '.join(allowed)}")
            if allowed is None:
                try:
                    station(item)
                except ValueError:
                    raise ValueError(f"{item!r} is not a station name (lower-case letters, digits and -, "
                                     "e.g. dock-1)") from None
        return ",".join(items)
    return check


def _usb_id(value: str) -> str:
    checked = pattern(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", "must be vendor:product in hex as lsusb prints it, e.g. "
                      "04b8:0202")(value)
    return checked.lower()


@dataclass(frozen=True)
class PrinterConfig:
    name: str = setting("the printer's name in the queue, the CLI and alerts, e.g. dock-zebra", unique=True,
                        check=pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}",
                                      "must be 1-40 letters, digits, '.', '_' or '-', starting with a letter or "
                                      "digit"))
    kind: str = setting("zpl_tcp (raw TCP, port 9100), zpl_device (USB /dev/usb/lp0 or a serial device file), "
                        "escpos_network, escpos_usb, escpos_serial, escpos_file (python-escpos), or capture (each "
                        "job's bytes written to a file in `path`)", check=choice(*PRINTER_KINDS))
    host: str = setting("the printer's host name or address", "", kinds=NETWORK_KINDS, required_for=NETWORK_KINDS,
                        check=pattern(r"[A-Za-z0-9.:_-]{1,253}", "must be a host name or IP address"),
                        default_doc="none")
    port: int = setting("the printer's raw TCP port", 9100, kinds=NETWORK_KINDS, check=in_range(1, 65535))
    device: Path = setting("the device file: /dev/usb/lp0, /dev/label-printer-1 (udev), /dev/ttyUSB0", None,
                           kinds=("zpl_device", "escpos_serial", "escpos_file"),
                           required_for=("zpl_device", "escpos_serial", "escpos_file"), default_doc="none")
    baud: int = setting("baud rate of a serial ESC/POS printer", 9600, kinds=("escpos_serial",),
                        check=in_range(1200, 921600))
    usb: str = setting("vendor:product of a USB ESC/POS printer in hex (lsusb), e.g. 04b8:0202", "",
                       kinds=("escpos_usb",), required_for=("escpos_usb",), check=_usb_id, default_doc="none")
    path: Path = setting("folder the capture printer writes job files to; relative to this config file", None,
                         kinds=("capture",), required_for=("capture",), default_doc="none")
    speaks: str = setting("the language a capture printer records: zpl or escpos", "zpl", kinds=("capture",),
                          check=choice("zpl", "escpos"))
    dpi: int = setting("print resolution: 203, 300 or 600 dots per inch", 203,
                       check=lambda v: _one_of_ints(v, (203, 300, 600)))
    width_mm: float = setting("label (or paper) width in mm", 50.0, check=in_range(10, 120))
    height_mm: float = setting("label height in mm (for ESC/POS paper: the length a label may take)", 30.0,
                               check=in_range(10, 400))
    media: str = setting("gap (labels with gaps), mark (black mark) or continuous", "gap",
                         check=choice("gap", "mark", "continuous"))
    darkness: int = setting("print darkness 0-30 (ZPL ~SD); -1 keeps the printer's own setting", -1,
                            check=in_range(-1, 30))
    speed: int = setting("print speed in inches per second (ZPL ^PR, 2-14); 0 keeps the printer's own", 0,
                         check=lambda v: v if v == 0 or 2 <= v <= 14 else _bad("must be 0 or 2-14"))
    offset_x_mm: float = setting("moves everything right by this much (negative: left), in mm", 0.0,
                                 check=in_range(-20, 20))
    offset_y_mm: float = setting("moves everything down by this much (negative: up), in mm", 0.0,
                                 check=in_range(-20, 20))
    codepage: str = setting("ESC/POS code page for text; CP852 has every German and Polish letter", "CP852",
                            kinds=ESCPOS_KINDS + ("capture",), check=pattern(r"[A-Z0-9_]{2,20}",
                                                                                 "must be a code page name, e.g. CP852"))
    stations: str = setting("stations (comma-separated) whose labels go here by default, e.g. dock-1", "",
                            check=_names(None, "station"), default_doc="none")
    labels: str = setting("label types (comma-separated) that go here by default: " + ", ".join(LABEL_TYPES), "",
                          check=_names(LABEL_TYPES, "label type"), default_doc="none")
    default: bool = setting("the printer for everything no other printer claims", False)
    status: bool = setting("ask a zpl_tcp printer for its status (~HS) before each job, and hold jobs while it "
                           "reports paper out, head open or pause", True, kinds=("zpl_tcp",))
    timeout_s: float = setting("how long connecting to or sending to the printer may take, in seconds", 10.0,
                               check=in_range(0.5, 120))

    @property
    def language(self) -> str:
        """zpl or escpos: what the printer is sent."""
        if self.kind in ZPL_KINDS:
            return "zpl"
        if self.kind in ESCPOS_KINDS:
            return "escpos"
        return self.speaks

    def station_list(self) -> tuple[str, ...]:
        return tuple(s for s in self.stations.split(",") if s)

    def label_list(self) -> tuple[str, ...]:
        return tuple(s for s in self.labels.split(",") if s)


def _bad(reason: str):
    raise ValueError(reason)


def _one_of_ints(value: int, allowed: tuple[int, ...]) -> int:
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
    return value


PRINTER_EXAMPLES = (
    {"name": "dock-zebra", "kind": "zpl_tcp", "host": "192.168.1.50", "dpi": 203, "width_mm": 50.0,
     "height_mm": 30.0, "stations": "dock-1", "default": True},
    {"name": "office-epson", "kind": "escpos_network", "host": "192.168.1.51", "width_mm": 72.0,
     "height_mm": 60.0, "media": "continuous", "labels": "transfer_document"},
    {"name": "demo", "kind": "capture", "path": "printed"},
)
