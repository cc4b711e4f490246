"""Check each origin's log as a signed hash chain.

Always (plain SQL, fast on a million movements): which movements have no token, and whether each site row's
head_hash is the hash of that site's last movement. `deep` walks every log: every stored hash is the hash of
its token, every token names the hash of the one before, every signature verifies against the registry and
every row matches its token's body; that reads every token (about 0.3 ms a movement). Receivers did all of
it when each movement arrived.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from appliance.ledger.movement_token import BadBody, parse_body
from appliance.sync.identity import BadKey, PublicKey
from appliance.sync.tokens import BadToken, open_token, token_hash

_ROWS = """
SELECT m.origin, m.epoch, m.seq, m.token, m.hash, m.kind, v.sku, l.code, t.code, m.lot, m.d_on_hand, m.d_reserved,
       m.d_in_transit, m.ref_type, m.ref_id, m.ts
FROM movement m JOIN variant v ON v.id = m.variant_id JOIN location l ON l.id = m.location_id
LEFT JOIN location t ON t.id = m.to_location_id
ORDER BY m.origin, m.epoch, m.seq"""
_FIELDS = ("origin", "epoch", "seq", "kind", "sku", "location", "to_location", "lot", "d_on_hand", "d_reserved",
           "d_in_transit", "ref_type", "ref_id", "ts")
_MAX_PER_ORIGIN = 20   # beyond this, one summary line: a broken chain breaks everything after it


def chain_problems(conn: sqlite3.Connection, *, deep: bool = False) -> Iterator[tuple[str, str, dict]]:
    """(what, message, details) for every problem found, in log order."""
    if not deep:
        yield from _quick(conn)
        return
    keys = _keys(conn)
    heads = dict(conn.execute("SELECT id, head_hash FROM site"))
    origin = epoch = None
    prev = ""
    unsigned = problems = 0
    for row in conn.execute(_ROWS):
        m_origin, m_epoch, seq, token, digest = row[:5]
        if m_origin != origin:
            if origin is not None:
                yield from _summary(origin, unsigned, problems, prev, heads.get(origin, ""))
            origin, epoch, prev, unsigned, problems = m_origin, m_epoch, "", 0, 0
        if token is None:
            unsigned += 1
            prev = ""
            continue
        found = _problem(token, digest, prev if m_epoch == epoch else None, keys, row[:3] + row[5:])
        epoch, prev = m_epoch, digest
        if found:
            problems += 1
            if problems <= _MAX_PER_ORIGIN:
                yield found[0], f"movement {m_origin}:{m_epoch}:{seq}: {found[1]}", \
                    {"origin": m_origin, "epoch": m_epoch, "seq": seq}
    if origin is not None:
        yield from _summary(origin, unsigned, problems, prev, heads.get(origin, ""))


def _quick(conn: sqlite3.Connection) -> Iterator[tuple[str, str, dict]]:
    for origin, count in conn.execute(
            "SELECT origin, count(*) FROM movement WHERE token IS NULL GROUP BY origin ORDER BY origin"):
        yield from _summary(origin, count, 0, "", "")
    for origin, head, last in conn.execute(
            "SELECT s.id, s.head_hash, m.hash FROM site s JOIN movement m"
            " ON m.origin = s.id AND m.epoch = s.epoch AND m.seq = s.head_seq"
            " WHERE m.hash IS NOT NULL AND m.hash != s.head_hash ORDER BY s.id"):
        yield from _summary(origin, 0, 0, last, head)


def _problem(token: str, digest: str, prev: str | None, keys: dict, row: tuple) -> tuple[str, str] | None:
    if token_hash(token) != digest:
        return "chain", "stored hash is not the hash of its token"
    try:
        kid, raw = open_token(token, keys)
        body = parse_body(raw)
    except BadToken as exc:
        return "signature", str(exc)
    except (BadBody, ValueError) as exc:
        return "token", str(exc)
    if prev is not None and body.prev != prev:
        return "chain", f"names previous hash {body.prev[:12]}…, the previous movement's is {prev[:12]}…"
    if kid.split("#")[0] != body.origin:
        return "signature", f"signed with {kid}, a key of another site"
    said = (body.origin, body.epoch, body.seq, body.kind, body.sku, body.location, body.to_location, body.lot,
            body.d_on_hand, body.d_reserved, body.d_in_transit, body.ref_type, body.ref_id, body.ts)
    if said != row:
        wrong = [f"{f} {r!r} (token says {b!r})" for f, r, b in zip(_FIELDS, row, said) if r != b]
        return "token", "row differs from its signed token: " + ", ".join(wrong)
    return None


def _summary(origin: str, unsigned: int, problems: int, last: str, head: str) -> Iterator[tuple[str, str, dict]]:
    if unsigned:
        yield "unsigned", (f"site {origin}: {unsigned} movement(s) have no signed token (written before schema "
                           "migration 0003, or by an unsigned ledger); they do not sync"), \
            {"origin": origin, "count": unsigned}
    if problems > _MAX_PER_ORIGIN:
        yield "more", f"site {origin}: {problems - _MAX_PER_ORIGIN} more problem(s) not listed", \
            {"origin": origin, "count": problems - _MAX_PER_ORIGIN}
    if last and head != last:
        yield "chain", f"site {origin}: head_hash {head[:12]}… is not the hash of its last movement {last[:12]}…", \
            {"origin": origin}


def _keys(conn: sqlite3.Connection) -> dict[str, PublicKey]:
    keys = {}
    for kid, text in conn.execute("SELECT kid, public_key FROM site_key"):
        try:
            keys[kid] = PublicKey.parse(kid, text)
        except BadKey:
            continue   # reported as an unknown key on the movements it signed
    return keys
