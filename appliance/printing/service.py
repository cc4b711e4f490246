"""What the CLI, the web UI, the station and the receiving code call: which printer, what goes on a label, queue it.

Label data is read from the ledger here, at the moment the label is asked for, and stored with the job: a
label printed after a retry shows what was true when it was requested (the price then, the lot received).
The data is checked by the renderer before it is queued, so a label that cannot be printed is refused to the
person asking, not discovered later by the spooler.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from appliance.config import Config, currency_digits
from appliance.config.printers import LABEL_TYPES, PrinterConfig
from appliance.errors import InvalidInput, NotFound, UnknownLocation, UnknownSku, UnknownTransfer
from appliance.printing import queue
from appliance.printing.media import Media
from appliance.printing.render import check_data, preview_png


class NoPrinter(NotFound):
    code = "no_printer"


def printer_named(config: Config, name: str) -> PrinterConfig:
    for printer in config.printers:
        if printer.name == name:
            return printer
    known = ", ".join(p.name for p in config.printers) or "none configured"
    raise NoPrinter(f"there is no printer {name!r} (printers: {known})", printer=name)


def choose_printer(config: Config, label: str, *, name: str | None = None,
                   station: str | None = None) -> PrinterConfig:
    """The printer asked for by name; else the one claiming this label type (one at the station first), else one
    claiming the station, else the default, else the only one."""
    printers = config.printers
    if name:
        return printer_named(config, name)
    if not printers:
        raise NoPrinter("no printer is configured: add a [[printer]] entry to the config (`appliance printers "
                        "discover` lists the printers on the network with the entry to paste)")
    at_station = [p for p in printers if station and station in p.station_list()]
    for candidates in ([p for p in at_station if label in p.label_list()],
                       [p for p in printers if label in p.label_list() and not p.station_list()],
                       at_station,
                       [p for p in printers if p.default],
                       printers if len(printers) == 1 else []):
        if candidates:
            return candidates[0]
    raise NoPrinter(f"no printer takes {label} labels: name one, or give a printer `default = true` or "
                    f"`labels = \"{label}\"`", label=label)


def printer_problems(conn: sqlite3.Connection) -> dict[str, str]:
    """printer name -> what is wrong with it, from the spooler's open `printer_error` alerts (a page or an API
    call must not wait on a printer's network answer; the spooler asks before every job)."""
    found = {}
    for subject, detail in conn.execute("SELECT subject, detail FROM alert WHERE kind = 'printer_error'"
                                        " AND resolved_at IS NULL"):
        found[subject] = json.loads(detail or "{}").get("problem") or "error"
    return found


# --- label data from the ledger ------------------------------------------------------------------------------

def variant_data(conn: sqlite3.Connection, config: Config, sku: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT v.id, v.sku, p.name, v.name, v.sale_price FROM variant v JOIN product p ON p.id = v.product_id"
        " WHERE v.sku = ?", (sku,)).fetchone()
    if row is None:
        raise UnknownSku(sku)
    variant_id, sku, product_name, variant_name, price = row
    return {"sku": sku, "name": product_name, "variant": variant_name or "", "price": price,
            "currency": config.site.currency, "currency_digits": currency_digits(config.site.currency),
            "gtin": _gtin(conn, variant_id)}


def _gtin(conn: sqlite3.Connection, variant_id: int) -> str | None:
    """The variant's own GTIN (not a pack's): what a till scans for one unit."""
    for (code,) in conn.execute("SELECT code FROM barcode WHERE variant_id = ? AND pack_id IS NULL"
                                " AND kind = 'gtin' ORDER BY length(code), code", (variant_id,)):
        if code.isdigit() and len(code) in (8, 12, 13, 14):
            return code
    return None


def location_data(conn: sqlite3.Connection, code: str) -> dict[str, Any]:
    row = conn.execute("SELECT code, name FROM location WHERE code = ?", (code.strip().upper(),)).fetchone()
    if row is None:
        raise UnknownLocation(code)
    return {"code": row[0], "name": row[1] or ""}


def case_data(conn: sqlite3.Connection, sku: str, lot: str, expiry: str | None,
              count: int | None = None) -> dict[str, Any]:
    row = conn.execute("SELECT v.id, p.name, v.name FROM variant v JOIN product p ON p.id = v.product_id"
                       " WHERE v.sku = ?", (sku,)).fetchone()
    if row is None:
        raise UnknownSku(sku)
    gtin = _gtin(conn, row[0])
    if gtin is None:
        raise InvalidInput(f"{sku} has no GTIN barcode: a GS1 case label needs one (add it to the variant)",
                           field="sku")
    name = f"{row[1]} {row[2]}".strip() if row[2] else row[1]
    return {"gtin": gtin.zfill(14), "lot": lot, "expiry": expiry, "name": name, "count": count}


