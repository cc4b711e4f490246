"""CSV exports of stock levels and movements: UTF-8, comma-separated, one header row, ISO timestamps."""

from __future__ import annotations

import csv
import sqlite3
from typing import TextIO

from appliance.ledger import queries
from appliance.ledger.requests import RECORD_FIELDS

STOCK_COLUMNS = ("sku", "name", "location", "site", "lot", "expiry", "on_hand", "reserved", "available",
                 "in_transit")


def write_stock(conn: sqlite3.Connection, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STOCK_COLUMNS)
    lines = queries.stock_levels(conn, by_lot=True)
    for line in lines:
        row = line.to_dict()
        writer.writerow([row[c] if row[c] is not None else "" for c in STOCK_COLUMNS])
    return len(lines)


def write_movements(conn: sqlite3.Connection, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RECORD_FIELDS)
    count = 0
    for record in queries.iter_movements(conn):
        writer.writerow(["" if value is None else value for value in
                         (getattr(record, name) for name in RECORD_FIELDS)])
        count += 1
    return count
