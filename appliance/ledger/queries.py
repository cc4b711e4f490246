"""Reads of the ledger: stock levels now and as of any past moment, movement history. Plain SQL over indexes.

Every function takes a sqlite3 connection (`db.connection()`), so the agent, the web workers and the CLI
share one read path, and a caller holding a transaction reads inside it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.errors import InvalidInput
from appliance.ledger.requests import ALL_KINDS, MovementRecord

_MOVEMENT_SELECT = """
SELECT m.id, m.origin, m.epoch, m.seq, m.op_id, m.kind, v.sku, l.code, tl.code, m.lot, m.expiry, m.d_on_hand,
       m.d_reserved, m.d_in_transit, m.unit_cost, m.ref_type, m.ref_id, m.reverses_id, m.reason, m.note,
       m.user_login, m.device, m.ts
FROM movement m
JOIN variant v ON v.id = m.variant_id
JOIN location l ON l.id = m.location_id
LEFT JOIN location tl ON tl.id = m.to_location_id"""


def load_movements(conn: sqlite3.Connection, where: str = "1", params: Sequence[Any] = (),
                   order: str = "m.id", limit: int | None = None, offset: int = 0) -> list[MovementRecord]:
    sql = f"{_MOVEMENT_SELECT} WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return [MovementRecord(*row) for row in conn.execute(sql, tuple(params))]


@dataclass(frozen=True)
class StockLine:
    sku: str
    name: str
    location: str
    site: str
    lot: str | None      # None when lots are summed up
    expiry: str | None
    on_hand: int
    reserved: int
    in_transit: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def to_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "location": self.location, "site": self.site,
                "lot": self.lot, "expiry": self.expiry, "on_hand": self.on_hand, "reserved": self.reserved,
                "available": self.available, "in_transit": self.in_transit}


# A line's expiry is the earliest expiry among its lots that still hold stock (here or on the way).
_HELD_EXPIRY = "min(CASE WHEN {t}.on_hand != 0 OR {t}.in_transit != 0 THEN {t}.expiry END)"

STOCK_SORTS = {
    "sku": "v.sku, l.code",
    "location": "l.code, v.sku",
    "on_hand": "on_hand DESC, v.sku, l.code",
    "available": "on_hand - reserved, v.sku, l.code",
}


def _filters(sku: str | None, location: str | None, site: str | None, search: str | None,
             include_empty: bool) -> tuple[list[str], list[Any], list[str], list[Any]]:
    """Conditions on the variant (v, p) and on the stock row (s, l), kept apart for the paged query."""
    on_variant, variant_params, on_row, row_params = [], [], [], []
    if sku:
        on_variant.append("v.sku = ?")
        variant_params.append(sku)
    if search:
        # Case-insensitive, so neither LIKE uses an index: the paged query below stops after one page instead.
        on_variant.append("(v.sku LIKE ? ESCAPE '\\' OR p.name LIKE ? ESCAPE '\\')")
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        variant_params += [escaped + "%", "%" + escaped + "%"]
    if location:
        on_row.append("l.code = ?")
        row_params.append(location)
    if site:
        on_row.append("l.site_id = ?")
        row_params.append(site)
    if not include_empty:
        on_row.append("(s.on_hand != 0 OR s.reserved != 0 OR s.in_transit != 0)")
    return on_variant, variant_params, on_row, row_params


def _and(conditions: list[str]) -> str:
    return " AND ".join(conditions) if conditions else "1"


def stock_levels(conn: sqlite3.Connection, *, sku: str | None = None, location: str | None = None,
                 site: str | None = None, search: str | None = None, by_lot: bool = False,
                 include_empty: bool = False, sort: str = "sku", limit: int | None = None,
                 offset: int = 0) -> list[StockLine]:
    """Stock per variant per location (per lot with `by_lot`), from the projection."""
    if sort not in STOCK_SORTS:
        raise InvalidInput(f"unknown sort {sort!r}; one of {', '.join(STOCK_SORTS)}", field="sort")
    on_variant, variant_params, on_row, row_params = _filters(sku, location, site, search, include_empty)
    lot_cols = "s.lot, s.expiry" if by_lot else f"NULL, {_HELD_EXPIRY.format(t='s')}"
    group = "" if by_lot else "GROUP BY s.variant_id, s.location_id"
    sums = ("s.on_hand, s.reserved, s.in_transit" if by_lot else
            "sum(s.on_hand) AS on_hand, sum(s.reserved) AS reserved, sum(s.in_transit) AS in_transit")
    if by_lot:
        sort_sql = STOCK_SORTS[sort].replace("on_hand", "s.on_hand").replace("reserved", "s.reserved") + ", s.lot"
    else:
        sort_sql = STOCK_SORTS[sort]
    if sort == "sku" and limit is not None and not sku and not location:
        # A page of a site-wide list: pick the page's variants first, in SKU order along the SKU index, then
        # sum stock for those only. Every variant chosen yields at least one line, so offset + limit variants
        # always cover the page. CROSS JOIN keeps SQLite from starting at the site's 10,000s of stock rows.
        held = (f"EXISTS (SELECT 1 FROM stock s JOIN location l ON l.id = s.location_id"
                f" WHERE s.variant_id = v.id AND {_and(on_row)})")
        chosen = f"CASE WHEN {_and(on_variant)} THEN {held} ELSE 0 END" if on_variant else held
        source = (f"(SELECT v.id FROM variant v JOIN product p ON p.id = v.product_id WHERE {chosen}"
                  f" ORDER BY v.sku LIMIT {int(offset) + int(limit)}) page"
                  " CROSS JOIN variant v ON v.id = page.id CROSS JOIN product p ON p.id = v.product_id"
                  " CROSS JOIN stock s ON s.variant_id = v.id CROSS JOIN location l ON l.id = s.location_id")
        where, params = on_row, variant_params + row_params + row_params
    else:
        source = ("stock s JOIN variant v ON v.id = s.variant_id JOIN product p ON p.id = v.product_id"
                  " JOIN location l ON l.id = s.location_id")
        where, params = on_variant + on_row, variant_params + row_params
    sql = (f"SELECT v.sku, CASE WHEN v.name != '' THEN p.name || ' ' || v.name ELSE p.name END, l.code, l.site_id,"
           f" {lot_cols}, {sums} FROM {source} WHERE {_and(where)} {group} ORDER BY {sort_sql}")
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return [StockLine(*row) for row in conn.execute(sql, params)]


def totals_by_site(conn: sqlite3.Connection, sku: str) -> dict[str, dict[str, int]]:
    """One SKU summed per site: what each warehouse holds, has promised and has coming."""
    result = {}
    for site, on_hand, reserved, in_transit in conn.execute(
            "SELECT l.site_id, sum(s.on_hand), sum(s.reserved), sum(s.in_transit) FROM stock s"
            " JOIN variant v ON v.id = s.variant_id JOIN location l ON l.id = s.location_id"
            " WHERE v.sku = ? GROUP BY l.site_id ORDER BY l.site_id", (sku,)):
        result[site] = {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved,
                        "in_transit": in_transit}
    return result


def available(conn: sqlite3.Connection, sku: str, location: str) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(s.on_hand - s.reserved), 0) FROM stock s JOIN variant v ON v.id = s.variant_id"
        " JOIN location l ON l.id = s.location_id WHERE v.sku = ? AND l.code = ?", (sku, location)).fetchone()
    return row[0]


def stock_as_of(conn: sqlite3.Connection, as_of_ts: str, *, sku: str | None = None, location: str | None = None,
                site: str | None = None, by_lot: bool = False, include_empty: bool = False) -> list[StockLine]:
    """Stock at a past moment, replayed from movements (never from the projection)."""
    where, params = ["m.ts <= ?"], [as_of_ts]
    if sku:
        where.append("m.variant_id = (SELECT id FROM variant WHERE sku = ?)")
        params.append(sku)
    # One row per (movement, stock row it touches): in-transit lands on the destination.
    legs = f"""
        SELECT m.variant_id, m.location_id AS location_id, m.lot, m.expiry, m.d_on_hand AS on_hand,
               m.d_reserved AS reserved, CASE WHEN m.to_location_id IS NULL THEN m.d_in_transit ELSE 0 END
               AS in_transit
        FROM movement m WHERE {' AND '.join(where)}
        UNION ALL
        SELECT m.variant_id, m.to_location_id, m.lot, m.expiry, 0, 0, m.d_in_transit
        FROM movement m WHERE m.to_location_id IS NOT NULL AND {' AND '.join(where)}"""
    outer, outer_params = [], []
    if location:
        outer.append("l.code = ?")
        outer_params.append(location)
    if site:
        outer.append("l.site_id = ?")
        outer_params.append(site)
    # Per lot first, so that the expiry of a summed line comes only from lots that still hold stock.
    per_lot = (f"SELECT x.variant_id, x.location_id, x.lot, min(x.expiry) AS expiry, sum(x.on_hand) AS on_hand,"
               f" sum(x.reserved) AS reserved, sum(x.in_transit) AS in_transit FROM ({legs}) x"
               " GROUP BY x.variant_id, x.location_id, x.lot")
    if by_lot:
        cols, group = "y.lot, y.expiry, y.on_hand, y.reserved, y.in_transit", ""
        nonzero = "y.on_hand != 0 OR y.reserved != 0 OR y.in_transit != 0"
        if not include_empty:
            outer.append(f"({nonzero})")
        having = ""
    else:
        cols = f"NULL, {_HELD_EXPIRY.format(t='y')}, sum(y.on_hand), sum(y.reserved), sum(y.in_transit)"
        group = "GROUP BY y.variant_id, y.location_id"
        having = "" if include_empty else \
            "HAVING sum(y.on_hand) != 0 OR sum(y.reserved) != 0 OR sum(y.in_transit) != 0"
    sql = (f"SELECT v.sku, CASE WHEN v.name != '' THEN p.name || ' ' || v.name ELSE p.name END, l.code, l.site_id,"
           f" {cols} FROM ({per_lot}) y JOIN variant v ON v.id = y.variant_id JOIN product p ON p.id = v.product_id"
           f" JOIN location l ON l.id = y.location_id {'WHERE ' + ' AND '.join(outer) if outer else ''}"
           f" {group} {having} ORDER BY v.sku, l.code{', y.lot' if by_lot else ''}")
    return [StockLine(*row) for row in conn.execute(sql, params + params + outer_params)]


# The few distinct reference types, read by skipping along movement_ref: a reference given without its type is
# then one index search per type instead of a scan of every movement.
_REF_TYPES = ("SELECT x FROM (WITH RECURSIVE t(x) AS (SELECT min(ref_type) FROM movement WHERE ref_type IS NOT NULL"
              " UNION ALL SELECT (SELECT min(ref_type) FROM movement WHERE ref_type > t.x) FROM t"
              " WHERE t.x IS NOT NULL) SELECT x FROM t WHERE x IS NOT NULL)")
# A location with fewer movements booked at it than this is looked up through indexes; a busier one is found
# soon enough by walking the newest movements (see _location_condition).
BUSY_LOCATION = 1000


def _location_condition(conn: sqlite3.Connection, code: str, destination: bool) -> tuple[str, list]:
    """Movements booked at a location, and with `destination` also transfers sent to it. Only a transfer_out has a
    destination (`to_location_id`, which has no index), always with ref_type 'transfer'. Walking the newest
    movements finds 50 of a busy location in a few hundred rows but would read all of them for a quiet one,
    which is read through movement_location and movement_ref instead, in a bounded time."""
    found = conn.execute("SELECT id FROM location WHERE code = ?", (code,)).fetchone()
    if found is None:
        return "0", []
    if not destination:
        return "m.location_id = ?", [found[0]]
    busy = conn.execute("SELECT count(*) FROM (SELECT 1 FROM movement WHERE location_id = ? LIMIT ?)",
                        (found[0], BUSY_LOCATION)).fetchone()[0] >= BUSY_LOCATION
    if busy:
        return "(m.location_id = ? OR m.to_location_id = ?)", [found[0], found[0]]
    return "(m.location_id = ? OR (m.ref_type = 'transfer' AND m.to_location_id = ?))", [found[0], found[0]]


def movement_conditions(conn: sqlite3.Connection, *, sku: str | None = None, location: str | None = None,
                        kind: str | None = None, user: str | None = None, ref: str | None = None,
                        since: str | None = None, until: str | None = None, origin: str | None = None,
                        destination: bool = True) -> tuple[list[str], list]:
    """SQL conditions on `movement m` for the history filters, each one an index can serve: the CLI's history,
    the API's listing and the movements page share them. `ref` matches `TYPE:ID`, or the id under any type
    (an order number); `destination`: a location filter also matches transfers sent there."""
    where: list[str] = []
    params: list = []
    if sku:
        where.append("m.variant_id = (SELECT id FROM variant WHERE sku = ?)")
        params.append(sku)
    if location:
        condition, values = _location_condition(conn, location, destination)
        where.append(condition)
        params += values
    if kind:
        if kind not in ALL_KINDS:
            raise InvalidInput(f"unknown movement kind {kind!r}; one of {', '.join(ALL_KINDS)}", field="kind")
        where.append("m.kind = ?")
        params.append(kind)
    if user:
        where.append("m.user_login = ?")
        params.append(user)
    if ref:
        ref_type, _, ref_id = ref.rpartition(":")
        if ref_type:
            where.append("m.ref_type = ? AND m.ref_id = ?")
            params += [ref_type, ref_id]
        else:
            where.append(f"m.ref_type IN ({_REF_TYPES}) AND m.ref_id = ?")
            params.append(ref_id)
    if since:
        where.append("m.ts >= ?")
        params.append(since)
    if until:
        where.append("m.ts <= ?")
        params.append(until)
    if origin:
        # `+`: not the (origin, epoch, seq) index, whose order is not the listing's and would mean a sort.
        where.append("+m.origin = ?")
        params.append(origin)
    return where, params


def history(conn: sqlite3.Connection, *, sku: str | None = None, location: str | None = None,
            kind: str | None = None, user: str | None = None, ref: str | None = None,
            since: str | None = None, until: str | None = None, origin: str | None = None,
            limit: int | None = 50, offset: int = 0, newest_first: bool = True) -> list[MovementRecord]:
    """Movements matching every filter given (see movement_conditions)."""
    where, params = movement_conditions(conn, sku=sku, location=location, kind=kind, user=user, ref=ref,
                                        since=since, until=until, origin=origin)
    order = "m.ts DESC, m.id DESC" if newest_first else "m.ts, m.id"
    return load_movements(conn, " AND ".join(where) or "1", params, order=order, limit=limit, offset=offset)


def iter_movements(conn: sqlite3.Connection, batch: int = 5000) -> Iterator[MovementRecord]:
    """Every movement in id order, a batch at a time (for export without loading a million rows)."""
    last = 0
    while True:
        rows = load_movements(conn, "m.id > ?", (last,), limit=batch)
        if not rows:
            return
        yield from rows
        last = rows[-1].id
