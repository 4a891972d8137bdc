"""Tiresias's discretised two-dimensional least-attained-service (2D-LAS), Gu et al., NSDI'19, as in
its simulator (SymbioticLab/Tiresias, `dlas-gpu`): a job's attained service is GPUs x executed time;
jobs sit in K priority queues split at GPU-time thresholds (a new job enters the top queue and is
demoted when its service crosses the queue's limit); queues are served in order, within a queue
running jobs keep their place and pending jobs follow first-come first-served, and any job that
fits is started (fit-first); running jobs that no longer fit are preempted. Starvation protection: a
pending job in a lower queue whose time waiting since it last ran reaches PROMOTE_KNOB x its
executed time is promoted back to the top queue with its executed time reset."""

from __future__ import annotations

import math
from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


class Tiresias:
    name = "tiresias"
    preemptive = True
    clairvoyant = False

    def __init__(
        self,
        consolidate: bool = True,
        queue_limits_gpu_s: Sequence[float] = (3600.0,),
        promote_knob: float = 8.0,
    ) -> None:
        self.consolidate = consolidate
        self.limits = tuple(sorted(queue_limits_gpu_s))
        self.promote_knob = promote_knob
        # Executed-time bookkeeping that outlives one decision: the attained service at a job's last
        # promotion (Tiresias resets executed time there). Inputs are never mutated.
        self._base: dict = {}
        self._running: dict = {}  # job id -> (started_s, next limit crossing, queue)

    def _queue(self, executed_gpu_s: float) -> int:
        for q, limit in enumerate(self.limits):
            if executed_gpu_s < limit:
                return q
        return len(self.limits)

    def _pending_queue(self, j: JobRequest, now_s: float) -> int:
        if not j.attained_gpu_s:
            return 0
        executed = j.attained_gpu_s - self._base.get(j.id, 0.0)
        q = self._queue(executed)
        if q > 0 and self.promote_knob > 0 and j.last_preempted_s is not None and executed > 0:
            executed_s = executed / max(j.total_gpus, 1)
            if now_s - j.last_preempted_s >= self.promote_knob * executed_s - 1e-9:
                self._base[j.id] = j.attained_gpu_s
                return 0
        return q

    def _running_queue(self, r, now_s: float) -> int:
        """A running job's queue, cached with the time it next crosses a limit (decisions are
        frequent; a running job's queue only changes at those crossings)."""
        rid = r.request.id
        cached = self._running.get(rid)
        if cached is not None and cached[0] == r.started_s and now_s < cached[1]:
            return cached[2]
        executed = r.attained_gpu_s(now_s) - self._base.get(rid, 0.0)
        q = self._queue(executed)
        cross = (
            now_s + (self.limits[q] - executed) / max(r.request.total_gpus, 1)
            if q < len(self.limits)
            else math.inf
        )
        self._running[rid] = (r.started_s, cross, q)
        return q

    def _forget_finished(self, pending: Sequence[JobRequest], cluster: ClusterState) -> None:
        if len(self._base) + len(self._running) > 2 * (len(pending) + len(cluster.running)) + 256:
            live = {j.id for j in pending} | {r.request.id for r in cluster.running}
            self._base = {k: v for k, v in self._base.items() if k in live}
            self._running = {k: v for k, v in self._running.items() if k in live}

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        self._forget_finished(pending, cluster)
        entries: list = [
            ((self._running_queue(r, now_s), 0, r.started_s, str(r.request.id)), r) for r in cluster.running
        ]
        entries += [((self._pending_queue(j, now_s), 1, j.submit_time_s, str(j.id)), j) for j in pending]
        return preemptive_pass(
            entries,
            cluster,
            consolidate=self.consolidate,
            reason="a job with less attained service needs its GPUs",
        )

    def next_wake_s(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> float | None:
        """The next demotion (a running job crossing a queue limit) or promotion."""
        best = math.inf
        cache = self._running
        for r in cluster.running:
            cached = cache.get(r.request.id)
            if cached is None or cached[0] != r.started_s or cached[1] <= now_s:
                self._running_queue(r, now_s)
                cached = cache[r.request.id]
            if cached[1] < best:
                best = cached[1]
        if self.promote_knob > 0:
            for j in pending:
                if j.last_preempted_s is None or not j.attained_gpu_s:
                    continue
                executed = j.attained_gpu_s - self._base.get(j.id, 0.0)
                if executed > 0 and self._queue(executed) > 0:
                    at = j.last_preempted_s + self.promote_knob * executed / max(j.total_gpus, 1)
                    if at > now_s:
                        best = min(best, at)
        return None if best == math.inf else best
