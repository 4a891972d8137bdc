"""Hand-computed schedules for the preemptive, size-based, fair-share and heterogeneity-aware
policies: the exact start and finish times a user would see."""

from __future__ import annotations

from sched_helpers import job

from suanli.schedule.policies.drf import DominantResourceFair
from suanli.schedule.policies.tiresias import Tiresias


def test_sjf_oracle_runs_the_shortest_waiting_job_next(run):
    jobs = [job("A", 0, 1, 10), job("B", 1, 1, 5), job("C", 2, 1, 2)]
    times, result = run("sjf-oracle", jobs, cluster="1x1")
    assert times == {"A": (0, 10), "C": (10, 12), "B": (12, 17)}
    assert result.preemptions == 0


def test_sjf_uses_user_estimates_not_true_lengths(run):
    # The user claims B is shorter than C; sjf believes the estimate, sjf-oracle knows better.
    jobs = [job("A", 0, 1, 10), job("B", 1, 1, 5, estimate_s=1), job("C", 2, 1, 2, estimate_s=4)]
    times, _ = run("sjf", jobs, cluster="1x1")
    assert times == {"A": (0, 10), "B": (10, 15), "C": (15, 17)}


def test_srtf_oracle_preempts_for_a_shorter_job(run):
    jobs = [job("A", 0, 1, 10), job("B", 2, 1, 3)]
    times, result = run("srtf-oracle", jobs, cluster="1x1")
    assert times == {"A": (0, 13), "B": (2, 5)}
    assert result.preemptions == 1


def test_preemption_cost_delays_the_resumed_job(run):
    jobs = [job("A", 0, 1, 10), job("B", 2, 1, 3)]
    times, _ = run("srtf-oracle", jobs, cluster="1x1", preemption_cost_s=1.5)
    assert times == {"A": (0, 14.5), "B": (2, 5)}


def test_tiresias_demotes_long_jobs_and_serves_new_ones_first(run):
    # Queue limit 3,250 GPU-s: A crosses it at 3,250 s; B arrives at 4000 in the top queue and preempts A.
    jobs = [job("A", 0, 1, 5000), job("B", 4000, 1, 100)]
    times, result = run("tiresias", jobs, cluster="1x1")
    assert times == {"A": (0, 5100), "B": (4000, 4100)}
    assert result.preemptions == 1


def test_tiresias_attained_service_is_gpus_times_time(run):
    # A uses 4 GPUs: it crosses 3,250 GPU-s after 812.5 s, so a 1-GPU job arriving at 1000 preempts it.
    jobs = [job("A", 0, 4, 2000), job("B", 1000, 1, 100)]
    times, _ = run("tiresias", jobs, cluster="1x4")
    assert times == {"A": (0, 2100), "B": (1000, 1100)}


def test_tiresias_promotes_a_starving_job(run):
    # Limit 100 GPU-s, knob 0.5 (the published simulator's dlas-gpu-05 rule). B preempts A at 120
    # (A executed 120 s); A has waited 0.5 x 120 s at 180 and goes back to the top queue, ahead of C
    # (arrives at 200): when B is demoted at 220, A runs first and ends at 250.
    policy = Tiresias(queue_limits_gpu_s=(100,), promote_knob=0.5)
    jobs = [job("A", 0, 1, 150), job("B", 120, 1, 500), job("C", 200, 1, 300)]
    times, _ = run(policy, jobs, cluster="1x1")
    assert {k: f for k, (_, f) in times.items()} == {"A": 250, "C": 750, "B": 950}


def test_suanli_orders_a_queue_by_estimated_remaining_time(run):
    # All three stay in the top queue; when A ends, C (estimated 10 s) goes before B (estimated 50 s).
    # Tiresias serves the same queue first-come first-served.
    jobs = [job("A", 0, 1, 100), job("B", 1, 1, 50, estimate_s=50), job("C", 2, 1, 10, estimate_s=10)]
    times, _ = run("suanli", jobs, cluster="1x1")
    assert times == {"A": (0, 100), "C": (100, 110), "B": (110, 160)}
    times, _ = run("tiresias", jobs, cluster="1x1")
    assert times == {"A": (0, 100), "B": (100, 150), "C": (150, 160)}


def test_suanli_lets_a_job_with_less_stated_time_left_preempt(run):
    # Both jobs state how long they run (like Slurm's --time). At 10, A has 990 s left by its estimate
    # and B 100 s: B preempts A. Without estimates the same jobs are 2D-LAS's (B waits for A).
    stated = [job("A", 0, 1, 1000, estimate_s=1000), job("B", 10, 1, 100, estimate_s=100)]
    times, result = run("suanli", stated, cluster="1x1")
    assert times == {"A": (0, 1100), "B": (10, 110)}
    assert result.preemptions == 1
    times, result = run("suanli", [job("A", 0, 1, 1000), job("B", 10, 1, 100)], cluster="1x1")
    assert times == {"A": (0, 1000), "B": (1000, 1100)}
    assert result.preemptions == 0


