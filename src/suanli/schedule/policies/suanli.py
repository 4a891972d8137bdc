"""suanli's default policy: Tiresias's discretised 2D least-attained-service for what nobody has said
how long it runs, shortest estimated remaining time for what someone has, plus what the live system
needs.

* Jobs without a stated estimate (see `JobRequest.estimate_stated`) are ranked by 2D-LAS: a new job
  gets the top queue's quantum, then is demoted; inside a queue running jobs keep their place, and
  pending ones with less *guessed* remaining time (from history, never true lengths) go first.
* A job whose user stated how long it runs (like Slurm's --time), or whose workload the estimator
  timed, sits in the queue its estimated remaining GPU-time falls in, and competes inside it by
  estimated remaining time, preempting running jobs that have more left. Past its estimate it is
  guessed to need as long again as it has overrun, so an estimate set too low buys priority only
  until it runs out, and then less and less.
* A running job is not preempted before it has run `min_run_factor` x the preemption cost, so
  checkpoint/restore overhead stays bounded.
* On a cluster with several GPU types a job goes to the fastest type with room for it, never one
  slower than `min_speed_ratio` x its best (Gavel's heterogeneity awareness).
* Tiresias's starvation promotion.

Without stated estimates it is exactly 2D-LAS with history tie-breaks; measured in docs/scheduler.md.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass, remaining_estimate_s
from suanli.schedule.policies.gavel import types_by_speed
from suanli.schedule.policies.tiresias import Tiresias
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


def stated_left_s(job: JobRequest, attained_s: float) -> float | None:
    """Time left by the job's own estimate; past it, as much again as it has overrun (a job two hours
    over is guessed to need about two hours more). None without a stated estimate."""
    if not job.estimate_stated or job.estimated_duration_s is None:
        return None
    return abs(job.estimated_duration_s - attained_s)


def _time_left(job: JobRequest) -> float:
    """What a waiting job is compared by inside its queue: stated time left, else the history guess."""
    left = stated_left_s(job, job.attained_s())
    return remaining_estimate_s(job, job.attained_s()) if left is None else left


class Suanli(Tiresias):
    name = "suanli"

    def __init__(
        self,
        consolidate: bool = True,
        queue_limits_gpu_s: Sequence[float] = (3600.0,),
        promote_knob: float = 8.0,
        preemption_cost_s: float = 0.0,
        min_run_factor: float = 10.0,
        min_speed_ratio: float = 0.5,
    ) -> None:
        super().__init__(
            consolidate=consolidate, queue_limits_gpu_s=queue_limits_gpu_s, promote_knob=promote_knob
        )
        self.min_run_s = preemption_cost_s * min_run_factor
        self.min_speed_ratio = min_speed_ratio
        self._keys: dict = {}  # sort keys that cannot change while a job waits or runs
        self._stated = False  # did the last decision see a job with a stated estimate?

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        self._forget_finished(pending, cluster)
        if len(self._keys) > 4 * (len(pending) + len(cluster.running)) + 1024:
            self._keys = {}
        entries: list = []
        keys = self._keys
        stated = False
        for r in cluster.running:
            req = r.request
            if req.estimate_stated and req.estimated_duration_s is not None:
                stated = True
                ran = r.attained_s(now_s)
                left = stated_left_s(req, ran)
                queue = self._queue(left * req.total_gpus)
                # Past its estimate it loses ties: a waiting job with as little time left goes first.
                tie = r.started_s if ran < req.estimated_duration_s else math.inf
                entries.append(((-req.priority, queue, 1, left, tie, str(req.id)), r))
                continue
            # Without a stated estimate, running jobs keep their place in their queue (2D-LAS) and
            # compare among themselves by guessed end.
            end = keys.get((req.id, r.started_s))
            if end is None:
                end = keys[(req.id, r.started_s)] = r.started_s + remaining_estimate_s(req, req.attained_s())
            queue = self._running_queue(r, now_s)
            entries.append(((-req.priority, queue, 0, end, r.started_s, str(req.id)), r))
        for j in pending:
            if j.estimate_stated and j.estimated_duration_s is not None:
                stated = True
                left = stated_left_s(j, j.attained_s())
                key = (-j.priority, self._queue(left * j.total_gpus), 1, left, j.submit_time_s, str(j.id))
            elif not j.attained_gpu_s:  # never ran: its key cannot change
                key = keys.get(j.id)
                if key is None:
                    rem = remaining_estimate_s(j, 0.0)
                    key = keys[j.id] = (-j.priority, 0, 1, rem, j.submit_time_s, str(j.id))
            else:  # may promote (resets executed service to zero)
                rem = remaining_estimate_s(j, j.attained_s())
                key = (-j.priority, self._pending_queue(j, now_s), 1, rem, j.submit_time_s, str(j.id))
            entries.append((key, j))
        self._stated = stated
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
        """Demotions and promotions (as Tiresias), a running job with a stated estimate crossing a
        queue limit or running past its estimate, and the end of a job's protection from preemption."""
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
                    waiting = sorted(x for x in map(_time_left, pending) if x < math.inf)
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
