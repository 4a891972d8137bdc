"""Where suanli keeps its state on this machine: SUANLI_HOME (default ~/.suanli), a folder only its
user can enter (0700), with every file in it 0600."""

from __future__ import annotations

import os
from pathlib import Path

from suanli.core.files import private_dir, touch_private


def home() -> Path:
    path = Path(os.environ.get("SUANLI_HOME") or Path.home() / ".suanli").expanduser()
    return private_dir(path, "SUANLI_HOME")


def default_db_url() -> str:
    """SUANLI_DB_URL if set (e.g. postgresql://...), else SQLite under SUANLI_HOME."""
    return normalize_db_url(os.environ.get("SUANLI_DB_URL") or f"sqlite:///{home() / 'suanli.db'}")


def normalize_db_url(url: str) -> str:
    """One spelling per database, so the agent and the CLI agree on which one they mean."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (None for in-memory databases and other engines)."""
    if not url.startswith("sqlite") or ":memory:" in url:
        return None
    path = url.split("///", 1)[1] if "///" in url else ""
    return Path(path.split("?", 1)[0]) if path else None


def prepare_sqlite(url: str) -> None:
    """Create the database file 0600 before SQLite does (SQLite would follow the umask)."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        touch_private(path)


def logs_dir() -> Path:
    return private_dir(home() / "logs", "logs folder")
