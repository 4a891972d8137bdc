"""Persistence: SQLAlchemy models and the one module (store.py) that writes state."""

from suanli.store.records import AttemptRecord, EventRecord, JobRecord, NodeRecord
from suanli.store.store import MetricPoint, Store

__all__ = ["AttemptRecord", "EventRecord", "JobRecord", "MetricPoint", "NodeRecord", "Store"]
