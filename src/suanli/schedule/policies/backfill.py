"""EASY backfilling (Lifka 1995; Slurm's backfill scheduler, sched/backfill): jobs start in FIFO order;
when the head job does not fit, it gets a reservation at the earliest time enough running jobs will
have ended (by their estimates), and a later job may jump ahead only if it fits now and either ends
before that reservation or leaves the head job's reserved resources untouched."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.placement import FreeSpace
from suanli.schedule.policies._common import fifo_key, remaining_estimate_s
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, Start


class EasyBackfill:
    name = "backfill"
    preemptive = False
    clairvoyant = False
    idle_until_release = "fit"  # simulator shortcut: see engine.simulate

    def __init__(self, consolidate: bool = True) -> None:
        self.consolidate = consolidate

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        order = sorted(pending, key=fifo_key)
        free = FreeSpace(cluster.nodes)
        out = Decisions()
        head_at = None
        for idx, job in enumerate(order):
            placement = free.place(job, consolidate=self.consolidate)
            if placement is None:
                head_at = idx
                break
            free.take(placement)
            out.starts.append(Start(job.id, placement))
        if head_at is None:
            return out
        head = order[head_at]
        # The head's reservation: release running jobs in order of their expected end until it fits.
        future = FreeSpace(cluster.nodes)
        for start in out.starts:
            future.take(start.placement)
        ends = sorted(
            (
                (r.started_s + remaining_estimate_s(r.request, r.request.attained_s()), str(r.request.id), r)
                for r in cluster.running
            ),
            key=lambda e: (e[0], e[1]),
        )
        shadow_s = float("inf")
        for end_s, _, r in ends:
            future.release(r.placement)
            if future.place(head, consolidate=self.consolidate) is not None:
                shadow_s = end_s
                break
        explain = cluster.explain
        if explain:
            out.waiting[head.id] = free.largest_block(head) + (
                f"; reserved start at {shadow_s:.0f} s" if shadow_s != float("inf") else ""
            )
        for job in order[head_at + 1 :]:
            placement = free.place(job, consolidate=self.consolidate)
            if placement is None:
                if explain:
                    out.waiting[job.id] = free.largest_block(job)
                continue
            end_s = now_s + remaining_estimate_s(job, job.attained_s())
            if end_s > shadow_s or shadow_s == float("inf"):
                future.take(placement)
                if future.place(head, consolidate=self.consolidate) is None:
                    future.release(placement)
                    if explain:
                        out.waiting[job.id] = f"would delay job {head.id}'s reserved start (EASY backfill)"
                    continue
            free.take(placement)
            out.starts.append(Start(job.id, placement))
        return out
