"""Stock health for the dashboard: each site's and location's SKUs counted as out, low or over-stocked, and this
site's most urgent lines; kept per web process and moved on by the movements since it last looked.

A line is one SKU at one location (lots added up, plus every pair that has a reorder override, so a bin that
should hold a SKU and holds none shows as out; a stock row counts even at zero; inactive variants are left out):
- out: available (on hand − reserved) ≤ 0;
- low: available ≤ the reorder point (the location's override, else the variant's);
- over: available > reorder point + 2 × reorder quantity, when both are set.
A site's SKU is its locations added up and measured against the variant's own reorder point (overrides are
per location, so they have no meaning for a whole site).

Why it is incremental: one pass over the 141,606 stock lines of the benchmark ledger takes ~0.5 s (the same
in grouped SQL), per request, on a Raspberry Pi. Stock changes only through movements, and each movement says
which (variant, location) it changed and by how much. So `StockHealth` keeps the counts and moves them by the
lines the new movements touched: a line's new state is read from `stock` (an index lookup), its old state is
the new one minus the movements' deltas, its old contribution is taken out and the new one put in. What the
movements cannot tell (reorder points, overrides, active flags, new locations or sites) bumps the 'catalog'
row of `change_counter` (triggers of migration m0006), and the counts are rebuilt from scratch, as they are
when more than `max_increment` movements arrived at once.

Memory: the counts per location and per site, and this site's out and low lines with their sort keys (the
lines the dashboard may have to show); nothing for the other stock lines.
"""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

TOP_LINES = 20
MAX_LOCATIONS = 60    # the page is a summary; the stock page lists every location
MAX_INCREMENT = 5000  # more new movements than this: a rebuild is about as fast, and simpler
OK, OUT, LOW, OVER = 0, 1, 2, 3
LEVELS = ("ok", "out", "low", "over")
_NONE = (None, None)
_CHUNK = 500          # ids per IN (...) query


@dataclass
class Counts:
    """SKUs of one site or location, and how many of them are out, low or over-stocked."""
    key: str
    site: str
    skus: int = 0
    out: int = 0
    low: int = 0
    over: int = 0
    on_hand: int = 0

    @property
    def attention(self) -> int:
        return self.out + self.low + self.over

    def add(self, level: int, on_hand: int, n: int = 1) -> None:
        """Count a line in (n=1) or take it out again (n=-1)."""
        self.skus += n
        self.on_hand += n * on_hand
        if level == OUT:
            self.out += n
        elif level == LOW:
            self.low += n
        elif level == OVER:
            self.over += n


@dataclass
class Summary:
    site: str
    sites: list[Counts] = field(default_factory=list)
    locations: list[Counts] = field(default_factory=list)
    more_locations: int = 0
    lines: list[dict] = field(default_factory=list)
    lines_total: int = 0


def level(available: int, point: int | None, qty: int | None) -> int:
    if available <= 0:
        return OUT
    if point is not None and available <= point:
        return LOW
    if point is not None and qty is not None and available > point + 2 * qty:
        return OVER
    return OK


def _points(variant: tuple, own: tuple | None) -> tuple:
    """The reorder point and quantity a line is measured against: the location's override, field by field."""
    if own is None:
        return variant
    return (own[0] if own[0] is not None else variant[0], own[1] if own[1] is not None else variant[1])


def _urgency(vid, lid, available, on_hand, rp, rq, line_level) -> tuple:
    # Sorts out before low; then the furthest below its reorder point.
    return (line_level == LOW, available - (rp or 0), vid, lid, available, on_hand, rp, rq, line_level)


@dataclass
class _State:
    site: str
    version: int                                 # change_counter 'catalog' the state was built at
    cursor: int                                  # the latest movement id it includes
    locations: dict[int, tuple[str, str]]        # location id -> (code, site)
    by_location: dict[int, Counts]
    by_site: dict[str, Counts]
    urgent: dict[tuple[int, int], tuple]         # this site's out and low lines -> _urgency(...)


@dataclass(frozen=True)
class _Built:
    """What readers share: copies of the counts, sorted, and the most urgent lines (not yet described)."""
    sites: list[Counts]
    locations: list[Counts]
    more_locations: int
    top: list[tuple]
    total: int
    codes: dict[int, tuple[str, str]]


