"""Statements waiting to enter the ledger.

Code that runs where the store is not at hand (a training process writing a checkpoint, `suanli
compress` called as a library) records what it made with one call, `record`: the statement is written
to a spool folder (atomically, 0600), and the process that holds the store and the pool's key (the
agent at the attempt's end, or any `suanli ledger` command) signs it and appends it, once: each file
carries a unique id that the log refuses to append twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from suanli.core.files import private_dir, write_private

ENV = "SUANLI_LEDGER_SPOOL"
MAX_FILE_BYTES = 1 << 20


def spool_dir() -> Path:
    """SUANLI_LEDGER_SPOOL (set by suanli for each job), else the spool under SUANLI_HOME."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SUANLI_HOME") or Path.home() / ".suanli").expanduser() / "ledger-spool"


def record(kind: str, doc: dict, directory: Path | None = None) -> Path:
    """Queue the in-toto statement `doc` as a ledger entry of `kind`; returns the spooled file."""
    folder = private_dir(directory or spool_dir(), "ledger spool")
    source = f"spool:{uuid.uuid4().hex}"
    name = f"{time.time_ns():020d}-{source[6:]}.json"
    path = folder / name
    write_private(path, json.dumps({"source": source, "kind": kind, "statement": doc}, sort_keys=True))
    return path


def pending(directory: Path) -> list[tuple[Path, dict | None]]:
    """The spooled records in the order they were written; None for a file that is not one (a
    half-copied or foreign file is reported by the caller, never appended)."""
    if not directory.is_dir():
        return []
    out: list[tuple[Path, dict | None]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError("too large")
            doc = json.loads(path.read_text())
            ok = (
                isinstance(doc, dict)
                and isinstance(doc.get("statement"), dict)
                and {"source", "kind"} <= doc.keys()
            )
        except (OSError, ValueError):
            ok, doc = False, None
        out.append((path, doc if ok else None))
    return out
