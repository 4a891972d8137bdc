"""Placement shared by every policy: best fit, gangs, consolidation limits, GPU types, the reasons
`suanli queue` shows, and the speed of one live decision."""

from __future__ import annotations

import pytest

from suanli.schedule import ClusterState, JobRequest, NodeState, RunningJob, Slice, get_policy
from suanli.schedule.placement import FreeSpace
from suanli.schedule.simulate import busy_moment


def nodes(*free: int, gpus: int = 8, gpu_type: str | None = None) -> list[NodeState]:
    return [NodeState(f"n{i}", gpus, 32, 256 * 1024**3, gpu_type, free_gpus=f) for i, f in enumerate(free)]


def test_best_fit_keeps_large_blocks_whole():
    space = FreeSpace(nodes(8, 3, 5))
    assert space.place(JobRequest("j", 0, gpus=2)) == (Slice("n1", 2, 0.0, 0),)
    assert space.place(JobRequest("j", 0, gpus=4)) == (Slice("n2", 4, 0.0, 0),)


def test_gang_gets_distinct_nodes_or_nothing():
    space = FreeSpace(nodes(8, 4, 8))
    gang = JobRequest("g", 0, gpus=8, cpus=4, num_nodes=2)
    placement = space.place(gang)
    assert sorted(s.node for s in placement) == ["n0", "n2"]
    assert space.place(JobRequest("g3", 0, gpus=8, num_nodes=3)) is None


def test_split_job_respects_max_nodes():
    space = FreeSpace(nodes(4, 4, 4))
    assert len(space.place(JobRequest("s", 0, gpus=12, num_nodes=None))) == 3
    assert space.place(JobRequest("s", 0, gpus=12, num_nodes=None, max_nodes=2)) is None


def test_take_and_release_round_trip():
    space = FreeSpace(nodes(8, 8))
    p = space.place(JobRequest("a", 0, gpus=6))
    space.take(p)
    assert space.free_gpus() == 10
    space.release(p)
    assert space.free_gpus() == 16 and space.gpus == {"n0": 8, "n1": 8}


def test_gpu_type_is_a_hard_requirement():
    cluster = [*nodes(8, gpu_type="A100"), NodeState("v0", 8, 32, 0, "V100")]
    space = FreeSpace(cluster)
    assert space.place(JobRequest("t", 0, gpus=2, gpu_type="V100"))[0].node == "v0"
    assert space.place(JobRequest("t", 0, gpus=2, gpu_type="H100")) is None
    assert (
        space.largest_block(JobRequest("t", 0, gpus=2, gpu_type="H100"))
        == "needs H100 GPUs; no node has them"
    )


def test_waiting_reason_names_the_largest_free_block():
    space = FreeSpace(nodes(4, 2))
    reason = space.largest_block(JobRequest("j", 0, gpus=8, cpus=4))
    assert reason.startswith("needs 8 GPUs, 4 CPUs on one node; largest free block is 4 GPUs")


def test_policies_do_not_mutate_their_inputs():
    ns = nodes(2, 8)
    running = [RunningJob(JobRequest("r", 0, gpus=6), (Slice("n0", 6, 0, 0),), 0.0)]
    pending = [JobRequest(f"p{i}", i, gpus=4) for i in range(5)]
    before = [(n.free_gpus, n.free_cpus) for n in ns]
    for name in ("fifo", "backfill", "tiresias", "suanli", "priority", "srtf", "drf", "gavel"):
        get_policy(name).decide(pending, ClusterState(ns, running), 100.0)
    assert [(n.free_gpus, n.free_cpus) for n in ns] == before


@pytest.mark.parametrize("name", ["fifo", "suanli"])
def test_one_decision_with_10000_pending_on_1000_nodes_explains_every_job(name):
    # benchmarks/bench_simulate.py --only speed times this decision (goal: 100 ms)
    ns, running, pending = busy_moment()
    cluster = ClusterState(ns, running)
    policy = get_policy(name)
    out = policy.decide(pending, cluster, 10_000.0)
    assert out.starts and len(out.waiting) + len(out.starts) == 10_000
    freed = sum(r.request.total_gpus for r in running if r.request.id in {p.job_id for p in out.preemptions})
    assert sum(s.gpus for st in out.starts for s in st.placement) <= 100 * 4 + freed  # never more than exist


def test_pinned_job_goes_only_to_its_nodes_and_waits_for_them():
    space = FreeSpace(nodes(8, 2, 8))
    # Best fit alone would take n1; pinned to n2 it goes there, and to n0 or n2 when both are named.
    assert space.place(JobRequest("p", 0, gpus=2, nodes=frozenset({"n2"}))) == (Slice("n2", 2, 0.0, 0),)
    gang = space.place(JobRequest("g", 0, gpus=4, num_nodes=2, nodes=frozenset({"n0", "n2"})))
    assert sorted(s.node for s in gang) == ["n0", "n2"]
    # Its nodes are busy: it waits even though n1 is free, and the reason names its nodes.
    space.take(space.place(JobRequest("x", 0, gpus=8, nodes=frozenset({"n2"}))))
    stuck = JobRequest("q", 0, gpus=1, nodes=frozenset({"n2"}))
    assert space.place(stuck) is None
    assert "runs only on n2" in space.largest_block(stuck)
    split = JobRequest("s", 0, gpus=9, num_nodes=None, nodes=frozenset({"n0", "n1"}))
    assert sorted(s.node for s in space.place(split)) == ["n0", "n1"]
    assert space.place(JobRequest("s", 0, gpus=11, num_nodes=None, nodes=frozenset({"n0", "n1"}))) is None
