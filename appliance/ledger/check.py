"""`check`: recompute everything derivable from the movements and report every difference.

Checked: each stock row against the sum of its movements (the projection rule in ledger/operations.py);
each origin's sequence numbers gapless and matching the site's head; reserved stock against the held
reservations; stock in transit against the open transfers this box knows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from appliance.ledger.chain_check import chain_problems

_RECOMPUTED = """
SELECT variant_id, location_id, lot, sum(on_hand), sum(reserved), sum(in_transit) FROM (
    SELECT variant_id, location_id, lot, d_on_hand AS on_hand, d_reserved AS reserved,
           CASE WHEN to_location_id IS NULL THEN d_in_transit ELSE 0 END AS in_transit
    FROM movement
    UNION ALL
    SELECT variant_id, to_location_id, lot, 0, 0, d_in_transit FROM movement WHERE to_location_id IS NOT NULL
) GROUP BY variant_id, location_id, lot"""


@dataclass(frozen=True)
class Difference:
    what: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "message": self.message, **self.details}


def check(conn: sqlite3.Connection, *, signatures: bool = False) -> list[Difference]:
    """Every difference between the stored projections and what the movements say, and every break in an
    origin's signed hash chain (chain_check.py; `signatures` also verifies each one). Empty means consistent."""
    # A read transaction gives one snapshot even while other processes keep posting.
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        chains = [Difference(*problem) for problem in chain_problems(conn, deep=signatures)]
        return _stock(conn) + _sequences(conn) + _reservations(conn) + _transfers(conn) + chains
    finally:
        if own_tx:
            conn.execute("COMMIT")


def _label(conn: sqlite3.Connection, variant_id: int, location_id: int) -> tuple[str, str]:
    sku = conn.execute("SELECT sku FROM variant WHERE id = ?", (variant_id,)).fetchone()
    loc = conn.execute("SELECT code FROM location WHERE id = ?", (location_id,)).fetchone()
    return (sku[0] if sku else f"#{variant_id}", loc[0] if loc else f"#{location_id}")


def _stock(conn: sqlite3.Connection) -> list[Difference]:
    expected = {(v, loc, lot): (oh, r, it) for v, loc, lot, oh, r, it in conn.execute(_RECOMPUTED)}
    stored = {(v, loc, lot): (oh, r, it) for v, loc, lot, oh, r, it in conn.execute(
        "SELECT variant_id, location_id, lot, on_hand, reserved, in_transit FROM stock")}
    diffs = []
    for key in expected.keys() | stored.keys():
        want, have = expected.get(key, (0, 0, 0)), stored.get(key, (0, 0, 0))
        if want != have:
            sku, loc = _label(conn, key[0], key[1])
            diffs.append(Difference(
                "stock", f"{sku} at {loc}{' lot ' + key[2] if key[2] else ''}: stored on_hand/reserved/in_transit "
                f"{have[0]}/{have[1]}/{have[2]}, movements say {want[0]}/{want[1]}/{want[2]}",
                {"sku": sku, "location": loc, "lot": key[2], "stored": list(have), "from_movements": list(want)}))
    return sorted(diffs, key=lambda d: d.message)


def _sequences(conn: sqlite3.Connection) -> list[Difference]:
    diffs = []
    heads = dict(conn.execute("SELECT id, head_seq FROM site"))
    for origin, epoch, count, low, high in conn.execute(
            "SELECT origin, epoch, count(*), min(seq), max(seq) FROM movement GROUP BY origin, epoch"):
        if low != 1 or high != count:
            diffs.append(Difference(
                "sequence", f"site {origin} epoch {epoch}: {count} movements numbered {low}..{high}, expected 1..{count}",
                {"origin": origin, "epoch": epoch, "count": count, "min": low, "max": high}))
    latest = dict(conn.execute(
        "SELECT origin, max(seq) FROM movement WHERE (origin, epoch) IN"
        " (SELECT id, epoch FROM site) GROUP BY origin"))
    for site, head in heads.items():
        if latest.get(site, 0) != head:
            diffs.append(Difference(
                "sequence", f"site {site}: head_seq is {head} but its last movement has seq {latest.get(site, 0)}",
                {"origin": site, "head_seq": head, "last_seq": latest.get(site, 0)}))
    return diffs


def _reservations(conn: sqlite3.Connection) -> list[Difference]:
    diffs = []
    for variant_id, location_id, lot, stored, held in conn.execute(
            "SELECT s.variant_id, s.location_id, s.lot, s.reserved, coalesce(r.held, 0) FROM stock s"
            " LEFT JOIN (SELECT variant_id, location_id, lot, sum(qty - qty_consumed - qty_released) AS held"
            "            FROM reservation WHERE status = 'held' GROUP BY variant_id, location_id, lot) r"
            " USING (variant_id, location_id, lot)"
            " JOIN location l ON l.id = s.location_id JOIN site ON site.id = l.site_id AND site.is_local"
            " WHERE s.reserved != coalesce(r.held, 0)"):
        sku, loc = _label(conn, variant_id, location_id)
        diffs.append(Difference(
            "reservations", f"{sku} at {loc}: {stored} reserved in stock, {held} held by open reservations",
            {"sku": sku, "location": loc, "lot": lot, "reserved": stored, "held": held}))
    return diffs


def _transfers(conn: sqlite3.Connection) -> list[Difference]:
    diffs = []
    for code, sent, received, short, moved_out, moved_in, written_off in conn.execute(
            "SELECT t.code, t.qty_sent, t.qty_received, t.qty_short,"
            " (SELECT coalesce(sum(d_in_transit), 0) FROM movement m WHERE m.ref_type = 'transfer'"
            "  AND m.ref_id = t.code AND m.kind = 'transfer_out'),"
            " (SELECT coalesce(-sum(d_in_transit), 0) FROM movement m WHERE m.ref_type = 'transfer'"
            "  AND m.ref_id = t.code AND m.kind = 'transfer_in'),"
            " (SELECT coalesce(-sum(d_in_transit), 0) FROM movement m WHERE m.ref_type = 'transfer'"
            "  AND m.ref_id = t.code AND m.kind = 'discrepancy')"
            " FROM transfer t"):
        if (sent, received, short) != (moved_out, moved_in, written_off):
            diffs.append(Difference(
                "transfer", f"transfer {code}: sent/received/short {sent}/{received}/{short}, movements say "
                f"{moved_out}/{moved_in}/{written_off}",
                {"transfer": code, "stored": [sent, received, short], "from_movements": [moved_out, moved_in,
                                                                                      written_off]}))
    return diffs
