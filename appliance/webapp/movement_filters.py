"""The movement history's filters: read from the query string, checked, and turned into one indexed query.

Pages are cut by cursor, not OFFSET: `before` is the id of the last row shown, and the next page starts just
after it. Newest first means (ts DESC, id DESC), the order of `appliance history`, along movement_ts or
movement_variant_ts; filtered by location alone it means id DESC along movement_location(location_id, id),
because sorting a busy location's whole history by time would cost a sort per page. Both orders agree at one
location: only its owner writes movements there, in sequence and time order. Nothing counts all matches, so a
page costs about the same on a 1,000,000-movement ledger as on an empty one.

The location filter matches the location a movement books at (`location_id`, which movement_location covers),
not a transfer's destination: what arrives there shows as the transfer_in booked at it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from appliance import clock
from appliance.ledger.queries import load_movements, movement_conditions
from appliance.ledger.requests import ALL_KINDS, MovementRecord

PAGE_SIZE = 50
TEXT_FIELDS = ("sku", "location", "kind", "user", "ref", "date_from", "date_to")


@dataclass(frozen=True)
class MovementFilter:
    """What the person typed (`values`, shown back in the form) and what the query uses."""

    values: dict[str, str] = field(default_factory=dict)
    sku: str | None = None
    location: str | None = None
    kind: str | None = None
    user: str | None = None
    ref: str | None = None
    since: str | None = None      # UTC ts, inclusive
    until: str | None = None      # UTC ts, inclusive

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for the next page and the CSV link)."""
        return {name: value for name, value in self.values.items() if value}


def parse(args: Mapping[str, str], conn: sqlite3.Connection, timezone: str) -> tuple[MovementFilter, dict[str, str]]:
    """The filter and {field: message} for every value that cannot match anything as typed."""
    values = {name: (args.get(name) or "").strip() for name in TEXT_FIELDS}
    errors: dict[str, str] = {}
    found = MovementFilter(values=values)
    sku, location, kind = values["sku"], values["location"], values["kind"]
    if sku:
        if conn.execute("SELECT 1 FROM variant WHERE sku = ?", (sku,)).fetchone() is None:
            errors["sku"] = _("No product has the SKU %(sku)s.", sku=sku)
        found = replace(found, sku=sku)
    if location:
        if conn.execute("SELECT 1 FROM location WHERE code = ?", (location,)).fetchone() is None:
            errors["location"] = _("There is no location %(location)s.", location=location)
        found = replace(found, location=location)
    if kind:
        if kind not in ALL_KINDS:
            errors["kind"] = _("%(kind)s is not a kind of movement.", kind=kind)
        found = replace(found, kind=kind)
    found = replace(found, user=values["user"].lower() or None, ref=values["ref"] or None)
    zone = ZoneInfo(timezone)
    since = until = None
    if values["date_from"]:
        text = values["date_from"]
        try:
            # A bare "from" date means the start of that day; clock.parse_ts reads a bare date as its end.
            since = clock.to_ts(clock.parse_ts(text + "T00:00" if len(text) == 10 else text, zone))
        except ValueError:
            errors["date_from"] = _("%(value)s is not a date (YYYY-MM-DD).", value=text)
    if values["date_to"]:
        try:
            until = clock.to_ts(clock.parse_ts(values["date_to"], zone))
        except ValueError:
            errors["date_to"] = _("%(value)s is not a date (YYYY-MM-DD).", value=values["date_to"])
    if since and until and since > until:
        errors["date_to"] = _("The end date is before the start date.")
    return replace(found, since=since, until=until), errors


def local_time(ts: str | None, timezone: str) -> str:
    """A ledger timestamp (UTC) as the site's wall-clock time, to the second."""
    if not ts:
        return ""
    return clock.parse_ts(ts).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def _where(conn: sqlite3.Connection, f: MovementFilter) -> tuple[list[str], list]:
    # destination=False: the location filter follows movement_location, so its pages need no sort.
    return movement_conditions(conn, sku=f.sku, location=f.location, kind=f.kind, user=f.user, ref=f.ref,
                               since=f.since, until=f.until, destination=False)


def _by_id(f: MovementFilter) -> bool:
    return bool(f.location) and not f.sku and not f.ref


def _after(conn: sqlite3.Connection, f: MovementFilter, before_id: int | None) -> tuple[str, list] | None:
    """The cursor condition: rows that come after movement `before_id` in the page order."""
    if before_id is None:
        return None
    row = conn.execute("SELECT ts FROM movement WHERE id = ?", (before_id,)).fetchone()
    if row is None or _by_id(f):
        return "m.id < ?", [before_id]
    # Spelled out rather than as a row value so that SQLite turns `m.ts <= ?` into an index range.
    return "m.ts <= ? AND (m.ts < ? OR m.id < ?)", [row[0], row[0], before_id]


def page(conn: sqlite3.Connection, f: MovementFilter, before_id: int | None = None,
         limit: int = PAGE_SIZE) -> tuple[list[MovementRecord], int | None]:
    """One page, newest first, and the cursor of the next page (None on the last one)."""
    where, params = _where(conn, f)
    after = _after(conn, f, before_id)
    if after is not None:
        where.append(after[0])
        params += after[1]
    order = "m.id DESC" if _by_id(f) else "m.ts DESC, m.id DESC"
    rows = load_movements(conn, " AND ".join(where) or "1", params, order=order, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def iter_all(conn: sqlite3.Connection, f: MovementFilter, batch: int = 2000) -> Iterator[MovementRecord]:
    """Every matching movement, newest first, a page at a time (the CSV export streams these)."""
    before = None
    while True:
        rows, before = page(conn, f, before, batch)
        yield from rows
        if before is None:
            return


def reversals(conn: sqlite3.Connection, rows: list[MovementRecord]) -> dict[int, int]:
    """{movement id: id of the movement that reverses it} for the rows shown.

    There is no index on reverses_id; a reversal books the same variant as its original, later, so the
    variant-and-time index narrows the search to the shown variants since the oldest row shown.
    """
    if not rows:
        return {}
    ids = [r.id for r in rows]
    skus = sorted({r.sku for r in rows})
    oldest = min(r.ts for r in rows)
    found = conn.execute(
        f"SELECT m.reverses_id, m.id FROM movement m WHERE m.variant_id IN"
        f" (SELECT id FROM variant WHERE sku IN ({','.join('?' * len(skus))})) AND m.ts >= ?"
        f" AND m.kind = 'reversal' AND m.reverses_id IN ({','.join('?' * len(ids))})",
        (*skus, oldest, *ids)).fetchall()
    return {original: reversal for original, reversal in found}
