"""Reading signed movements back out of the ledger: each site's ledger is its own outbox, and every box can
serve any origin's movements it holds (fills). Short read transactions, bounded chunks."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

FILL_CHUNK = 500


class HeadInfo(NamedTuple):
    epoch: int
    seq: int
    hash: str


def head_of(conn: sqlite3.Connection, origin: str) -> HeadInfo:
    """The last movement of `origin` this box holds contiguously (its own head for the local site)."""
    row = conn.execute("SELECT epoch, head_seq, head_hash FROM site WHERE id = ?", (origin,)).fetchone()
    return HeadInfo(*row) if row else HeadInfo(1, 0, "")


def tokens(conn: sqlite3.Connection, origin: str, epoch: int, first: int, last: int,
           limit: int = FILL_CHUNK) -> list[str]:
    """Stored tokens of origin's movements first..last (inclusive), in order, at most `limit`; stops at the
    first unsigned one (it cannot be re-served) or gap."""
    out = []
    expected = first
    for seq, token in conn.execute(
            "SELECT seq, token FROM movement WHERE origin = ? AND epoch = ? AND seq BETWEEN ? AND ?"
            " ORDER BY seq LIMIT ?", (origin, epoch, first, last, limit)):
        if token is None or seq != expected:
            break
        out.append(token)
        expected += 1
    return out


def local_site(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT id FROM site WHERE is_local").fetchone()
    if row is None:
        raise LookupError("this database has no local site")
    return row[0]
