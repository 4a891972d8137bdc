"""Where suanli keeps its state on this machine: SUANLI_HOME (default ~/.suanli)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    path = Path(os.environ.get("SUANLI_HOME") or Path.home() / ".suanli").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_url() -> str:
    """SUANLI_DB_URL if set (e.g. postgresql://...), else SQLite under SUANLI_HOME."""
    return normalize_db_url(os.environ.get("SUANLI_DB_URL") or f"sqlite:///{home() / 'suanli.db'}")


def normalize_db_url(url: str) -> str:
    """One spelling per database, so the agent and the CLI agree on which one they mean."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def logs_dir() -> Path:
    path = home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
