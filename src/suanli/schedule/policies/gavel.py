"""Heterogeneity-aware placement after Gavel (Narayanan et al., OSDI'20): each job has a throughput
per GPU type (`JobRequest.throughput`, e.g. Gavel's measured matrix); jobs are taken in their
least-attained-service order and put on the fastest GPU type that has room, never on a type slower
than `min_speed_ratio` x the job's best type (then the job waits for a better one)."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.schedule.policies._common import fit_first
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


def types_by_speed(job: JobRequest, types: Sequence[str | None], min_ratio: float) -> list[str | None]:
    """GPU types from fastest to slowest for `job`, without those too slow to be worth it."""
    speeds = {t: job.speed_on(t) for t in types}
    top = max(speeds.values(), default=1.0)
    return sorted((t for t in types if speeds[t] >= min_ratio * top), key=lambda t: (-speeds[t], str(t)))


class HeterogeneityAware:
    name = "gavel"
    preemptive = False
    clairvoyant = False
    idle_until_release = "fit"  # simulator shortcut: see engine.simulate

    def __init__(self, consolidate: bool = True, min_speed_ratio: float = 0.5) -> None:
        self.consolidate = consolidate
        self.min_speed_ratio = min_speed_ratio

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        types = list(dict.fromkeys(n.gpu_type for n in cluster.nodes))
        order = sorted(pending, key=lambda j: (-j.priority, j.attained_gpu_s, j.submit_time_s, str(j.id)))
        return fit_first(
            order,
            cluster,
            consolidate=self.consolidate,
            types_for=lambda j: types_by_speed(j, types, self.min_speed_ratio),
        )
