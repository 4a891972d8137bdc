"""Dominant-resource fair share with guaranteed quotas and borrowing: DRF (Ghodsi et al., NSDI'11)
orders groups (teams, else users) by their dominant share of the cluster, and Kueue's ClusterQueue
model gives each group a nominal quota that is guaranteed: a group under its quota may reclaim GPUs
that other groups borrowed beyond theirs (preempting the borrowers' newest jobs); idle quota can be
borrowed by anyone while nobody claims it."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from suanli.schedule.placement import FreeSpace
from suanli.schedule.policies._common import fifo_key
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, Preempt, RunningJob, Start


class DominantResourceFair:
    name = "drf"
    clairvoyant = False

    def __init__(
        self,
        consolidate: bool = True,
        quotas: Mapping[str, int] | None = None,
        weights: Mapping[str, float] | None = None,
        borrowing: bool = True,
        weights_from: str | None = None,
    ) -> None:
        if weights_from not in (None, "contribution"):
            from suanli.core.errors import BadInput

            raise BadInput("scheduler.options.weights_from", weights_from, "must be contribution (or absent)")
        self.consolidate = consolidate
        self.quotas = dict(quotas or {})
        self.weights = dict(weights or {})
        # "contribution": the live scheduler sets `weights` from what each owner gave the pool
        # (monitor/owners.py), over any stated weights.
        self.weights_from = weights_from
        self.borrowing = borrowing
        self.preemptive = bool(self.quotas)
        # With no quotas given, the live scheduler gives it the projects' concurrent-GPU quotas.
        self.shares_from_quotas = not self.quotas
        self.idle_until_release = "fit"  # simulator shortcut (non-preemptive mode only)

    def use_shares(self, quotas: Mapping[str, int]) -> None:
        """Take guaranteed shares from the team's quota settings (the live scheduler, every pass)."""
        self.quotas = dict(quotas)
        self.preemptive = bool(self.quotas)

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        total_g = sum(n.gpus for n in cluster.nodes) or 1
        total_c = sum(n.cpus for n in cluster.nodes) or 1.0
        total_m = sum(n.memory_bytes for n in cluster.nodes) or 1
        used: dict[str, list[float]] = {}
        holders: dict[str, list[RunningJob]] = {}
        for r in cluster.running:
            u = used.setdefault(r.request.group, [0.0, 0.0, 0.0])
            for s in r.placement:
                u[0] += s.gpus
                u[1] += s.cpus
                u[2] += s.memory_bytes
            holders.setdefault(r.request.group, []).append(r)

        def share(g: str) -> float:
            u = used.get(g, (0.0, 0.0, 0.0))
            return max(u[0] / total_g, u[1] / total_c, u[2] / total_m) / self.weights.get(g, 1.0)

        queues: dict[str, list[JobRequest]] = {}
        for j in pending:
            queues.setdefault(j.group, []).append(j)
        heap = []
        for g, jobs in queues.items():
            jobs.sort(key=fifo_key, reverse=True)  # pop() takes the best
            heap.append((share(g), g))
        heapq.heapify(heap)
        free = FreeSpace(cluster.nodes)
        out = Decisions()
        preempted: set = set()
        explain = cluster.explain
        while heap:
            if not explain and free.free_gpus() == 0 and not self.quotas:
                break
            _, g = heapq.heappop(heap)
            job = queues[g].pop()
            placement = free.place(job, consolidate=self.consolidate)
            quota = self.quotas.get(g)
            in_quota = quota is not None and used.get(g, [0.0])[0] + job.total_gpus <= quota
            if quota is not None and not in_quota and not self.borrowing and self.quotas:
                placement = None
                if explain:
                    out.waiting[job.id] = f"group {g} is at its quota of {quota} GPUs"
            elif placement is None and in_quota:
                placement = self._reclaim(job, free, holders, preempted, out)
            if placement is None:
                if explain and job.id not in out.waiting:
                    out.waiting[job.id] = free.largest_block(job) + f" (group {g}'s fair share comes first)"
            else:
                free.take(placement)
                out.starts.append(Start(job.id, placement))
                u = used.setdefault(g, [0.0, 0.0, 0.0])
                for s in placement:
                    u[0] += s.gpus
                    u[1] += s.cpus
                    u[2] += s.memory_bytes
            if queues[g]:
                heapq.heappush(heap, (share(g), g))
        return out

    def _reclaim(self, job, free: FreeSpace, holders, preempted: set, out: Decisions):
        """Preempt borrowers (groups above their quota), newest jobs first, until `job` fits."""
        usage = {
            g: sum(s.gpus for r in rs if r.request.id not in preempted for s in r.placement)
            for g, rs in holders.items()
        }
        victims = sorted(
            (
                r
                for g, rs in holders.items()
                for r in rs
                if usage[g] > self.quotas.get(g, 0) and r.request.id not in preempted
            ),
            key=lambda r: (r.started_s, r.request.submit_time_s, str(r.request.id)),
            reverse=True,  # newest first
        )
        chosen = []
        for r in victims:
            g = r.request.group
            if usage[g] - r.request.total_gpus < self.quotas.get(g, 0) and self.quotas.get(g, 0) > 0:
                continue  # would push the borrower below its own guarantee
            free.release(r.placement)
            usage[g] -= r.request.total_gpus
            chosen.append(r)
            placement = free.place(job, consolidate=self.consolidate)
            if placement is not None:
                for v in chosen:
                    preempted.add(v.request.id)
                    out.preemptions.append(Preempt(v.request.id, f"group {job.group} reclaims its quota"))
                return placement
        for r in chosen:
            free.take(r.placement)
        return None
