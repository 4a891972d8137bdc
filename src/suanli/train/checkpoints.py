"""Checkpoints written atomically (temporary file, fsync, rename), so a crash mid-write never leaves a
partial checkpoint that a resumed run could load."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")


def checkpoint_dir() -> Path:
    """SUANLI_CHECKPOINT_DIR (set by suanli per job, the same for every attempt), else ./checkpoints."""
    return Path(os.environ.get("SUANLI_CHECKPOINT_DIR") or "checkpoints")


def save_atomic(state: dict[str, Any], serial: int, directory: Path | None = None, keep: int = 2) -> Path:
    """Write `state` as checkpoint number `serial`; keep the newest `keep` complete ones."""
    import torch

    directory = directory or checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"ckpt-{serial:09d}.pt"
    tmp = directory / f".ckpt-{serial:09d}.pt.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    for old in sorted(p for p in directory.iterdir() if _NAME.match(p.name))[:-keep]:
        old.unlink(missing_ok=True)
    return final


def latest(directory: Path | None = None) -> Path | None:
    """The newest complete checkpoint (temporary files are never considered)."""
    directory = directory or checkpoint_dir()
    if not directory.is_dir():
        return None
    done = sorted(p for p in directory.iterdir() if _NAME.match(p.name))
    return done[-1] if done else None


def load(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)
