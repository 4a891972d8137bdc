"""Tiresias's discretised two-dimensional least-attained-service (2D-LAS), Gu et al., NSDI'19, as its
published simulator runs it (SymbioticLab/Tiresias, `simulator/run_sim.py`, `dlas_sim_jobs` with
`--schedule=dlas-gpu`; measured against it in docs/scheduler.md):

* a job's attained service is GPUs x executed seconds; jobs sit in 3 priority queues split at 3,250
  and 7,200 GPU-seconds (`jobs.py`: `num_queue = 3`, `queue_limit = [3250, 7200, 18000]`, the last
  limit unused);
* each queue is a list: a new job is appended to the top queue, a job crossing its queue's limit is
  appended to the next queue (behind the jobs waiting there), one queue per decision; after every
  decision the jobs running in a queue move ahead of those waiting, both keeping their order (so a
  job just preempted goes to the head of the waiting ones);
* every decision walks the queues in order and keeps or starts each job that still fits in what the
  jobs before it left (fit-first); a running job that no longer fits is preempted;
* `dlas-gpu` has no starvation rule. `promote_knob` > 0 turns on the simulator's `dlas-gpu-K` rule:
  a waiting job in a lower queue whose waiting time since it first ran (since its last promotion)
  reaches K x its executed time goes back to the end of the top queue with its executed time reset.

The lists are bookkeeping kept between decisions, as the published simulator keeps them; the policy
reads them with its inputs and never mutates the inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, RunningJob

# jobs.py `_TFJobs.__init__`: num_queue = 3, queue_limit = [3250, 7200, 18000] (GPU-seconds).
PUBLISHED_LIMITS_GPU_S = (3250.0, 7200.0)


class Tiresias:
    name = "tiresias"
    preemptive = True
    clairvoyant = False

    def __init__(
        self,
        consolidate: bool = True,
        queue_limits_gpu_s: Sequence[float] = PUBLISHED_LIMITS_GPU_S,
        promote_knob: float = 0.0,
    ) -> None:
        self.consolidate = consolidate
        self.limits = tuple(sorted(queue_limits_gpu_s))
        self.promote_knob = promote_knob
        self._queues: list[list] = [[] for _ in range(len(self.limits) + 1)]
        self._where: dict = {}  # job id -> queue index; insertion order = arrival order
        self._base: dict = {}  # job id -> attained GPU-s at its last promotion (executed time resets)
        self._anchor: dict = {}  # job id -> first start since arrival or last promotion

    # -- queue bookkeeping ---------------------------------------------------------------------

    def _queue(self, executed_gpu_s: float) -> int:
        """The queue a job with this much executed service belongs in."""
        for q, limit in enumerate(self.limits):
            if executed_gpu_s < limit:
                return q
        return len(self.limits)

    def _executed_s(self, job: JobRequest, attained_gpu_s: float) -> float:
        return (attained_gpu_s - self._base.get(job.id, 0.0)) / max(job.total_gpus, 1)

    def _move(self, jid, q: int) -> None:
        self._queues[self._where[jid]].remove(jid)
        self._queues[q].append(jid)
        self._where[jid] = q

    def _knob(self, pending: Sequence[JobRequest], cluster: ClusterState) -> float:
        """The promotion knob in force for this decision (`promote_knob`; subclasses may vary it)."""
        return self.promote_knob

    def _sync(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> dict:
        """Bring the queues up to `now_s`: running jobs ahead of waiting ones (the reorder that
        follows each decision), finished jobs out, arrivals appended to the top queue, then
        demotions and promotions in arrival order. Returns {job id: running job or request}."""
        jobs: dict = {r.request.id: r for r in cluster.running}
        running = set(jobs)
        for j in pending:
            jobs[j.id] = j
        for q, ids in enumerate(self._queues):
            self._queues[q] = [i for i in ids if i in running] + [
                i for i in ids if i in jobs and i not in running
            ]
        for i in [i for i in self._where if i not in jobs]:
            del self._where[i]
            self._base.pop(i, None)
            self._anchor.pop(i, None)
        for jid, item in jobs.items():
            if jid not in self._where:  # arrival (or a job the policy has not seen, e.g. after a restart)
                req = item.request if isinstance(item, RunningJob) else item
                q = self._queue(req.attained_gpu_s)
                self._where[jid] = q
                self._queues[q].append(jid)
        last = len(self.limits)
        knob = self._knob(pending, cluster)
        for jid, q in list(self._where.items()):
            item = jobs[jid]
            if isinstance(item, RunningJob):
                req = item.request
                self._anchor.setdefault(jid, item.started_s)
                gpu_s = self._executed_s(req, item.attained_gpu_s(now_s)) * max(req.total_gpus, 1)
                while q < last and gpu_s >= self.limits[q] - 1e-9:
                    q += 1
                if q != self._where[jid]:
                    self._move(jid, q)
            elif knob > 0 and q > 0 and item.attained_gpu_s > 0:
                executed = self._executed_s(item, item.attained_gpu_s)
                anchor = self._anchor.get(jid)
                waited = now_s - anchor - executed if anchor is not None else 0.0
                if executed > 0 and anchor is not None and waited >= knob * executed - 1e-9:
                    self._base[jid] = item.attained_gpu_s
                    del self._anchor[jid]
                    self._move(jid, 0)
        return jobs

    def _ranked(self, jobs: dict) -> list:
        """(queue, place in queue) for every job, as entries for `preemptive_pass`."""
        return [((q, k), jobs[jid]) for q, ids in enumerate(self._queues) for k, jid in enumerate(ids)]

    # -- the policy ------------------------------------------------------------------------------

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        jobs = self._sync(pending, cluster, now_s)
        return preemptive_pass(
            self._ranked(jobs),
            cluster,
            consolidate=self.consolidate,
            reason="a job with less attained service needs its GPUs",
        )

    def next_wake_s(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> float | None:
        """When to look again for a demotion or a promotion. Demotions use the published simulator's
        timer (`dlas_sim_jobs`, `next_job_jump`): (limit - executed seconds) // GPUs from now, which
        for multi-GPU jobs falls after the real crossing (it subtracts seconds, not GPU-seconds), so
        between other events a job is demoted late, as there."""
        best = math.inf
        last = len(self.limits)
        for r in cluster.running:
            q = self._where.get(r.request.id)
            if q is None or q >= last:
                continue
            gpus = max(r.request.total_gpus, 1)
            executed = self._executed_s(r.request, r.attained_gpu_s(now_s))
            at = now_s + (self.limits[q] - executed) // gpus
            if now_s < at < best:
                best = at
        knob = self._knob(pending, cluster)
        if knob > 0:
            for j in pending:
                q = self._where.get(j.id)
                anchor = self._anchor.get(j.id)
                if not q or anchor is None or not j.attained_gpu_s:
                    continue
                executed = self._executed_s(j, j.attained_gpu_s)
                at = anchor + executed + knob * executed
                if executed > 0 and now_s < at < best:
                    best = at
        return None if best == math.inf else best
