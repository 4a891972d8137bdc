"""Persistence: SQLAlchemy models and the one module (store.py) that writes state.

Exports resolve lazily so that light modules (paths) can be imported without SQLAlchemy."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AttemptRecord": "suanli.store.records",
    "EventRecord": "suanli.store.records",
    "JobRecord": "suanli.store.records",
    "NodeRecord": "suanli.store.records",
    "MetricPoint": "suanli.store.store",
    "Store": "suanli.store.store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'suanli.store' has no attribute {name!r}")
