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
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'suanli' has no attribute {name!r}")
