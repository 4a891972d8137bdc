"""Invariants every policy must keep on a realistic trace: every job finishes exactly once, GPUs in
use never exceed capacity, and the same input gives the same result."""

from __future__ import annotations

import pytest

from suanli.schedule import POLICIES, get_policy
from suanli.schedule.simulate import parse_cluster, simulate, summarize, synthetic

TRACE = synthetic(1500, seed=7, gpus_total=32, load=0.95, users=5)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("placement", ["consolidated", "count"])
def test_every_job_finishes_once_and_capacity_holds(name, placement):
    nodes = parse_cluster("8x4")
    policy = get_policy(name, consolidate=placement != "count")
    result = simulate(TRACE.jobs, nodes, policy, placement=placement, preemption_cost_s=30)
    ids = [o.id for o in result.outcomes]
    assert sorted(ids) == sorted(j.id for j in TRACE.jobs)
    assert len(set(ids)) == len(ids)
    assert all(0 <= b <= 32 for _, b in result.busy)
    by_id = {j.id: j for j in TRACE.jobs}
    for o in result.outcomes:
        assert o.first_start_s >= by_id[o.id].submit_s - 1e-9
        # A job cannot finish faster than its duration; preempted jobs pay 30 s per restart.
        assert o.jct_s >= by_id[o.id].duration_s + 30 * o.preemptions - 1e-6
    s = summarize(result)
    assert 0 < s.utilization <= 1 and 0 < s.jain_fairness <= 1
    if not getattr(policy, "preemptive", False):
        assert result.preemptions == 0


def test_results_are_deterministic_for_a_seed():
    a = synthetic(300, seed=3, gpus_total=16)
    b = synthetic(300, seed=3, gpus_total=16)
    c = synthetic(300, seed=4, gpus_total=16)
    assert [(j.submit_s, j.duration_s, j.gpus) for j in a.jobs] == [
        (j.submit_s, j.duration_s, j.gpus) for j in b.jobs
    ]
    assert [j.duration_s for j in a.jobs] != [j.duration_s for j in c.jobs]
    nodes = parse_cluster("4x4")
    runs = [summarize(simulate(a.jobs, nodes, get_policy("suanli"))) for _ in range(2)]
    assert runs[0] == runs[1]


def test_size_based_policies_beat_fifo_on_a_loaded_cluster():
    nodes = parse_cluster("8x4")
    avg = {
        p: summarize(simulate(TRACE.jobs, nodes, get_policy(p))).avg_jct_s
        for p in ("fifo", "tiresias", "suanli")
    }
    assert avg["tiresias"] < avg["fifo"]
    assert avg["suanli"] < avg["fifo"]


class _NoShortcut:
    """The same policy without `idle_until_release`, so the simulator asks it at every event."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.preemptive = False
        self.clairvoyant = inner.clairvoyant

    def decide(self, pending, cluster, now_s):
        return self.inner.decide(pending, cluster, now_s)


@pytest.mark.parametrize("name", ["fifo", "backfill", "sjf", "drf", "gavel"])
def test_skipping_idle_decisions_does_not_change_the_schedule(name):
    trace = synthetic(600, seed=11, gpus_total=16, load=1.1, users=3)
    nodes = parse_cluster("4x4")
    fast = simulate(trace.jobs, nodes, get_policy(name))
    slow = simulate(trace.jobs, nodes, _NoShortcut(get_policy(name)))
    assert {o.id: (o.first_start_s, o.finish_s) for o in fast.outcomes} == {
        o.id: (o.first_start_s, o.finish_s) for o in slow.outcomes
    }
    assert fast.decisions < slow.decisions
