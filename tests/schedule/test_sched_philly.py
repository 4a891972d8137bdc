"""On a real Philly virtual cluster (8 nodes x 4 GPUs, as the trace came from), the scheduling
choice shows up in completion times the way the benchmarks report."""

from __future__ import annotations

import pytest

from suanli.schedule import get_policy
from suanli.schedule.simulate import load_trace, parse_cluster, simulate, summarize


@pytest.fixture(scope="module")
def vc_103959(traces_dir):
    trace = load_trace(str(traces_dir / "pollux" / "philly.csv"), vc="103959")
    nodes = parse_cluster("8x4")
    return {p: summarize(simulate(trace.jobs, nodes, get_policy(p))) for p in ("fifo", "tiresias", "suanli")}


def test_default_beats_fifo_and_tiresias_on_a_philly_vc(vc_103959):
    s = vc_103959
    assert all(v.jobs == 1934 for v in s.values())
    assert s["suanli"].avg_jct_s < s["tiresias"].avg_jct_s < 0.5 * s["fifo"].avg_jct_s


@pytest.mark.xfail(
    strict=True,
    reason="known gap: without a starvation rule (as published dlas-gpu) "
    "Jain over slowdowns on 103959 is 0.068 against FIFO's 0.102; see docs/scheduler.md",
)
def test_default_is_at_least_as_fair_as_fifo_on_a_philly_vc(vc_103959):
    assert vc_103959["suanli"].jain_fairness >= vc_103959["fifo"].jain_fairness
