"""A site's Ed25519 identity: its signing key (on this box only) and the public keys of every site.

Ed25519 rather than a shared HMAC key: verification keys are public, so only the origin can sign, and any
box can re-serve another site's movements (filling a gap while the origin is offline) without being able to
forge them.

The private key file is JSON `{"site", "kid", "ed25519_private"}` (raw key, base64url), written with mode
0600 and refused if group or others can read it. Public keys travel as text `ed25519:<base64url>` with their
key id `SITE#n`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from appliance.errors import InvalidInput
from appliance.sync.b64 import b64u, unb64u

KID = re.compile(r"^([A-Z][A-Z0-9]{1,7})#([1-9][0-9]{0,5})$")
PUBLIC_PREFIX = "ed25519:"


class BadKey(InvalidInput):
    code = "bad_key"


@dataclass(frozen=True)
class PublicKey:
    kid: str
    raw: bytes

    @property
    def site(self) -> str:
        return self.kid.split("#", 1)[0]

    def text(self) -> str:
        return PUBLIC_PREFIX + b64u(self.raw)

    @classmethod
    def parse(cls, kid: str, text: str) -> "PublicKey":
        if not KID.fullmatch(kid or ""):
            raise BadKey(f"key id {kid!r} must look like BER#1", field="kid")
        if not isinstance(text, str) or not text.startswith(PUBLIC_PREFIX):
            raise BadKey(f"public key {text!r} must start with {PUBLIC_PREFIX!r}", field="public_key")
        try:
            raw = unb64u(text[len(PUBLIC_PREFIX):])
        except ValueError as exc:
            raise BadKey(f"public key of {kid}: {exc}", field="public_key") from None
        if len(raw) != 32:
            raise BadKey(f"public key of {kid} has {len(raw)} bytes, an Ed25519 key has 32", field="public_key")
        return cls(kid, raw)

    @functools.cached_property
    def _loaded(self) -> Ed25519PublicKey:
        # Loading costs about as much as verifying; a receiver verifies thousands of tokens per key.
        return Ed25519PublicKey.from_public_bytes(self.raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self._loaded.verify(signature, data)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    kid: str
    _private: Ed25519PrivateKey

    @property
    def site(self) -> str:
        return self.kid.split("#", 1)[0]

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.kid, self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def to_json(self) -> str:
        raw = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return json.dumps({"site": self.site, "kid": self.kid, "ed25519_private": b64u(raw)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "key") -> "SigningKey":
        try:
            data = json.loads(text)
            kid, encoded = data["kid"], data["ed25519_private"]
        except (ValueError, TypeError, KeyError) as exc:
            raise BadKey(f"{source}: not a site key file ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(kid, str) or not KID.fullmatch(kid):
            raise BadKey(f"{source}: key id {kid!r} must look like BER#1", field="kid")
        if data.get("site") != kid.split("#", 1)[0]:
            raise BadKey(f"{source}: site {data.get('site')!r} does not match key id {kid}", field="site")
        try:
            raw = unb64u(encoded)
        except (ValueError, TypeError) as exc:
            raise BadKey(f"{source}: private key: {exc}", field="ed25519_private") from None
        if len(raw) != 32:
            raise BadKey(f"{source}: private key has {len(raw)} bytes, an Ed25519 key has 32",
                            field="ed25519_private")
        return cls(kid, Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_seed(cls, kid: str, seed: bytes) -> "SigningKey":
        """A fixed key from 32 bytes: for tests and benchmarks, which need the same key in every process."""
        if not KID.fullmatch(kid):
            raise BadKey(f"key id {kid!r} must look like BER#1", field="kid")
        return cls(kid, Ed25519PrivateKey.from_private_bytes(seed))


def generate(site: str, number: int = 1) -> SigningKey:
    kid = f"{site}#{number}"
    if not KID.fullmatch(kid):
        raise BadKey(f"key id {kid!r} must look like BER#1", field="kid")
    return SigningKey(kid, Ed25519PrivateKey.generate())


def write_key_file(key: SigningKey, path: Path) -> None:
    """Create `path` with mode 0600; never overwrite an existing key (a site's identity is not replaced silently)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key.to_json())
        out.flush()
        os.fsync(out.fileno())


def read_key_file(path: Path) -> SigningKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadKey(f"site key {path} does not exist (`appliance init` creates it)", field="key_file") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadKey(f"site key {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
                        f"chmod 600 {path}", field="key_file")
    return SigningKey.from_json(path.read_text(encoding="utf-8"), source=str(path))