def test_suanli_an_estimate_set_too_low_buys_priority_only_until_it_runs_out(run):
    # A states 10 s but runs 1000 s; B states (and runs) 200 s and arrives at 5. A keeps its GPU past
    # its estimate, but is then guessed to need as long again as it has overrun: at 210 that is 200 s,
    # no longer less than B's, so B preempts it (plain SRTF would call A "almost done" until 1000).
    jobs = [job("A", 0, 1, 1000, estimate_s=10), job("B", 5, 1, 200, estimate_s=200)]
    times, _ = run("suanli", jobs, cluster="1x1")
    assert times == {"A": (0, 1200), "B": (210, 410)}
    times, _ = run("srtf", jobs, cluster="1x1")
    assert times == {"A": (0, 1000), "B": (1000, 1200)}


def test_suanli_keeps_new_jobs_quantum_ahead_of_long_stated_jobs(run):
    # A states 2 h; B states nothing and arrives at 100 s. B gets 2D-LAS's top-queue quantum first: A's
    # 7,100 s x 1 GPU left put it in the lower queue, so B preempts it.
    jobs = [job("A", 0, 1, 7200, estimate_s=7200), job("B", 100, 1, 50)]
    times, _ = run("suanli", jobs, cluster="1x1")
    assert times == {"A": (0, 7250), "B": (100, 150)}


def test_suanli_does_not_preempt_a_job_that_just_restarted_when_restarts_cost(run):
    # Restore cost 60 s, so a running job is protected for 600 s after it starts. A (long) is preempted
    # by C at 3700 and restarts at 3800 (restoring until 3860). B arrives at 3900: Tiresias would
    # preempt A at once; suanli waits until A has run 600 s (4400). A made 540 s of progress then,
    # so after B it restarts at 4500, restores 60 s and needs 760 s more: it ends at 5320.
    from suanli.schedule.policies.suanli import Suanli

    jobs = [job("A", 0, 1, 5000), job("C", 3700, 1, 100), job("B", 3900, 1, 100)]
    times, result = run(Suanli(preemption_cost_s=60), jobs, cluster="1x1", preemption_cost_s=60)
    assert times == {"A": (0, 5320), "C": (3700, 3800), "B": (4400, 4500)}
    assert result.preemptions == 2
    times, _ = run("tiresias", jobs, cluster="1x1", preemption_cost_s=60)
    assert times["B"] == (3900, 4000)


def test_drf_alternates_between_users(run):
    jobs = [job(f"a{i}", 0, 1, 10, user="a") for i in range(1, 5)] + [
        job(f"b{i}", 0, 1, 10, user="b") for i in (1, 2)
    ]
    times, _ = run("drf", jobs, cluster="1x4")
    assert {k for k, (s, _) in times.items() if s == 0} == {"a1", "a2", "b1", "b2"}
    times, _ = run("fifo", jobs, cluster="1x4")
    assert {k for k, (s, _) in times.items() if s == 0} == {"a1", "a2", "a3", "a4"}


def test_drf_quota_is_guaranteed_and_borrowers_are_reclaimed(run):
    # Quotas a=2, b=2 on 4 GPUs. a borrows all 4; when b arrives at 10 it reclaims 2, preempting a's
    # newest jobs (a4, then a3), which resume at 20 when b's jobs end.
    policy = DominantResourceFair(quotas={"a": 2, "b": 2})
    jobs = [job(f"a{i}", 0, 1, 100, user="a") for i in range(1, 5)] + [
        job(f"b{i}", 10, 1, 10, user="b") for i in (1, 2)
    ]
    times, result = run(policy, jobs, cluster="1x4")
    assert times == {
        "a1": (0, 100),
        "a2": (0, 100),
        "a3": (0, 110),
        "a4": (0, 110),
        "b1": (10, 20),
        "b2": (10, 20),
    }
    assert result.preemptions == 2


def test_priority_preempts_lower_priority_work(run):
    jobs = [job("L", 0, 2, 100), job("H", 10, 1, 10, priority=5)]
    times, result = run("priority", jobs, cluster="1x2")
    assert times == {"L": (0, 110), "H": (10, 20)}
    assert result.preemptions == 1


def test_priority_does_not_preempt_equal_priority(run):
    jobs = [job("L", 0, 2, 100), job("H", 10, 1, 10)]
    times, result = run("priority", jobs, cluster="1x2")
    assert times == {"L": (0, 100), "H": (100, 110)}
    assert result.preemptions == 0


def test_gavel_waits_for_a_fast_gpu_instead_of_a_much_slower_one(run):
    speed = (("K80", 0.2), ("V100", 1.0))
    jobs = [job("J1", 0, 1, 100, throughput=speed), job("J2", 1, 1, 100, throughput=speed)]
    times, _ = run("gavel", jobs, cluster="1x1xV100,1x1xK80")
    assert times == {"J1": (0, 100), "J2": (100, 200)}
    # FIFO ignores speeds: best fit by name puts J1 on the K80, where it runs 5x slower.
    times, _ = run("fifo", jobs, cluster="1x1xV100,1x1xK80")
    assert times == {"J1": (0, 500), "J2": (1, 101)}


