"""A purchase order as data (`load`) and as the PDF the supplier receives (`render_pdf`, fpdf2's core fonts)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from appliance.catalog.money import format_amount
from appliance.config.schema import currency_digits
from appliance.purchasing.orders import find


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    name: str
    qty_ordered: int
    unit_cost: int | None
    qty_received: int
    qty_cancelled: int


@dataclass(frozen=True)
class Order:
    number: str
    status: str
    site: str
    site_name: str
    supplier: str
    supplier_email: str | None
    supplier_address: str
    ship_to: str
    created_at: str
    sent_at: str | None
    expected_on: str | None
    note: str
    lines: list[Line]
    events: list[tuple[str, str, str | None, str]]    # ts, kind, user, detail JSON

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("lines", "events")}
        out["lines"] = [line.__dict__ for line in self.lines]
        out["events"] = [{"ts": ts, "kind": kind, "user": user, "detail": detail}
                         for ts, kind, user, detail in self.events]
        return out


def load(conn: sqlite3.Connection, number: str) -> Order:
    po_id = find(conn, number)[0]
    (status, site, site_name, supplier, email, address, ship_to, created, sent, expected, note) = conn.execute(
        "SELECT po.status, po.site_id, s.name, sup.name, sup.email, sup.address, l.code, po.created_at, po.sent_at,"
        " po.expected_on, po.note FROM purchase_order po JOIN site s ON s.id = po.site_id"
        " JOIN supplier sup ON sup.id = po.supplier_id JOIN location l ON l.id = po.ship_to_id WHERE po.id = ?",
        (po_id,)).fetchone()
    lines = [Line(*row) for row in conn.execute(
        "SELECT l.line_no, v.sku, trim(p.name || ' ' || v.name), l.qty_ordered, l.unit_cost, l.qty_received,"
        " l.qty_cancelled FROM purchase_order_line l JOIN variant v ON v.id = l.variant_id"
        " JOIN product p ON p.id = v.product_id WHERE l.po_id = ? ORDER BY l.line_no", (po_id,))]
    events = [tuple(row) for row in conn.execute(
        "SELECT ts, kind, user, detail FROM purchase_order_event WHERE po_id = ? ORDER BY id", (po_id,))]
    return Order(number, status, site, site_name, supplier, email, address or "", ship_to, created, sent, expected,
                 note, lines, events)


CODE39 = re.compile(r"[0-9A-Z .$/+%-]+")
BAR_MM = 0.3   # narrow bar: 0.3 mm prints cleanly on any office printer and reads from a hand-held gun


def render_pdf(order: Order, currency: str) -> bytes:
    from fpdf import FPDF   # only when a PDF is made: the agent and the web app start without it

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    if CODE39.fullmatch(order.number):
        # The dock scans this to receive against the order (Code 39: every gun reads it, no check digit needed).
        width = (len(order.number) + 2) * 16 * BAR_MM
        pdf.code39(f"*{order.number}*", x=pdf.w - pdf.r_margin - width, y=pdf.t_margin, w=3 * BAR_MM, h=12)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Purchase order {order.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in (("From", f"{order.site_name} ({order.site})"), ("To", order.supplier),
                         ("Address", order.supplier_address), ("Deliver to", order.ship_to),
                         ("Date", (order.sent_at or order.created_at)[:10]),
                         ("Expected", order.expected_on or "")):
        if value:
            pdf.cell(30, 6, _latin1(label))
            pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (12, 45, 75, 20, 28)
    pdf.set_font("Helvetica", "B", 10)
    for width, title in zip(widths, ("#", "SKU", "Item", "Qty", "Unit cost")):
        pdf.cell(width, 7, title, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    total = 0
    for line in order.lines:
        cost = format_money(line.unit_cost, currency) if line.unit_cost is not None else ""
        total += (line.unit_cost or 0) * line.qty_ordered
        for width, value in zip(widths, (str(line.line_no), line.sku, line.name, str(line.qty_ordered), cost)):
            pdf.cell(width, 6, _latin1(value[:48]))
        pdf.ln()
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(sum(widths[:4]), 8, "Total", border="T")
    pdf.cell(widths[4], 8, _latin1(format_money(total, currency)), border="T", new_x="LMARGIN", new_y="NEXT")
    if order.note:
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(0, 5, _latin1(order.note))
    return bytes(pdf.output())


def format_money(minor: int, currency: str) -> str:
    return f"{format_amount(minor, currency_digits(currency))} {currency}"


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1; a character outside it (Polish ł, €) becomes '?' instead of an error."""
    return text.replace("€", "EUR").encode("latin-1", "replace").decode("latin-1")
