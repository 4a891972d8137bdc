"""Helpers for the scheduling tests (a uniquely named module: `conftest` is a shared name)."""

from __future__ import annotations

from suanli.schedule import get_policy
from suanli.schedule.simulate import TraceJob, parse_cluster, simulate


def job(jid, submit, gpus, duration, **kw) -> TraceJob:
    """A trace job; keyword arguments as in TraceJob (user, priority, estimate_s, throughput, ...)."""
    return TraceJob(str(jid), float(submit), gpus, float(duration), line=None, **kw)


def replay(policy, jobs, cluster="1x4", **kw):
    """{job id: (first start, finish)} and the raw result of replaying `jobs` under `policy`."""
    pol = get_policy(policy) if isinstance(policy, str) else policy
    result = simulate(jobs, parse_cluster(cluster), pol, **kw)
    return {o.id: (o.first_start_s, o.finish_s) for o in result.outcomes}, result
