"""On a real Philly virtual cluster (8 nodes x 4 GPUs, as the trace came from), the scheduling
choice shows up in completion times the way the benchmarks report."""

from __future__ import annotations

from suanli.schedule import get_policy
from suanli.schedule.simulate import load_trace, parse_cluster, simulate, summarize


def test_default_beats_fifo_and_matches_tiresias_on_a_philly_vc(traces_dir):
    trace = load_trace(str(traces_dir / "pollux" / "philly.csv"), vc="103959")
    nodes = parse_cluster("8x4")
    s = {p: summarize(simulate(trace.jobs, nodes, get_policy(p))) for p in ("fifo", "tiresias", "suanli")}
    assert all(v.jobs == 1934 for v in s.values())
    assert s["suanli"].avg_jct_s <= s["tiresias"].avg_jct_s < 0.5 * s["fifo"].avg_jct_s
    assert s["suanli"].jain_fairness > s["fifo"].jain_fairness
