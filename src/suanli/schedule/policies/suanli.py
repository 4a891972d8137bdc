"""suanli's default policy: Tiresias's discretised 2D least-attained-service for what nobody has said
how long it runs, shortest estimated remaining time for what someone has, plus what the live system
needs.

* Jobs without a stated estimate are ranked as the published Tiresias simulator ranks them
  (`tiresias.py`: 3 queues split at 3,250 and 7,200 GPU-seconds, each an ordered list), except that
  a running job that fits in one node leads its queue: one just demoted keeps its GPUs instead of
  going behind the jobs waiting there (a multi-node gang still does, as published). Guesses from
  other jobs' history are not used to reorder them: measured, they made average JCT worse
  (docs/scheduler.md, "Matching the published Tiresias simulator").
* Groups (teams, else users) share each queue max-min: inside a queue the group with the fewest GPUs
  ranked so far goes next (`fair_interleave`), and while jobs of more than one group are present a
  waiting job that has waited `group_promote_knob` x its executed time goes back to the top queue
  (the published `dlas-gpu-K` rule). With one group both are off: the ranking is the one above.
* A job whose user stated how long it runs (like Slurm's --time), or whose workload the estimator
  timed, sits in the queue its estimated remaining GPU-time falls in, and competes inside it by
  estimated remaining time (ahead of the jobs that stated nothing), preempting running jobs that have
  more left. Past its estimate it is guessed to need as long again as it has overrun, so an estimate
  set too low buys priority only until it runs out, and then less and less.
* A running job is not preempted before it has run `min_run_factor` x the preemption cost, so
  checkpoint/restore overhead stays bounded.
* On a cluster with several GPU types a job goes to the fastest type with room for it, never one
  slower than `min_speed_ratio` x its best (Gavel's heterogeneity awareness).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass
from suanli.schedule.policies.gavel import types_by_speed
from suanli.schedule.policies.tiresias import PUBLISHED_LIMITS_GPU_S, Tiresias
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, RunningJob


def stated_left_s(job: JobRequest, attained_s: float) -> float | None:
    """Time left by the job's own estimate; past it, as much again as it has overrun (a job two hours
    over is guessed to need about two hours more). None without a stated estimate."""
    if not job.estimate_stated or job.estimated_duration_s is None:
        return None
    return abs(job.estimated_duration_s - attained_s)


def several_groups(pending: Sequence[JobRequest], cluster: ClusterState) -> bool:
    """Do the waiting and running jobs belong to more than one group?"""
    first = None
    for req in (*pending, *(r.request for r in cluster.running)):
        if first is None:
            first = req.group
        elif req.group != first:
            return True
    return False


def fair_interleave(entries: list) -> list:
    """Share each priority level between groups (teams, else users): inside every block of entries
    with the same (priority, queue), take next the group that has the fewest GPUs ranked so far
    (counted from the first block on), keeping each group's own order; ties go to the entry ranked
    first. A progressive-filling (max-min) order: no group's jobs beyond its share rank ahead of
    another's within it. With one group the order is unchanged."""
    if len({(e[1].request if isinstance(e[1], RunningJob) else e[1]).group for e in entries}) < 2:
        return entries
    ordered = sorted(entries, key=lambda e: e[0])
    held: dict[str, int] = {}
    out: list = []
    start = 0
    while start < len(ordered):
        level = ordered[start][0][:2]
        end = start
        lists: dict[str, list] = {}
        while end < len(ordered) and ordered[end][0][:2] == level:
            item = ordered[end][1]
            req = item.request if isinstance(item, RunningJob) else item
            lists.setdefault(req.group, []).append((end, req.total_gpus, item))
            end += 1
        heap = [(held.get(g, 0), jobs[0][0], g, 0) for g, jobs in lists.items()]
        heapq.heapify(heap)
        while heap:
            _, _, g, i = heapq.heappop(heap)
            _, gpus, item = lists[g][i]
            out.append(((*level, len(out)), item))
            held[g] = held.get(g, 0) + gpus
            if i + 1 < len(lists[g]):
                heapq.heappush(heap, (held[g], lists[g][i + 1][0], g, i + 1))
        start = end
    return out