def test_consolidated_placement_waits_for_one_node_count_placement_does_not(run):
    # Two nodes of 4 GPUs, each with 3 busy: a 2-GPU job fits on one node only after 100 s, but
    # counting GPUs across the cluster (as published simulators do) it starts at once.
    jobs = [job("A", 0, 3, 100), job("B", 0, 3, 100), job("C", 1, 2, 10)]
    times, _ = run("fifo", jobs, cluster="2x4")
    assert times["C"] == (100, 110)
    times, _ = run(get_count_fifo(), jobs, cluster="2x4", placement="count")
    assert times["C"] == (1, 11)


def get_count_fifo():
    from suanli.schedule import get_policy

    return get_policy("fifo", consolidate=False)


def test_suanli_prefers_the_fastest_gpu_type(run):
    # The default is heterogeneity-aware too: same schedule as gavel on a V100 + K80 cluster.
    speed = (("K80", 0.2), ("V100", 1.0))
    jobs = [job("J1", 0, 1, 100, throughput=speed), job("J2", 1, 1, 100, throughput=speed)]
    times, _ = run("suanli", jobs, cluster="1x1xV100,1x1xK80")
    assert times == {"J1": (0, 100), "J2": (100, 200)}


def test_suanli_shares_a_queue_between_users(run):
    # Two GPUs. User a's two jobs hold both when b's job arrives: all three are in the top queue, and
    # the default ranks b's first job ahead of a's second (each user's first GPU before anyone's
    # second), so b1 preempts a2. Tiresias (and the default with one user) serve the queue in order.
    from suanli.schedule.policies.suanli import Suanli

    jobs = [job("a1", 0, 1, 1000, user="a"), job("a2", 0, 1, 1000, user="a"), job("b1", 10, 1, 100, user="b")]
    times, result = run("suanli", jobs, cluster="1x2")
    assert times == {"a1": (0, 1000), "a2": (0, 1100), "b1": (10, 110)}
    assert result.preemptions == 1
    expected = {"a1": (0, 1000), "a2": (0, 1000), "b1": (1000, 1100)}
    assert run("tiresias", jobs, cluster="1x2")[0] == expected
    assert run(Suanli(fair_groups=False), jobs, cluster="1x2")[0] == expected
    one_user = [job(j.id, j.submit_s, 1, j.duration_s) for j in jobs]
    assert run("suanli", one_user, cluster="1x2")[0] == expected


def test_suanli_promotes_starving_jobs_only_when_several_users_share_the_cluster(run):
    # The published dlas-gpu-K rule (here K = 0.5, one queue limit at 100 GPU-s, as in the Tiresias
    # starvation test above) is in force only while jobs of more than one user are present: with
    # users a, b, a, A goes back to the top queue at 180 and ends at 250; with one user the default
    # stays the published dlas-gpu (no promotion).
    from suanli.schedule.policies.suanli import Suanli

    def jobs(users):
        return [
            job("A", 0, 1, 150, user=users[0]),
            job("B", 120, 1, 500, user=users[1]),
            job("C", 200, 1, 300, user=users[2]),
        ]

    policy = Suanli(queue_limits_gpu_s=(100,), group_promote_knob=0.5)
    times, _ = run(policy, jobs("aba"), cluster="1x1")
    assert {k: f for k, (_, f) in times.items()} == {"A": 250, "C": 750, "B": 950}
    policy = Suanli(queue_limits_gpu_s=(100,), group_promote_knob=0.5)
    times, _ = run(policy, jobs("aaa"), cluster="1x1")
    assert (
        times == run(Suanli(queue_limits_gpu_s=(100,), group_promote_knob=0), jobs("aaa"), cluster="1x1")[0]
    )
    assert times["A"] == (0, 550)


def test_fair_interleave_is_max_min_over_groups():
    from suanli.schedule.policies.suanli import fair_interleave
    from suanli.schedule.policy import JobRequest

    def req(jid, user, gpus=1):
        return JobRequest(jid, 0.0, gpus=gpus, user=user)

    # One level: a has four 1-GPU jobs, b one 2-GPU job and one 1-GPU job; c one job in a lower queue.
    level = [
        req("a1", "a"),
        req("a2", "a"),
        req("a3", "a"),
        req("b1", "b", 2),
        req("a4", "a"),
        req("b2", "b"),
    ]
    entries = [((0, 0, k), r) for k, r in enumerate(level)]
    entries.append(((0, 1, 0), req("c1", "c")))
    order = [r.id for _, r in sorted(fair_interleave(entries), key=lambda e: e[0])]
    assert order == ["a1", "b1", "a2", "a3", "b2", "a4", "c1"]
    single = [((0, 0, k), req(f"x{k}", "x")) for k in range(3)]
    assert fair_interleave(single) is single
