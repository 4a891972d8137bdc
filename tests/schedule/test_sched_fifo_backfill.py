"""Strict FIFO and EASY backfill: exact schedules computed by hand."""

from __future__ import annotations

from sched_helpers import job

from suanli.schedule import ClusterState, JobRequest, NodeState, get_policy


def test_fifo_head_of_queue_blocks_smaller_jobs(run):
    # 4 GPUs. A holds 2 until 10; B needs all 4, so waits until 10; C would fit at 2 but is behind B.
    jobs = [job("A", 0, 2, 10), job("B", 1, 4, 5), job("C", 2, 1, 3)]
    times, result = run("fifo", jobs)
    assert times == {"A": (0, 10), "B": (10, 15), "C": (15, 18)}
    assert result.preemptions == 0


def test_fifo_orders_by_priority_then_submit_time():
    nodes = [NodeState("n0", gpus=1, cpus=8, memory_bytes=0)]
    pending = [
        JobRequest("late-high", submit_time_s=5, gpus=1, priority=1),
        JobRequest("early-low", submit_time_s=0, gpus=1, priority=0),
    ]
    out = get_policy("fifo").decide(pending, ClusterState(nodes), 10)
    assert [s.job_id for s in out.starts] == ["late-high"]
    assert out.waiting["early-low"].startswith("needs 1 GPUs")


def test_fifo_explains_why_jobs_wait():
    nodes = [NodeState("n0", gpus=4, cpus=8, memory_bytes=0, free_gpus=4)]
    pending = [JobRequest("big", 0, gpus=8), JobRequest("small", 1, gpus=1)]
    out = get_policy("fifo").decide(pending, ClusterState(nodes), 0)
    assert out.starts == []
    assert "needs 8 GPUs" in out.waiting["big"] and "largest free block is 4 GPUs" in out.waiting["big"]
    assert out.waiting["small"] == "behind job big (FIFO order)"


def test_backfill_starts_a_short_job_that_ends_before_the_reservation(run):
    # Same trace as FIFO, with user estimates: C (3 s) ends at 5, before B's reserved start at 10.
    jobs = [
        job("A", 0, 2, 10, estimate_s=10),
        job("B", 1, 4, 5, estimate_s=5),
        job("C", 2, 1, 3, estimate_s=3),
    ]
    times, _ = run("backfill", jobs)
    assert times == {"A": (0, 10), "C": (2, 5), "B": (10, 15)}


def test_backfill_never_delays_the_reserved_head_job(run):
    # D (2 GPUs, 50 s) fits at 2 but would still hold GPUs at 10, when B needs all 4: it must wait.
    jobs = [
        job("A", 0, 2, 10, estimate_s=10),
        job("B", 1, 4, 5, estimate_s=5),
        job("D", 2, 2, 50, estimate_s=50),
    ]
    times, _ = run("backfill", jobs)
    assert times == {"A": (0, 10), "B": (10, 15), "D": (15, 65)}


def test_backfill_may_use_gpus_the_reservation_does_not_need(run):
    # 8 GPUs: A holds 4 until 10; B needs 6 at 10, leaving 2 spare then; E (2 GPUs, long) can run now.
    jobs = [
        job("A", 0, 4, 10, estimate_s=10),
        job("B", 1, 6, 5, estimate_s=5),
        job("E", 2, 2, 100, estimate_s=100),
    ]
    times, _ = run("backfill", jobs, cluster="1x8")
    assert times == {"A": (0, 10), "B": (10, 15), "E": (2, 102)}