class Suanli(Tiresias):
    name = "suanli"

    def __init__(
        self,
        consolidate: bool = True,
        queue_limits_gpu_s: Sequence[float] = PUBLISHED_LIMITS_GPU_S,
        promote_knob: float = 0.0,
        preemption_cost_s: float = 0.0,
        min_run_factor: float = 10.0,
        min_speed_ratio: float = 0.5,
        fair_groups: bool = True,
        group_promote_knob: float = 16.0,
    ) -> None:
        super().__init__(
            consolidate=consolidate, queue_limits_gpu_s=queue_limits_gpu_s, promote_knob=promote_knob
        )
        self.min_run_s = preemption_cost_s * min_run_factor
        self.min_speed_ratio = min_speed_ratio
        self.fair_groups = fair_groups
        self.group_promote_knob = group_promote_knob
        self._stated = False  # did the last decision see a job with a stated estimate?

    def _knob(self, pending: Sequence[JobRequest], cluster: ClusterState) -> float:
        """`promote_knob` when set; otherwise `group_promote_knob` while jobs of more than one group
        are waiting or running (starvation protection is a fairness rule, and with one group there is
        nobody to be fair to), else no promotion, as the published `dlas-gpu`."""
        if self.promote_knob > 0 or not self.fair_groups or self.group_promote_knob <= 0:
            return self.promote_knob
        return self.group_promote_knob if several_groups(pending, cluster) else 0.0

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        jobs = self._sync(pending, cluster, now_s)
        entries: list = []
        stated = False
        node_gpus = max((n.gpus for n in cluster.nodes), default=0)
        for q, ids in enumerate(self._queues):
            for k, jid in enumerate(ids):
                item = jobs[jid]
                running = isinstance(item, RunningJob)
                req = item.request if running else item
                ran = item.attained_s(now_s) if running else item.attained_s()
                left = stated_left_s(req, ran)
                if left is None:  # 2D-LAS: its place in its queue (running jobs within a node lead)
                    lead = running and req.total_gpus <= node_gpus
                    key = (-req.priority, q, 0 if lead else 1, math.inf, k, str(jid))
                else:
                    stated = True
                    # Past its estimate a running job loses ties to a waiting job with as little left.
                    tie = k if not running or ran < req.estimated_duration_s else math.inf
                    key = (-req.priority, self._queue(left * req.total_gpus), 1, left, tie, str(jid))
                entries.append((key, item))
        self._stated = stated
        if self.fair_groups:
            entries = fair_interleave(entries)
        min_run = self.min_run_s
        types = list(dict.fromkeys(n.gpu_type for n in cluster.nodes))
        ratio = self.min_speed_ratio
        return preemptive_pass(
            entries,
            cluster,
            consolidate=self.consolidate,
            may_preempt=(lambda r: now_s - r.started_s >= min_run) if min_run > 0 else None,
            reason="a job ahead of it (less attained service or less time left) needs its GPUs",
            types_for=(lambda j: types_by_speed(j, types, ratio)) if len(types) > 1 else None,
        )

    def next_wake_s(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> float | None:
        """Demotions (as Tiresias), a running job with a stated estimate crossing a queue limit or
        running past its estimate, and the end of a job's protection from preemption."""
        best = super().next_wake_s(pending, cluster, now_s)
        best = math.inf if best is None else best
        waiting: list[float] | None = None
        for r in cluster.running if self._stated else ():
            req = r.request
            if not req.estimate_stated or req.estimated_duration_s is None:
                continue
            gpus = max(req.total_gpus, 1)
            ran = r.attained_s(now_s)
            # Time left falls to 0 at the estimate, then grows: the estimate and every limit
            # crossing on either side of it are the moments its rank can change.
            for at in (req.estimated_duration_s, *(req.estimated_duration_s + s * lim / gpus
                                                   for lim in self.limits for s in (-1, 1))):  # fmt: skip
                if at > ran:
                    best = min(best, now_s + at - ran)
            if ran >= req.estimated_duration_s:  # overrun: its time left grows past waiting jobs' own
                if waiting is None:
                    waiting = sorted(
                        left for j in pending if (left := stated_left_s(j, j.attained_s())) is not None
                    )
                left = ran - req.estimated_duration_s
                k = bisect_right(waiting, left)
                if k < len(waiting):
                    best = min(best, now_s + waiting[k] - left)
        if self.min_run_s > 0 and pending:
            for r in cluster.running:
                until = r.started_s + self.min_run_s
                if until > now_s:
                    best = min(best, until)
        return None if best == math.inf else best
