"""Check each origin's log as a signed hash chain: every row matches its token, every token names the hash
of the one before, the site row's head_hash is the last one, and (optionally) every signature verifies.

Signatures are optional because verifying costs ~0.1 ms a movement (minutes on a big ledger); the hash chain
alone already proves the rows are what was received, given that the receiver verified them on arrival.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from appliance.ledger.movement_token import BadBody, parse_body
from appliance.sync.b64 import unb64u
from appliance.sync.identity import BadKey, PublicKey
from appliance.sync.tokens import BadToken, open_token, token_hash

_ROWS = """
SELECT m.origin, m.epoch, m.seq, m.token, m.hash, m.kind, v.sku, l.code, t.code, m.lot, m.d_on_hand, m.d_reserved,
       m.d_in_transit, m.ref_type, m.ref_id, m.ts
FROM movement m JOIN variant v ON v.id = m.variant_id JOIN location l ON l.id = m.location_id
LEFT JOIN location t ON t.id = m.to_location_id
ORDER BY m.origin, m.epoch, m.seq"""

_MAX_PER_ORIGIN = 20   # beyond this, one summary line: a broken chain breaks everything after it


def chain_problems(conn: sqlite3.Connection, *, signatures: bool = False) -> Iterator[tuple[str, str, dict]]:
    """(what, message, details) for every problem found, in log order."""
    keys = _keys(conn) if signatures else {}
    heads = dict(conn.execute("SELECT id, head_hash FROM site"))
    origin = epoch = None
    prev = ""
    unsigned = problems = 0
    for row in conn.execute(_ROWS):
        (m_origin, m_epoch, seq, token, digest, kind, sku, loc, to_loc, lot, d_on_hand, d_reserved, d_in_transit,
         ref_type, ref_id, ts) = row
        if m_origin != origin:
            if origin is not None:
                yield from _summary(origin, unsigned, problems, prev, heads.get(origin, ""))
            origin, epoch, prev, unsigned, problems = m_origin, m_epoch, "", 0, 0
        where = {"origin": m_origin, "epoch": m_epoch, "seq": seq}
        label = f"{m_origin}:{m_epoch}:{seq}"
        if token is None:
            unsigned += 1
            prev = ""
            continue
        found = _problem(token, digest, prev if m_epoch == epoch else None, keys, signatures, (
            m_origin, m_epoch, seq, kind, sku, loc, to_loc, lot, d_on_hand, d_reserved, d_in_transit, ref_type,
            ref_id, ts))
        epoch, prev = m_epoch, digest
        if found:
            problems += 1
            if problems <= _MAX_PER_ORIGIN:
                yield found[0], f"movement {label}: {found[1]}", where
    if origin is not None:
        yield from _summary(origin, unsigned, problems, prev, heads.get(origin, ""))


def _problem(token: str, digest: str, prev: str | None, keys: dict, signatures: bool,
             row: tuple) -> tuple[str, str] | None:
    if token_hash(token) != digest:
        return "chain", "stored hash is not the hash of its token"
    try:
        if signatures:
            kid, raw = open_token(token, keys)
        else:
            kid, raw = None, unb64u(token.split(".")[1])
        body = parse_body(raw)
    except (BadToken, BadBody, ValueError, IndexError) as exc:
        return ("signature" if isinstance(exc, BadToken) else "token"), str(exc)
    if kid is not None and kid.split("#")[0] != body.origin:
        return "signature", f"signed with {kid}, a key of another site"
    if prev is not None and body.prev != prev:
        return "chain", f"names previous hash {body.prev[:12]}…, the previous movement's is {prev[:12]}…"
    said = (body.origin, body.epoch, body.seq, body.kind, body.sku, body.location, body.to_location, body.lot,
            body.d_on_hand, body.d_reserved, body.d_in_transit, body.ref_type, body.ref_id, body.ts)
    if said != row:
        fields = ("origin", "epoch", "seq", "kind", "sku", "location", "to_location", "lot", "d_on_hand",
                  "d_reserved", "d_in_transit", "ref_type", "ref_id", "ts")
        wrong = [f"{f} {r!r} (token says {b!r})" for f, r, b in zip(fields, row, said) if r != b]
        return "token", "row differs from its signed token: " + ", ".join(wrong)
    return None


def _summary(origin: str, unsigned: int, problems: int, last: str, head: str) -> Iterator[tuple[str, str, dict]]:
    if unsigned:
        yield "unsigned", (f"site {origin}: {unsigned} movement(s) have no signed token (written before schema "
                           "migration 0003, or by an unsigned ledger); they do not sync"), \
            {"origin": origin, "count": unsigned}
    if problems > _MAX_PER_ORIGIN:
        yield "chain", f"site {origin}: {problems - _MAX_PER_ORIGIN} more problem(s) not listed", \
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
