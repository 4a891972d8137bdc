"""Shortest remaining time first (preemptive) by estimated remaining time; `srtf-oracle` is told true
durations by the simulator: the clairvoyant reference that non-clairvoyant policies are measured
against (it is near-optimal for average JCT on one machine, Schrage 1968)."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass, remaining_estimate_s
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


class Srtf:
    name = "srtf"
    preemptive = True
    clairvoyant = False

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        entries: list = []
        for r in cluster.running:
            rem = remaining_estimate_s(r.request, r.attained_s(now_s))
            entries.append(((-r.request.priority, rem, 0, r.request.submit_time_s, str(r.request.id)), r))
        for j in pending:
            rem = remaining_estimate_s(j, j.attained_s())
            entries.append(((-j.priority, rem, 1, j.submit_time_s, str(j.id)), j))
        return preemptive_pass(
            entries, cluster, consolidate=self.consolidate, reason="a job with less time left needs its GPUs"
        )


class SrtfOracle(Srtf):
    name = "srtf-oracle"
    clairvoyant = True
