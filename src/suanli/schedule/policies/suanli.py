"""suanli's default policy: Tiresias's discretised 2D least-attained-service, plus what the live
system needs: inside a queue, jobs with less *estimated* remaining time go first (estimates from the
job spec or the user's history, never true lengths); a running job is not preempted before it has
run `min_run_factor` x the preemption cost (so checkpoint/restore overhead stays bounded); on a
cluster with several GPU types a job goes to the fastest type with room for it, never one slower
than `min_speed_ratio` x its best (Gavel's heterogeneity awareness); and Tiresias's starvation
promotion. It is non-clairvoyant: a wrong estimate only reorders jobs that
already have the same attained-service rank, so it cannot make a short job wait behind a long one.

An optional mode (`gittins=True`) ranks jobs by a Gittins index learned online from the sizes of
completed jobs (`ClusterState.completed`) instead of fixed queue limits; it is measured in
docs/scheduler.md and is not the default because it was not better than 2D-LAS on every Philly trace.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from suanli.schedule.policies._common import preemptive_pass, remaining_estimate_s
from suanli.schedule.policies.gavel import types_by_speed
from suanli.schedule.policies.tiresias import Tiresias
from suanli.schedule.policy import ClusterState, Decisions, JobRequest


def gittins_table(samples: Sequence[float], grid: Sequence[float]) -> list[float]:
    """Gittins index at each attained-service point of `grid` for the empirical size distribution
    `samples`: the best ratio, over budgets, of the chance to finish within the budget to the expected
    service spent trying. Beyond the largest sample the index is 0."""
    s = sorted(samples)
    n = len(s)
    prefix = [0.0]
    for v in s:
        prefix.append(prefix[-1] + v)
    out = []
    for a in grid:
        i = bisect_right(s, a)  # samples strictly above a: s[i:]
        if i >= n:
            out.append(0.0)
            continue
        best, above = 0.0, n - i
        for k in range(i, n):
            # budget up to s[k]: P(done) = (k-i+1)/above; E[spent] = (sum s[i..k] + (n-1-k) s[k]) / above - a
            spent = prefix[k + 1] - prefix[i] + (n - 1 - k) * s[k] - above * a
            if spent > 0:
                best = max(best, (k - i + 1) / spent)
        out.append(best)
    return out


class Suanli(Tiresias):
    name = "suanli"
    preemptive = True
    clairvoyant = False

    def __init__(
        self,
        consolidate: bool = True,
        queue_limits_gpu_s: Sequence[float] = (3600.0,),
        promote_knob: float = 8.0,
        preemption_cost_s: float = 0.0,
        min_run_factor: float = 10.0,
        gittins: bool = False,
        gittins_window: int = 2000,
        gittins_min_samples: int = 50,
        gittins_grid: tuple[float, float] = (10.0, 1.25),
        gittins_stickiness: float = 4.0,
        min_speed_ratio: float = 0.5,
    ) -> None:
        super().__init__(
            consolidate=consolidate, queue_limits_gpu_s=queue_limits_gpu_s, promote_knob=promote_knob
        )
        self.min_run_s = preemption_cost_s * min_run_factor
        self.min_speed_ratio = min_speed_ratio
        self.gittins = gittins
        self.window = gittins_window
        self.min_samples = gittins_min_samples
        self.grid = gittins_grid
        self.stickiness = gittins_stickiness
        self._table: tuple[list[float], list[float]] | None = None
        self._table_n = -1
        self._keys: dict = {}  # sort keys that cannot change while a job waits or runs

    def _gittins(self, history: Sequence[tuple[int, float]]) -> tuple[list[float], list[float]] | None:
        """The Gittins table over GPU-seconds, recomputed as history grows by 10% (or 200 jobs)."""
        n = len(history)
        if not self.gittins or n < self.min_samples:
            return None
        if self._table is None or n >= self._table_n * 1.1 or n - self._table_n >= 200:
            samples = [g * t for g, t in history[-self.window :]]
            top = max(samples)
            grid, g = [0.0], self.grid[0]
            while g < top * self.grid[1]:
                grid.append(g)
                g *= self.grid[1]
            self._table = (grid, gittins_table(samples, grid))
            self._table_n = n
        return self._table

    def _rank(self, executed_gpu_s: float, table: tuple[list[float], list[float]] | None) -> float:
        if table is None:
            return float(self._queue(executed_gpu_s))
        grid, index = table
        return -index[bisect_right(grid, executed_gpu_s) - 1]

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        self._forget_finished(pending, cluster)
        if len(self._keys) > 4 * (len(pending) + len(cluster.running)) + 1024:
            self._keys = {}
        table = self._gittins(cluster.completed)
        entries: list = []
        keys = self._keys
        for r in cluster.running:
            rid = r.request.id
            if table is None:
                rank = float(self._running_queue(r, now_s))
            else:  # displaced only by a job with a clearly higher index
                rank = self.stickiness * self._rank(r.attained_gpu_s(now_s) - self._base.get(rid, 0.0), table)
            # Running jobs compare among themselves by estimated end (= remaining time + now).
            end = keys.get((rid, r.started_s))
            if end is None:
                end = keys[(rid, r.started_s)] = r.started_s + remaining_estimate_s(
                    r.request, r.request.attained_s()
                )
            entries.append(((-r.request.priority, rank, 0, end, r.started_s, str(rid)), r))
        for j in pending:
            if not j.attained_gpu_s and table is None:  # never ran: its key cannot change
                key = keys.get(j.id)
                if key is None:
                    rem = remaining_estimate_s(j, 0.0)
                    key = keys[j.id] = (-j.priority, 0.0, 1, rem, j.submit_time_s, str(j.id))
                entries.append((key, j))
                continue
            q = self._pending_queue(j, now_s)  # may promote (resets executed service to zero)
            rank = (
                float(q) if table is None else self._rank(j.attained_gpu_s - self._base.get(j.id, 0.0), table)
            )
            rem = remaining_estimate_s(j, j.attained_s())
            entries.append(((-j.priority, rank, 1, rem, j.submit_time_s, str(j.id)), j))
        min_run = self.min_run_s
        types = list(dict.fromkeys(n.gpu_type for n in cluster.nodes))
        ratio = self.min_speed_ratio
        return preemptive_pass(
            entries,
            cluster,
            consolidate=self.consolidate,
            may_preempt=(lambda r: now_s - r.started_s >= min_run) if min_run > 0 else None,
            reason="a job with less attained service needs its GPUs",
            types_for=(lambda j: types_by_speed(j, types, ratio)) if len(types) > 1 else None,
        )

    def next_wake_s(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> float | None:
        """Demotions and promotions (as Tiresias), grid crossings in Gittins mode, and the end of a
        running job's protection from preemption."""
        best = super().next_wake_s(pending, cluster, now_s)
        best = float("inf") if best is None else best
        if self.gittins and self._table is not None:
            grid = self._table[0]
            for r in cluster.running:
                executed = r.attained_gpu_s(now_s) - self._base.get(r.request.id, 0.0)
                k = bisect_right(grid, executed)
                if k < len(grid):
                    best = min(best, now_s + (grid[k] - executed) / max(r.request.total_gpus, 1))
        if self.min_run_s > 0 and pending:
            for r in cluster.running:
                until = r.started_s + self.min_run_s
                if until > now_s:
                    best = min(best, until)
        return None if best == float("inf") else best
