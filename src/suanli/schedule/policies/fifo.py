"""Strict FIFO: jobs start in order (higher priority first, then submission time); the first job that
does not fit blocks every job behind it. This is the baseline published simulators call FIFO."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.placement import FreeSpace
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, Start


class Fifo:
    name = "fifo"

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        free = FreeSpace(cluster.nodes)
        out = Decisions()
        blocked_by = None
        for job in sorted(pending, key=lambda j: (-j.priority, j.submit_time_s, str(j.id))):
            if blocked_by is not None:
                out.waiting[job.id] = f"behind job {blocked_by} (FIFO order)"
                continue
            placement = free.place(job, consolidate=self.consolidate)
            if placement is None:
                out.waiting[job.id] = free.largest_block(job)
                blocked_by = job.id
                continue
            free.take(placement)
            out.starts.append(Start(job.id, placement))
        return out
