"""Shortest job first (non-preemptive, fit-first) by estimated duration; `sjf-oracle` is told true
durations by the simulator and exists only as a reference point (no real scheduler knows them)."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.policies._common import fit_first, remaining_estimate_s
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


class Sjf:
    name = "sjf"
    preemptive = False
    clairvoyant = False
    idle_until_release = "fit"  # simulator shortcut: see engine.simulate

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        def key(j: JobRequest) -> tuple:
            return (-j.priority, remaining_estimate_s(j, 0.0), j.submit_time_s, str(j.id))

        return fit_first(sorted(pending, key=key), cluster, consolidate=self.consolidate)


class SjfOracle(Sjf):
    name = "sjf-oracle"
    clairvoyant = True
