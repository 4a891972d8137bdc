"""Fairness beyond Philly: Alibaba's GPU trace 2023 (6,203 scheduled GPU pods, QoS class as the user)
replayed on 2 nodes x 8 GPUs, where there are several users to be fair to."""

from __future__ import annotations

import pytest

from suanli.schedule import get_policy
from suanli.schedule.simulate import load_trace, parse_cluster, simulate, summarize


@pytest.mark.slow
def test_default_is_fairer_than_fifo_and_faster_than_tiresias_on_alibaba(traces_dir):
    trace = load_trace(str(traces_dir / "alibaba" / "gpu-v2023" / "openb_pod_list_default.csv"))
    nodes = parse_cluster("2x8")
    s = {p: summarize(simulate(trace.jobs, nodes, get_policy(p))) for p in ("fifo", "tiresias", "suanli")}
    assert all(v.jobs == 6203 for v in s.values())
    assert s["fifo"].jain_fairness == pytest.approx(0.748, abs=0.001)  # the baseline
    assert s["suanli"].jain_fairness >= s["fifo"].jain_fairness
    assert s["suanli"].avg_jct_s < s["tiresias"].avg_jct_s < s["fifo"].avg_jct_s
