"""Job secrets at rest: encrypted (Fernet: AES-128-CBC with HMAC-SHA256, from `cryptography`) with a key
kept in SUANLI_HOME/secret.key (0600), so the database, its WAL and its backups never hold them in
clear. Only the executor decrypts them, to hand them to the job's processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from suanli.core.errors import SuanliError
from suanli.store.paths import home


def _key_path() -> Path:
    return home() / "secret.key"


def _fernet():  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    path = _key_path()
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = Fernet.generate_key()
        try:  # O_EXCL: two processes creating the key at once agree on the first one's
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        except FileExistsError:
            key = path.read_bytes()
    return Fernet(key.strip())


def seal(secrets: dict[str, str]) -> str | None:
    """The encrypted form stored with a job (None when it has no secrets)."""
    if not secrets:
        return None
    return _fernet().encrypt(json.dumps(secrets).encode()).decode()


def unseal(token: str | None) -> dict[str, str]:
    if not token:
        return {}
    from cryptography.fernet import InvalidToken

    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise SuanliError(
            f"the job's secrets cannot be decrypted with {_key_path()} (was the key replaced?)"
        ) from None