def po_receiving_data(conn: sqlite3.Connection, record) -> dict[str, Any]:
    """A receiving label for one receipt movement booked against a purchase order line (ref_id NUMBER/LINE)."""
    number, _, line = record.ref_id.rpartition("/")
    row = conn.execute(
        "SELECT s.name, p.name, v.name FROM purchase_order po LEFT JOIN supplier s ON s.id = po.supplier_id,"
        " variant v JOIN product p ON p.id = v.product_id WHERE po.number = ? AND v.sku = ?",
        (number, record.sku)).fetchone()
    supplier, product, variant = row if row else ("", record.sku, "")
    name = f"{product} {variant}".strip() if variant else product
    return {"po": number, "line": int(line), "sku": record.sku, "name": name, "qty": record.d_on_hand,
            "supplier": supplier or "", "lot": record.lot or "", "expiry": record.expiry}


def queue_receipt_labels(conn: sqlite3.Connection, config: Config, records, *, now: str,
                         printer: str | None = None, station: str | None = None,
                         user: str | None = None) -> list[queue.Job]:
    """One label per received unit (case) of every receipt in `records`, queued in the receipt's transaction."""
    jobs = []
    for record in records:
        if record.kind != "receive" or record.ref_type != "purchase_order" or record.d_on_hand <= 0:
            continue
        data = po_receiving_data(conn, record)
        left = record.d_on_hand
        while left > 0:   # a job holds at most MAX_COPIES labels
            copies = min(left, queue.MAX_COPIES)
            jobs.append(queue_label(conn, config, "po_receiving", data, now=now, copies=copies, printer=printer,
                                    station=station, user=user, ref_type="movement", ref_id=str(record.id)))
            left -= copies
    return jobs


def transfer_data(conn: sqlite3.Connection, codes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sscc data, transfer document data) for the transfers in `codes`, one pallet between two sites.

    A transfer moves one variant, so a pallet is usually several transfers sent together. The SSCC is built
    from the transfer numbers (extension digit 0, company prefix 0000000 and the first transfer's id): unique
    within the company, for pallets that never leave it; it is not a GS1-registered number."""
    if not codes:
        raise InvalidInput("name at least one transfer", field="transfer")
    rows = []
    for code in codes:
        row = conn.execute(
            "SELECT t.id, t.code, fl.site_id, tl.site_id, v.sku, p.name, v.name, t.qty_sent, t.created_at"
            " FROM transfer t JOIN location fl ON fl.id = t.from_location_id"
            " JOIN location tl ON tl.id = t.to_location_id JOIN variant v ON v.id = t.variant_id"
            " JOIN product p ON p.id = v.product_id WHERE t.code = ?", (code.strip().upper(),)).fetchone()
        if row is None:
            raise UnknownTransfer(code)
        rows.append(row)
    pairs = {(r[2], r[3]) for r in rows}
    if len(pairs) > 1:
        raise InvalidInput("the transfers on one pallet must go between the same two sites; these go "
                           + ", ".join(f"{a}→{b}" for a, b in sorted(pairs)), field="transfer")
    (origin, destination), = pairs
    names = dict(conn.execute("SELECT id, name FROM site WHERE id IN (?, ?)", (origin, destination)).fetchall())
    lines = [{"sku": r[4], "qty": r[7], "name": f"{r[5]} {r[6]}".strip() if r[6] else r[5]} for r in rows]
    first = rows[0]
    serial = f"0{'0' * 7}{first[0]:09d}"[-17:]
    sscc = {"sscc": serial, "from_site": origin, "from_name": names.get(origin) or "", "to_site": destination,
            "to_name": names.get(destination) or "", "transfer": first[1],
            "lines": [{"sku": line["sku"], "qty": line["qty"]} for line in lines],
            "total_qty": sum(line["qty"] for line in lines)}
    document = {"transfer": first[1], "from_site": origin, "to_site": destination, "lines": lines,
                "created": first[8][:10]}
    return sscc, document


# --- queueing -------------------------------------------------------------------------------------------------

def queue_label(conn: sqlite3.Connection, config: Config, label: str, data: dict[str, Any], *, now: str,
                copies: int = 1, printer: str | None = None, station: str | None = None,
                user: str | None = None, ref_type: str | None = None, ref_id: str | None = None) -> queue.Job:
    """Check the label data, pick the printer and queue the job on `conn` (an open write transaction)."""
    if label not in LABEL_TYPES:
        raise InvalidInput(f"unknown label type {label!r}; one of {', '.join(LABEL_TYPES)}", field="label")
    target = choose_printer(config, label, name=printer, station=station)
    checked = check_data(label, data)
    job_id = queue.enqueue(conn, target.name, label, checked, now=now, copies=copies, user=user, station=station,
                           ref_type=ref_type, ref_id=ref_id)
    return queue.require(conn, job_id)


def preview(config: Config, label: str, data: dict[str, Any], *, printer: str | None = None,
            station: str | None = None) -> tuple[bytes, PrinterConfig]:
    """The PNG the chosen printer's label will look like, and that printer."""
    target = choose_printer(config, label, name=printer, station=station)
    return preview_png(label, check_data(label, data), Media.from_printer(target)), target
