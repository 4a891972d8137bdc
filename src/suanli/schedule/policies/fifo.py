"""Strict FIFO: jobs start in order (higher priority first, then submission time); the first job that
does not fit blocks every job behind it. This is the baseline published simulators call FIFO."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.policies._common import fifo_key, fit_first
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


class Fifo:
    name = "fifo"
    preemptive = False
    clairvoyant = False
    idle_until_release = "strict"  # simulator shortcut: see engine.simulate

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        return fit_first(
            sorted(pending, key=fifo_key),
            cluster,
            consolidate=self.consolidate,
            blocking=True,
            why_later="FIFO order",
        )
