"""Secrets (MQTT and SMTP passwords): never in the TOML, which is world-readable on most boxes and ends up in
backups and bug reports. systemd's `LoadCredential=` puts them in `$CREDENTIALS_DIRECTORY`, readable only by the
service; the environment is the fallback for development and containers.
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance.errors import ConfigError

CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"


def read_secret(name: str, env: str) -> str | None:
    """`$CREDENTIALS_DIRECTORY/<name>` if that file exists, else `$<env>`, else None.

    Empty values count as unset. One trailing newline is dropped: `echo pw > file` is how most people write one.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"credential name {name!r} must be a plain file name")
    directory = os.environ.get(CREDENTIALS_DIRECTORY)
    if directory:
        path = Path(directory) / name
        if path.is_file():
            try:
                value = path.read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError([f"{path}: cannot read credential {name}: {error.strerror}"]) from None
            except UnicodeDecodeError:
                raise ConfigError([f"{path}: credential {name} is not UTF-8 text"]) from None
            value = value.removesuffix("\n").removesuffix("\r")
            return value or None
    return os.environ.get(env) or None
