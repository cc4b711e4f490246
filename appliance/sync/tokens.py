"""Signed tokens: `b64u(header) "." b64u(body) "." b64u(signature)`, JWS compact serialisation with EdDSA.

The signature covers the exact bytes that are stored and re-served, so nothing is ever re-serialised to be
verified (no JSON canonicalisation problem), and any site may hand on another site's token unchanged. The
hash chain links each movement to `token_hash` of the one before it.
"""

from __future__ import annotations

import functools
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


def read_token(token: str) -> tuple[str, bytes]:
    """(kid, body bytes) of a well-formed token, WITHOUT checking its signature: for a receiver that
    authenticates a contiguous run of one origin's tokens through their hash chain (inbox.py)."""
    kid, body, _, _ = _split(token, decode_signature=False)
    return kid, body


def open_token(token: str, keys: Mapping[str, PublicKey]) -> tuple[str, bytes]:
    """Verify `token` against the registry `keys` (kid → public key); returns (kid, body bytes)."""
    kid, body, signing_input, signature = _split(token)
    key = keys.get(kid)
    if key is None:
        raise BadToken(f"token signed by unknown key {kid!r}")
    if not key.verify(signature, signing_input):
        raise BadToken(f"signature of key {kid!r} does not verify")
    return kid, body


def _split(token: str, decode_signature: bool = True) -> tuple[str, bytes, bytes, bytes]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise BadToken(f"a token is a non-empty string of at most {MAX_TOKEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise BadToken(f"a token has 3 dot-separated parts, this one has {len(parts)}")
    try:
        kid = _kid(parts[0])
        body = unb64u(parts[1])
        signature = unb64u(parts[2]) if decode_signature else b""
    except BadToken:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(f"token part is not base64url JSON: {exc}") from None
    return kid, body, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


@functools.lru_cache(maxsize=64)
def _kid(encoded_header: str) -> str:
    """The kid of a header; cached, since every token of a key carries the same header."""
    header = json.loads(unb64u(encoded_header))
    if not isinstance(header, dict) or header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
        raise BadToken(f"token header must be {{'alg': 'EdDSA', 'kid': ...}}, not {header!r}")
    return header["kid"]
