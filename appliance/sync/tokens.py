"""Signed tokens: `b64u(header) "." b64u(body) "." b64u(signature)`, JWS compact serialisation with EdDSA.

The signature covers the exact bytes that are stored and re-served, so nothing is ever re-serialised to be
verified (no JSON canonicalisation problem), and any site may hand on another site's token unchanged. The
hash chain links each movement to `token_hash` of the one before it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from appliance.sync.b64 import b64u, unb64u
from appliance.sync.identity import PublicKey, SigningKey

MAX_TOKEN = 16_384


class BadToken(ValueError):
    """A token that is malformed, signed by an unknown key, or whose signature does not verify."""


def header_for(kid: str) -> str:
    return b64u(json.dumps({"alg": "EdDSA", "kid": kid}, separators=(",", ":")).encode())


def sign(body: bytes, key: SigningKey, header: str | None = None) -> str:
    """`header` may be precomputed with `header_for(key.kid)`: it is the same for every token of a key."""
    signing_input = f"{header or header_for(key.kid)}.{b64u(body)}"
    return f"{signing_input}.{b64u(key.sign(signing_input.encode('ascii')))}"


def token_hash(token: str) -> str:
    return b64u(hashlib.sha256(token.encode("ascii")).digest())


def open_token(token: str, keys: Mapping[str, PublicKey]) -> tuple[str, bytes]:
    """Verify `token` against the registry `keys` (kid → public key); returns (kid, body bytes)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise BadToken(f"a token is a non-empty string of at most {MAX_TOKEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise BadToken(f"a token has 3 dot-separated parts, this one has {len(parts)}")
    try:
        header = json.loads(unb64u(parts[0]))
        body = unb64u(parts[1])
        signature = unb64u(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(f"token part is not base64url JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
        raise BadToken(f"token header must be {{'alg': 'EdDSA', 'kid': ...}}, not {header!r}")
    kid = header["kid"]
    key = keys.get(kid)
    if key is None:
        raise BadToken(f"token signed by unknown key {kid!r}")
    if not key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii")):
        raise BadToken(f"signature of key {kid!r} does not verify")
    return kid, body
