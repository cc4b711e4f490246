"""The key that signs session cookies: from the credential, else a random one kept beside the database.

The file is created once (written aside and linked into place), so gunicorn workers starting together agree on one key, and it survives
restarts (a new key would log everybody out).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from appliance.errors import ConfigError

MIN_LENGTH = 32


def path_for(db_path: Path) -> Path:
    return Path(db_path).parent / "web-secret.key"


def load(configured: str | None, db_path: Path) -> str:
    if configured is not None:
        if len(configured) < MIN_LENGTH:
            raise ConfigError([f"web.secret_key: must have at least {MIN_LENGTH} characters"])
        return configured
    path = path_for(db_path)
    if not path.exists():
        # Written aside, then linked into place: a worker starting at the same moment sees no file or a whole one.
        value = secrets.token_urlsafe(48)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    value = path.read_text(encoding="ascii").strip()
    if len(value) < MIN_LENGTH:
        raise ConfigError([f"{path}: the session key is shorter than {MIN_LENGTH} characters; delete the file "
                           "to make a new one (everybody logs in again)"])
    return value