@contextmanager
def _snapshot(conn):
    """One read transaction: the cursor, the catalog version and the stock read with them belong together."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")   # nothing was written


def _position(conn) -> tuple[int, int]:
    version = conn.execute("SELECT n FROM change_counter WHERE name = 'catalog'").fetchone()[0]
    latest = conn.execute("SELECT coalesce(max(id), 0) FROM movement").fetchone()[0]
    return version, latest


def _rows_in(conn, sql: str, ids) -> list[tuple]:
    """`sql` with its `{}` filled by placeholders for `ids`, run in chunks."""
    ids = sorted(ids)
    rows: list[tuple] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows.extend(conn.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return rows


# --- the full pass ------------------------------------------------------------------------------------------

def _full(conn, site: str, version: int, cursor: int) -> _State:
    """One pass over the stock projection, grouped per line in SQL, counted here.

    Three grouped SQL queries (per location, per site, top lines) each re-read and re-sort every stock row;
    one streaming pass in variant order reads them once, and the per-site sums close as each variant ends.
    """
    points = {vid: (rp, rq) for vid, rp, rq in conn.execute(
        "SELECT id, reorder_point, reorder_qty FROM variant WHERE reorder_point IS NOT NULL"
        " OR reorder_qty IS NOT NULL")}
    inactive = {vid for (vid,) in conn.execute("SELECT id FROM variant WHERE NOT active")}
    overrides = {(vid, lid): (rp, rq) for vid, lid, rp, rq in conn.execute(
        "SELECT variant_id, location_id, reorder_point, reorder_qty FROM reorder_override")}
    locations = {lid: (code, site_id) for lid, code, site_id in conn.execute("SELECT id, code, site_id FROM location")}
    by_location: dict[int, Counts] = {}
    by_site = {sid: Counts(sid, sid) for (sid,) in conn.execute("SELECT id FROM site")}  # empty sites too
    urgent: dict[tuple[int, int], tuple] = {}

    # Overrides without any stock row are lines too (stocked nothing yet): fed in as zeros, in variant order.
    stocked = conn.execute(
        "SELECT variant_id, location_id, sum(on_hand - reserved), sum(on_hand) FROM stock"
        " GROUP BY variant_id, location_id ORDER BY variant_id, location_id")
    bare = sorted((vid, lid, 0, 0) for (vid, lid) in overrides if not conn.execute(
        "SELECT 1 FROM stock WHERE variant_id = ? AND location_id = ?", (vid, lid)).fetchone())
    current, per_site = None, {}

    def close_variant():
        variant_points = points.get(current, _NONE)
        for sid, (available, on_hand) in per_site.items():
            by_site.setdefault(sid, Counts(sid, sid)).add(level(available, *variant_points), on_hand)

    for vid, lid, available, on_hand in heapq.merge(stocked, bare):
        if vid in inactive:
            continue
        if vid != current:
            close_variant()
            current, per_site = vid, {}
        rp, rq = _points(points.get(vid, _NONE), overrides.get((vid, lid)))
        line_level = level(available, rp, rq)
        code, sid = locations[lid]
        counts = by_location.get(lid)
        if counts is None:
            counts = by_location[lid] = Counts(code, sid)
        counts.add(line_level, on_hand)
        total = per_site.get(sid)
        per_site[sid] = (available, on_hand) if total is None else (total[0] + available, total[1] + on_hand)
        if sid == site and line_level in (OUT, LOW):
            urgent[(vid, lid)] = _urgency(vid, lid, available, on_hand, rp, rq, line_level)
    close_variant()
    return _State(site, version, cursor, locations, by_location, by_site, urgent)


# --- the increment ------------------------------------------------------------------------------------------

def _advance(conn, state: _State, latest: int) -> bool:
    """Move `state` from its cursor to `latest` by the lines the movements in between touched; False (and
    `state` untouched) when it cannot, because they name a location the state does not know."""
    delta: dict[tuple[int, int], list[int]] = {}   # (variant, location) -> [Δ on hand, Δ available]
    written: dict[tuple[int, int], set[str]] = {}  # (variant, location) -> lots whose stock row was written
    for vid, lid, to_id, lot, d_on_hand, d_reserved in conn.execute(
            "SELECT variant_id, location_id, to_location_id, lot, d_on_hand, d_reserved FROM movement"
            " WHERE id > ? AND id <= ?", (state.cursor, latest)):
        # The projection rule of ledger/operations.py: on hand and reserved go to the location, in transit to
        # the destination, and each writes (so creates, even at zero) the stock row it goes to.
        if to_id is None or d_on_hand or d_reserved:
            written.setdefault((vid, lid), set()).add(lot)
            change = delta.setdefault((vid, lid), [0, 0])
            change[0] += d_on_hand
            change[1] += d_on_hand - d_reserved
        if to_id is not None:
            written.setdefault((vid, to_id), set()).add(lot)
    touched: dict[int, list[int]] = defaultdict(list)
    for vid, lid in written:
        touched[vid].append(lid)
    # Inactive variants have no lines, and a variant that changed its active flag bumped the catalog version.
    points = {vid: (rp, rq) for vid, rp, rq in _rows_in(
        conn, "SELECT id, reorder_point, reorder_qty FROM variant WHERE active AND id IN ({})", touched)}
    stock: dict[int, list[tuple]] = defaultdict(list)
    for vid, lid, lot, available, on_hand in _rows_in(
            conn, "SELECT variant_id, location_id, lot, on_hand - reserved, on_hand FROM stock"
                  " WHERE variant_id IN ({})", points):
        stock[vid].append((lid, lot, available, on_hand))
    overrides: dict[int, dict[int, tuple]] = defaultdict(dict)
    for vid, lid, rp, rq in _rows_in(
            conn, "SELECT variant_id, location_id, reorder_point, reorder_qty FROM reorder_override"
                  " WHERE variant_id IN ({})", points):
        overrides[vid][lid] = (rp, rq)
    # A new location bumps the catalog version; this only guards against a writer that did not.
    named = {lid for _, lid in written} | {row[0] for rows in stock.values() for row in rows}
    if not named.issubset(state.locations) or any(not set(own).issubset(state.locations)
                                                  for own in overrides.values()):
        return False
    for vid, variant_points in points.items():
        _advance_variant(conn, state, vid, variant_points, touched[vid], stock[vid], overrides[vid], delta, written)
    return True


def _advance_variant(conn, state: _State, vid: int, variant_points: tuple, touched: list[int],
                     stock: list[tuple], overrides: dict[int, tuple], delta: dict, written: dict) -> None:
    rows: dict[int, list] = {}   # location -> [available, on hand, lots]: the variant's stock now
    for lid, lot, available, on_hand in stock:
        row = rows.setdefault(lid, [0, 0, []])
        row[0] += available
        row[1] += on_hand
        row[2].append(lot)
    changed_sites: dict[str, list[int]] = {}   # site -> [Δ on hand, Δ available, lines that are new]
    for lid in touched:
        code, sid = state.locations[lid]
        available, on_hand, lots = rows.get(lid, (0, 0, ()))
        d_on_hand, d_available = delta.get((vid, lid), (0, 0))
        was_available, was_on_hand = available - d_available, on_hand - d_on_hand
        own = overrides.get(lid)
        is_line = bool(lots) or own is not None
        was_line = own is not None or (bool(lots) and _existed(conn, state.cursor, vid, lid, lots, written[(vid, lid)],
                                                              was_on_hand, was_available))
        rp, rq = _points(variant_points, own)
        counts = state.by_location.get(lid)
        if counts is None:
            counts = state.by_location[lid] = Counts(code, sid)
        if was_line:
            counts.add(level(was_available, rp, rq), was_on_hand, -1)
        line_level = level(available, rp, rq)
        if is_line:
            counts.add(line_level, on_hand)
        if sid == state.site:
            state.urgent.pop((vid, lid), None)
            if is_line and line_level in (OUT, LOW):
                state.urgent[(vid, lid)] = _urgency(vid, lid, available, on_hand, rp, rq, line_level)
        change = changed_sites.setdefault(sid, [0, 0, 0])
        change[0] += d_on_hand
        change[1] += d_available
        change[2] += is_line and not was_line
    for sid, (d_on_hand, d_available, new_lines) in changed_sites.items():
        lines = {lid for lid in (*rows, *overrides) if state.locations[lid][1] == sid}
        available = sum(rows[lid][0] for lid in lines if lid in rows)
        on_hand = sum(rows[lid][1] for lid in lines if lid in rows)
        counts = state.by_site.setdefault(sid, Counts(sid, sid))
        if len(lines) > new_lines:
            counts.add(level(available - d_available, *variant_points), on_hand - d_on_hand, -1)
        if lines:
            counts.add(level(available, *variant_points), on_hand)


def _existed(conn, cursor: int, vid: int, lid: int, lots: list[str], written: set[str], on_hand: int,
             available: int) -> bool:
    """Whether (variant, location) had a stock row at `cursor`, given that it has rows (`lots`) now.

    Rows are never deleted: stock there before, or a row the new movements did not write, settles it. Else
    the line may be new (first receipt, a transfer's destination), and the ledger says whether any earlier
    movement wrote there (the variant's movements, through its index).
    """
    if on_hand or available or any(lot not in written for lot in lots):
        return True
    return conn.execute(
        "SELECT 1 FROM movement WHERE variant_id = ? AND id <= ? AND ((location_id = ? AND"
        " (to_location_id IS NULL OR d_on_hand != 0 OR d_reserved != 0)) OR to_location_id = ?) LIMIT 1",
        (vid, cursor, lid, lid)).fetchone() is not None


# --- reading ------------------------------------------------------------------------------------------------

def _build(state: _State) -> _Built:
    site = state.site
    # This site first, then the others; within a site the locations that need attention first.
    sites = sorted((replace(c) for c in state.by_site.values()), key=lambda c: (c.site != site, c.site))
    ordered = sorted((c for c in state.by_location.values() if c.skus),
                     key=lambda c: (c.site != site, c.site, -c.out, -c.attention, c.key))
    return _Built(sites=sites, locations=[replace(c) for c in ordered[:MAX_LOCATIONS]],
                  more_locations=max(len(ordered) - MAX_LOCATIONS, 0),
                  top=heapq.nsmallest(TOP_LINES, state.urgent.values()), total=len(state.urgent),
                  codes=state.locations)


def _summary(conn, site: str, built: _Built) -> Summary:
    return Summary(site=site, sites=list(built.sites), locations=list(built.locations),
                   more_locations=built.more_locations, lines=_describe(conn, built.top, built.codes),
                   lines_total=built.total)


def _describe(conn, picked: list[tuple], locations: dict) -> list[dict]:
    # Names are read on every request: renaming a variant bumps no version.
    names = {}
    if picked:
        ids = sorted({entry[2] for entry in picked})
        names = {vid: (sku, product, variant) for vid, sku, product, variant in conn.execute(
            "SELECT v.id, v.sku, p.name, v.name FROM variant v JOIN product p ON p.id = v.product_id"
            f" WHERE v.id IN ({','.join('?' * len(ids))})", ids)}
    out = []
    for _low, _gap, vid, lid, available, on_hand, rp, rq, line_level in picked:
        sku, product, variant = names[vid]
        out.append({"sku": sku, "product": product, "variant": variant, "location": locations[lid][0],
                    "on_hand": on_hand, "available": available, "reorder_point": rp, "reorder_qty": rq,
                    "level": LEVELS[line_level]})
    return out


def full_summary(conn, site: str) -> Summary:
    """The summary computed from scratch (the reference `StockHealth` must always agree with)."""
    with _snapshot(conn):
        state = _full(conn, site, *_position(conn))
        return _summary(conn, site, _build(state))


class StockHealth:
    """The summary of one site, kept for one process. `summary(conn)` may be called from any thread, each with
    its own connection: one lock around the update, and readers get copies built under it."""

    def __init__(self, site: str, max_increment: int = MAX_INCREMENT) -> None:
        self.site = site
        self.max_increment = max_increment
        self.rebuilds = 0       # how the state was kept current: for tests and for a curious operator
        self.increments = 0
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._built: _Built | None = None

    def summary(self, conn) -> Summary:
        with self._lock, _snapshot(conn):
            built = self._refresh(conn)
        return _summary(conn, self.site, built)

    def _refresh(self, conn) -> _Built:
        version, latest = _position(conn)
        state = self._state
        if state is not None and state.version == version and state.cursor == latest:
            if self._built is None:
                self._built = _build(state)
            return self._built
        self._state, self._built = None, None   # whatever fails below leaves nothing half-moved
        if (state is None or state.version != version or latest < state.cursor   # < : a restored backup
                or latest - state.cursor > self.max_increment):
            state = _full(conn, self.site, version, latest)
            self.rebuilds += 1
        elif _advance(conn, state, latest):
            state.cursor = latest
            self.increments += 1
        else:
            state = _full(conn, self.site, version, latest)
            self.rebuilds += 1
        self._state, self._built = state, _build(state)
        return self._built
