"""Trace replay: loaders, cluster specs, the event-driven engine and its metrics."""

from suanli.schedule.simulate.cluster import parse_cluster
from suanli.schedule.simulate.engine import (
    PLACEMENTS,
    JobOutcome,
    SimResult,
    SimulationError,
    replay_policy,
    simulate,
)
from suanli.schedule.simulate.metrics import Summary, jain, summarize, utilization_series
from suanli.schedule.simulate.traces import (
    Trace,
    TraceJob,
    busy_moment,
    load_throughputs,
    load_trace,
    synthetic,
)

__all__ = [
    "PLACEMENTS",
    "JobOutcome",
    "SimResult",
    "SimulationError",
    "Summary",
    "Trace",
    "TraceJob",
    "busy_moment",
    "jain",
    "load_throughputs",
    "load_trace",
    "parse_cluster",
    "replay_policy",
    "simulate",
    "summarize",
    "synthetic",
    "utilization_series",
]
