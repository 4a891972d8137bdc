"""suanli (算力): spend compute well — estimate, plan, schedule, run, compress, watch and record.

The package imports lazily so that `import suanli` (and the CLI) stays fast and never pulls in torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "suanli.api",
    "JobSpec": "suanli.jobs.spec",
    "JobState": "suanli.jobs.states",
    "load_spec": "suanli.jobs.spec",
    "Resources": "suanli.core.resources",
    "SuanliError": "suanli.core.errors",
    "BadInput": "suanli.core.errors",
    "Stage": "suanli.flow",
    "run": "suanli.flow",
    "estimate_train": "suanli.estimate",
    "estimate_infer": "suanli.estimate",
}

__all__ = sorted([*_EXPORTS, "estimate"])


def __getattr__(name: str) -> Any:
    if name == "estimate":  # the subpackage, callable: suanli.estimate(params=7e9, tokens=1e12, ...)
        return import_module("suanli.estimate")
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'suanli' has no attribute {name!r}")
