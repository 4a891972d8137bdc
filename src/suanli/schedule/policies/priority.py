"""Strict priority with preemption (Kubernetes PriorityClass preemption, Slurm's preempt/qos): a
pending job preempts running jobs of strictly lower priority when that lets it start; within one
priority level jobs start first-come first-served wherever they fit."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


class StrictPriority:
    name = "priority"
    preemptive = True
    clairvoyant = False

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        entries: list = [
            ((-r.request.priority, 0, r.request.submit_time_s, str(r.request.id)), r) for r in cluster.running
        ]
        entries += [((-j.priority, 1, j.submit_time_s, str(j.id)), j) for j in pending]
        return preemptive_pass(
            entries, cluster, consolidate=self.consolidate, reason="a higher-priority job needs its GPUs"
        )
