"""Building blocks shared by the policies: queue orders, fit-first starting, and the preemptive pass
("given this order over running and pending jobs, who runs now?")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from suanli.schedule.placement import FreeSpace
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, Preempt, RunningJob, Start


def fifo_key(job: JobRequest) -> tuple:
    """Higher priority first, then earlier submission, then id (deterministic)."""
    return (-job.priority, job.submit_time_s, str(job.id))


def remaining_estimate_s(job: JobRequest, attained_s: float) -> float:
    """Estimated time left; unknown estimates sort last. Overrun estimates count as almost done."""
    if job.estimated_duration_s is None:
        return float("inf")
    return max(job.estimated_duration_s - attained_s, 0.0)


def fit_first(
    ordered: Iterable[JobRequest],
    cluster: ClusterState,
    *,
    consolidate: bool = True,
    blocking: bool = False,
    why_later: str = "waiting for its turn",
    types_for: Callable[[JobRequest], Sequence[str | None] | None] | None = None,
) -> Decisions:
    """Start jobs in the given order wherever they fit. `blocking=True` is strict FIFO: the first job
    that does not fit stops every job behind it."""
    free = FreeSpace(cluster.nodes)
    out = Decisions()
    explain = cluster.explain
    blocked_by = None
    for job in ordered:
        if blocked_by is not None:
            if not explain:
                break
            out.waiting[job.id] = f"behind job {blocked_by} ({why_later})"
            continue
        placement = free.place(job, consolidate=consolidate, types=types_for(job) if types_for else None)
        if placement is None:
            if explain:
                out.waiting[job.id] = free.largest_block(job)
            if blocking:
                blocked_by = job.id
            continue
        free.take(placement)
        out.starts.append(Start(job.id, placement))
    return out


def preemptive_pass(
    entries: Sequence[tuple[tuple, RunningJob | JobRequest]],
    cluster: ClusterState,
    *,
    consolidate: bool = True,
    may_preempt: Callable[[RunningJob], bool] | None = None,
    reason: str = "a job ahead in the queue needs its GPUs",
    types_for: Callable[[JobRequest], Sequence[str | None] | None] | None = None,
) -> Decisions:
    """Who runs now, for preemptive policies. `entries` are (sort key, running or pending job); a
    smaller key ranks higher. Pending jobs are taken in rank order: one that fits in free GPUs starts;
    one that does not may preempt running jobs ranked below it, lowest-ranked first and only as many
    as it needs (victims whose GPUs it did not end up using keep running). Running jobs that
    `may_preempt` rejects (e.g. ones that just started) are never displaced. The caller applies
    `preemptions` before `starts`."""
    out = Decisions()
    free = FreeSpace(cluster.nodes)
    ordered = sorted(entries, key=lambda e: e[0])
    lower: list[tuple[int, RunningJob | None]] = []  # preemptible running jobs by rank, best first
    pend: list[tuple[int, JobRequest]] = []
    for i, (_, item) in enumerate(ordered):
        if isinstance(item, RunningJob):
            if may_preempt is None or may_preempt(item):
                lower.append((i, item))
        else:
            pend.append((i, item))
    evictable = sum(r.request.total_gpus for _, r in lower)
    explain = cluster.explain
    if not explain and free.free_gpus() == 0 and (not lower or not pend or pend[0][0] > lower[-1][0]):
        return out  # full, and nothing waiting outranks a preemptible job
    below = 0  # lower[below:] are ranked below the current pending job
    for i, job in pend:
        while below < len(lower) and lower[below][0] < i:
            r = lower[below][1]
            if r is not None:
                evictable -= r.request.total_gpus
            below += 1
        if not explain and evictable <= 0 and free.free_gpus() == 0:
            break
        types = types_for(job) if types_for else None
        placement = free.place(job, consolidate=consolidate, types=types)
        if placement is None and free.free_gpus() + evictable >= job.total_gpus:
            found = _evict_for(job, free, lower, below, consolidate, types)
            if found is not None:
                victims, placement = found
                for k in victims:
                    r = lower[k][1]
                    lower[k] = (lower[k][0], None)
                    evictable -= r.request.total_gpus
                    out.preemptions.append(Preempt(r.request.id, reason))
        if placement is None:
            if explain:
                out.waiting[job.id] = free.largest_block(job)
            continue
        free.take(placement)
        out.starts.append(Start(job.id, placement))
    return out


def _evict_for(job, free: FreeSpace, lower: list, below: int, consolidate: bool, types):
    """Release running jobs ranked below `job`, lowest first, until it fits; then keep (re-take) every
    one it can do without, highest-ranked first, placing the job around them (so GPUs count as
    interchangeable where the placement allows, as in the published simulators' `count` scheme).
    Returns (indices into `lower` to preempt, placement) or None (undone)."""
    trial: list[int] = []
    placement = None
    for k in range(len(lower) - 1, below - 1, -1):
        r = lower[k][1]
        if r is None:
            continue
        free.release(r.placement)
        trial.append(k)
        placement = free.place(job, consolidate=consolidate, types=types)
        if placement is not None:
            break
    if placement is None:
        for k in trial:
            free.take(lower[k][1].placement)
        return None
    needed = [trial[-1]]  # the job did not fit before this one was released
    for k in reversed(trial[:-1]):  # highest-ranked victim first: spare it if the job fits without it
        r = lower[k][1]
        free.take(r.placement)
        spared = free.place(job, consolidate=consolidate, types=types)
        if spared is None:
            free.release(r.placement)
            needed.append(k)
        else:
            placement = spared
    return needed, placement


def attained_lookup(cluster: ClusterState, now_s: float) -> dict:
    """Attained GPU-seconds of every running job, by id."""
    return {r.request.id: r.attained_gpu_s(now_s) for r in cluster.running}
