"""Quotas and usage: what each user and project holds now and has used this period, in GPUs, GPU-hours
and dollars, and whether a job may start or can ever start.

A GPU-hour costs what monitor/cost.py says; CPU-only work holds no GPUs and costs nothing against these
quotas (reports do price its core-hours).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field

from suanli.core.errors import BadInput
from suanli.jobs.spec import JobSpec
from suanli.monitor.cost import gpu_price_usd_per_hour
from suanli.store.identity import Identity, QuotaRecord, period_start
from suanli.store.records import JobRecord
from suanli.store.store import Store


@dataclass
class Usage:
    """What one user or project holds now and has used since the start of a period."""

    gpus: int = 0
    gpu_hours: float = 0.0
    cost_usd: float = 0.0

    def to_json(self) -> dict:
        return {"gpus": self.gpus, "gpu_hours": round(self.gpu_hours, 4), "cost_usd": round(self.cost_usd, 4)}


def _spans(
    store: Store, since: float, now: float, **scopes: Collection[str] | None
) -> Iterator[tuple[str, str | None, int, float, float, float, bool]]:
    """(user, project, GPUs, start, end, USD per GPU-hour, still running) of each attempt's time inside
    [since, now]; `users`/`projects` narrow it to those (read from the database, not filtered here)."""
    for user, project, accel, gpus, start, end in store.usage_rows(since, **scopes):
        lo = max(start, since)
        hi = max(lo, min(end if end is not None else now, now))
        if hi > lo or end is None:  # a running attempt holds its GPUs, however short it has run
            yield user, project, gpus, lo, hi, gpu_price_usd_per_hour(accel), end is None


def usage(
    store: Store,
    since: float,
    now: float | None = None,
    *,
    users: Collection[str] | None = None,
    projects: Collection[str] | None = None,
) -> dict[tuple[str, str], Usage]:
    """Usage per ("user", name) and ("project", name) since `since` (of only `users` and `projects`,
    when given: the scheduler asks for those with quotas)."""
    now = time.time() if now is None else now
    out: dict[tuple[str, str], Usage] = {}
    for user, project, gpus, lo, hi, price, running in _spans(
        store, since, now, users=users, projects=projects
    ):
        for key in [("user", user)] + ([("project", project)] if project else []):
            u = out.setdefault(key, Usage())
            u.gpu_hours += (hi - lo) / 3600 * gpus
            u.cost_usd += (hi - lo) / 3600 * gpus * price
            u.gpus += gpus if running else 0
    return out


def usage_series(
    store: Store, since: float, bucket_s: float, now: float | None = None, *, project: str | None = None
) -> dict:
    """GPU-hours and dollars per bucket of `bucket_s` seconds since `since`, per user and per project
    (the dashboard's usage plot); with `project`, only that project's jobs."""
    now = time.time() if now is None else now
    n = max(1, int((now - since) // bucket_s) + 1)
    series: dict[str, dict[str, dict[str, list[float]]]] = {"user": {}, "project": {}}
    only = None if project is None else [project]
    for user, proj, gpus, lo, hi, price, _ in _spans(store, since, now, projects=only):
        for scope, name in (("user", user), ("project", proj)):
            if not name:
                continue
            s = series[scope].setdefault(name, {"gpu_hours": [0.0] * n, "cost_usd": [0.0] * n})
            t = lo
            while t < hi:
                i = int((t - since) // bucket_s)
                edge = min(hi, since + (i + 1) * bucket_s)
                s["gpu_hours"][i] += (edge - t) / 3600 * gpus
                s["cost_usd"][i] += (edge - t) / 3600 * gpus * price
                t = edge
    return {"since": since, "bucket_s": bucket_s, "buckets": n, **series}


@dataclass
class QuotaGate:
    """The quotas and the usage against them at one moment; one per scheduling pass."""

    quotas: dict[tuple[str, str], QuotaRecord]
    used: dict[tuple[str, str], Usage] = field(default_factory=dict)  # (scope, name) -> usage in its period

    @classmethod
    def load(cls, store: Store, now: float | None = None, *, with_usage: bool = True) -> QuotaGate:
        now = time.time() if now is None else now
        quotas = {(q.scope, q.name): q for q in Identity(store).quotas()}
        gate = cls(quotas)
        if not quotas or not with_usage:
            return gate
        users = [name for scope, name in quotas if scope == "user"]
        projects = [name for scope, name in quotas if scope == "project"]
        by_period: dict[str, dict] = {}
        for key, q in quotas.items():
            if q.period not in by_period:
                since = period_start(q.period, now)
                by_period[q.period] = usage(store, since, now, users=users, projects=projects)
            gate.used[key] = by_period[q.period].get(key, Usage())
        return gate

    def to_json(self, visible: Callable[[tuple[str, str]], bool] = lambda key: True) -> list[dict]:
        """Each quota (that `visible` lets through) with what was used against it this period."""
        return [{**q.to_json(), "used": self.used[k].to_json()} for k, q in self.quotas.items() if visible(k)]

    @property
    def shares(self) -> dict[str, int]:
        """Each project's concurrent-GPU quota: the guaranteed shares of the DRF policy."""
        return {name: q.gpus for (scope, name), q in self.quotas.items() if scope == "project" and q.gpus}

    def _scopes(self, user: str, project: str | None) -> Iterable[tuple[tuple[str, str], QuotaRecord]]:
        for key in (("user", user), ("project", project or "")):
            if key in self.quotas:
                yield key, self.quotas[key]

    def why_waits(self, job: JobRecord) -> str | None:
        """Why `job` may not start now because of a quota (None: no quota holds it back)."""
        need = job.gpus * job.num_nodes
        for key, q in self._scopes(job.user, job.project):
            u = self.used.get(key, Usage())
            who = " ".join(key)
            if q.gpu_hours is not None and need and u.gpu_hours >= q.gpu_hours:
                return f"{who} has used {u.gpu_hours:.4g} of {q.gpu_hours:.4g} GPU-hours this {q.period}"
            if q.cost_usd is not None and need and u.cost_usd >= q.cost_usd:
                return f"{who} has spent ${u.cost_usd:,.2f} of ${q.cost_usd:,.2f} this {q.period}"
            if q.gpus is not None and need and u.gpus + need > q.gpus:
                return f"{who} holds {u.gpus} of its {q.gpus} GPUs; this job needs {need}"
        return None

    def take(self, job: JobRecord) -> None:
        """Count a job started in this pass against its concurrent-GPU quotas."""
        for key, _ in self._scopes(job.user, job.project):
            self.used.setdefault(key, Usage()).gpus += job.gpus * job.num_nodes


def check_can_ever_fit(gate: QuotaGate, spec: JobSpec) -> None:
    """Refuse at submit a job that no quota period could ever hold: more GPUs at once than its concurrent
    quota, or (when it states `expected_duration`) more GPU-hours than a whole period allows."""
    need = sum(spec.resources.accelerators.values()) * spec.num_nodes
    if not need:
        return
    for key, q in gate._scopes(spec.user, spec.project):
        who = " ".join(key)
        if q.gpus is not None and need > q.gpus:
            raise BadInput("resources.accelerators", need, f"GPUs at once; {who} may hold at most {q.gpus}")
        if q.gpu_hours is not None and spec.expected_duration_s:
            hours = need * spec.expected_duration_s / 3600
            if hours > q.gpu_hours:
                raise BadInput(
                    "expected_duration",
                    f"{hours:.4g} GPU-hours",
                    f"more than {who}'s {q.gpu_hours:.4g} GPU-hours per {q.period}",
                )
        if q.gpu_hours == 0 or q.cost_usd == 0:
            raise BadInput("resources.accelerators", need, f"GPUs; {who} has a GPU quota of 0")
