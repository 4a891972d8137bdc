"""What a platform engineer compares policies by: job completion time (JCT), queueing, makespan,
utilisation, preemptions, and fairness (Jain's index over users' mean slowdowns)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from itertools import pairwise

from suanli.schedule.simulate.engine import SimResult


@dataclass(frozen=True, slots=True)
class Summary:
    policy: str
    jobs: int
    avg_jct_s: float
    median_jct_s: float
    p95_jct_s: float
    p99_jct_s: float
    avg_queue_s: float
    makespan_s: float
    utilization: float
    jain_fairness: float
    worst_user_slowdown: float
    preemptions: int
    skipped_jobs: int

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of already sorted values."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one takes everything."""
    if not values:
        return 1.0
    total = sum(values)
    squares = sum(v * v for v in values)
    return (total * total) / (len(values) * squares) if squares else 1.0


def user_slowdowns(result: SimResult) -> dict[str, float]:
    """Mean slowdown (JCT / duration alone) per user; with a single user in the trace, per job, so
    that fairness still means something on traces without user names."""
    users = {o.user for o in result.outcomes}
    groups: dict[str, list[float]] = defaultdict(list)
    for o in result.outcomes:
        key = o.user if len(users) > 1 else o.id
        groups[key].append(o.jct_s / max(o.duration_s, 1.0))
    return {k: sum(v) / len(v) for k, v in groups.items()}


def summarize(result: SimResult) -> Summary:
    out = result.outcomes
    jcts = sorted(o.jct_s for o in out)
    n = len(out)
    first = min((o.submit_s for o in out), default=0.0)
    last = max((o.finish_s for o in out), default=0.0)
    makespan = last - first
    busy_gpu_s = 0.0
    points = result.busy
    for (t0, b), (t1, _) in pairwise(points):
        busy_gpu_s += b * (t1 - t0)
    slow = user_slowdowns(result)
    return Summary(
        policy=result.policy,
        jobs=n,
        avg_jct_s=sum(jcts) / n if n else 0.0,
        median_jct_s=percentile(jcts, 50),
        p95_jct_s=percentile(jcts, 95),
        p99_jct_s=percentile(jcts, 99),
        avg_queue_s=sum(o.queue_s for o in out) / n if n else 0.0,
        makespan_s=makespan,
        utilization=busy_gpu_s / (result.capacity_gpus * makespan) if makespan > 0 else 0.0,
        jain_fairness=jain(list(slow.values())),
        worst_user_slowdown=max(slow.values(), default=0.0),
        preemptions=result.preemptions,
        skipped_jobs=len(result.skipped),
    )


def utilization_series(result: SimResult, points: int = 200) -> list[tuple[float, float]]:
    """GPU utilisation over time, averaged over `points` equal windows (for plots and --json)."""
    if len(result.busy) < 2:
        return []
    start, end = result.busy[0][0], result.busy[-1][0]
    if end <= start:
        return []
    width = (end - start) / points
    series, i = [], 0
    busy = result.busy
    for k in range(points):
        w0, w1 = start + k * width, start + (k + 1) * width
        acc = 0.0
        while i + 1 < len(busy) and busy[i + 1][0] <= w0:
            i += 1
        j = i
        while j < len(busy) and busy[j][0] < w1:
            seg0 = max(busy[j][0], w0)
            seg1 = min(busy[j + 1][0] if j + 1 < len(busy) else end, w1)
            acc += busy[j][1] * max(seg1 - seg0, 0.0)
            j += 1
        series.append((w0, acc / (width * result.capacity_gpus)))
    return series
