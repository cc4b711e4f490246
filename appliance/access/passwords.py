"""Password hashing with Argon2id (argon2-cffi, the reference implementation's binding).

The parameters are argon2-cffi's RFC 9106 "low memory" profile: 64 MiB and 3 passes take ~0.1 s on a
Raspberry Pi 4 class CPU, slow for a guesser and still fine for a person logging in. A hash made with older
parameters is upgraded at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from appliance.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 256  # Argon2 hashes any length; a megabyte "password" is a denial of service, not a password

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# Verifying against a made-up hash keeps an unknown login as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def check_strength(password: str, login: str = "") -> None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password may have at most {MAX_LENGTH} characters", field="password")
    if login and password.lower() == login.lower():
        raise InvalidInput("the password may not be the login", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
