"""Model compression: quantise (ONNX Runtime, torchao), prune structurally and distil to an accuracy
budget, measured on the target, each candidate evaluated in its own process.

`compress(...)` is the entry point; `load(path)` runs a compressed model. No torch at import time.
"""

from __future__ import annotations

from typing import Any

from suanli.compress.search import compress
from suanli.compress.spec import Budget, Method, Recipe, parse_budget, parse_methods, parse_task


def load(path: str, threads: int = 2, device: str = "cpu") -> Any:
    """A callable that runs the compressed model in `path` (arrays in/out, or sentences to embeddings)."""
    from suanli.compress.models import load as _load

    return _load(path, threads=threads, device=device)


__all__ = ["Budget", "Method", "Recipe", "compress", "load", "parse_budget", "parse_methods", "parse_task"]
