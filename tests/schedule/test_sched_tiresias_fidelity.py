"""`tiresias` against the published Tiresias simulator (SymbioticLab/Tiresias, simulator/run_sim.py,
`--schedule=dlas-gpu --scheme=count`, Python 2.7). The expected schedules below are that simulator's
own output (its job.csv: start_time, end_time, preempt), not hand-derived numbers; the slow test is
the issue's figure on Philly VC 6c71a0."""

from __future__ import annotations

import pytest
from sched_helpers import job

from suanli.schedule import get_policy
from suanli.schedule.policies.tiresias import Tiresias
from suanli.schedule.simulate import load_trace, parse_cluster, simulate, summarize

# 12 jobs on one node of 4 GPUs, as (job id, GPUs, submit s, duration s) in the simulator's CSV.
SMALL = [
    ("0", 1, 0, 6030), ("1", 4, 300, 653), ("2", 1, 1000, 7431), ("3", 2, 1300, 164),
    ("4", 2, 2000, 4305), ("5", 1, 2000, 6872), ("6", 2, 3500, 8964), ("7", 1, 3800, 384),
    ("8", 1, 4100, 2386), ("9", 2, 4400, 5874), ("10", 2, 5100, 247), ("11", 2, 5200, 7438),
]  # fmt: skip
# run_sim.py --cluster_spec=n1g4.csv --scheme=count --schedule=dlas-gpu: (first start, end, preemptions)
PUBLISHED = {
    "0": (0, 11234, 3), "1": (9419, 10072, 0), "2": (1000, 13155, 2), "3": (1300, 1464, 0),
    "4": (2000, 12577, 1), "5": (3250, 14856, 1), "6": (3800, 21718, 2), "7": (4250, 4634, 0),
    "8": (4634, 7020, 0), "9": (6125, 18534, 1), "10": (7020, 7267, 0), "11": (7267, 21318, 2),
}  # fmt: skip


def _replay(policy, jobs, cluster):
    result = simulate(jobs, parse_cluster(cluster), policy, placement="count")
    return {o.id: (o.first_start_s, o.finish_s, o.preemptions) for o in result.outcomes}


def test_tiresias_reproduces_the_published_simulator_job_by_job():
    # Exercises both demotions (3,250 and 7,200 GPU-s), a demoted job queued behind the waiting
    # jobs of its new queue, fit-first starts and preemptions; every start, end and preemption count
    # is the published simulator's.
    jobs = [job(i, s, g, d) for i, g, s, d in SMALL]
    assert _replay(Tiresias(consolidate=False), jobs, "1x4") == PUBLISHED


def test_tiresias_starvation_rule_is_the_published_dlas_gpu_k():
    # Simulator edited only to num_queue=2, queue_limit=[100] (one node, one GPU). With dlas-gpu-05
    # A (preempted by B at 120 after 120 s) has waited 0.5 x 120 s at 180 and goes back to the top
    # queue ahead of C (arrives 200): it ends at 250. Without the rule (dlas-gpu) C's quantum comes first.
    jobs = [job("A", 0, 1, 150), job("B", 120, 1, 500), job("C", 200, 1, 300)]
    promoted = _replay(Tiresias(consolidate=False, queue_limits_gpu_s=(100,), promote_knob=0.5), jobs, "1x1")
    assert {k: v[1] for k, v in promoted.items()} == {"A": 250, "C": 750, "B": 950}
    assert sum(v[2] for v in promoted.values()) == 6
    plain = _replay(Tiresias(consolidate=False, queue_limits_gpu_s=(100,)), jobs, "1x1")
    assert {k: v[1] for k, v in plain.items()} == {"A": 350, "B": 750, "C": 950}


@pytest.mark.slow
def test_tiresias_and_fifo_match_the_published_figures_on_philly_6c71a0(traces_dir):
    # Published simulator on this VC (9,953 jobs, 16 nodes x 4 GPUs, count): dlas-gpu 22,648 s,
    # fifo 162,324 s average JCT.
    trace = load_trace(str(traces_dir / "pollux" / "philly.csv"), vc="6c71a0")
    nodes = parse_cluster("16x4")
    avg = {}
    for p in ("fifo", "tiresias"):
        result = simulate(trace.jobs, nodes, get_policy(p, consolidate=False), placement="count")
        avg[p] = summarize(result).avg_jct_s
    assert avg["fifo"] == pytest.approx(162_324.4, abs=1)
    assert avg["tiresias"] == pytest.approx(22_648.1, rel=0.005)
