"""The one live scheduling pass (run/scheduling.py) on a real store: what the agent, `suanli queue` and
`--dry-run` decide from, and the queue view that keeps it cheap."""

from __future__ import annotations

from suanli.jobs.spec import parse_spec
from suanli.run.local import run_dir_for
from suanli.run.scheduling import JobsView, cluster_state, decide_now
from suanli.schedule.policies import get_policy
from suanli.store.records import NodeSlice
from suanli.store.store import Store


def _spec(**fields):
    return parse_spec({"run": "true", **fields})


def _store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.register_nodes([(f"n{i}", 8.0, 64 * 2**30, "A100", 4) for i in range(3)], pool="ray test")
    return store


def test_free_capacity_comes_from_the_running_attempts_placements(tmp_path):
    store = _store(tmp_path)
    (gang,) = store.submit_many([_spec(num_nodes=2, resources={"cpus": 2, "accelerators": "A100:4"})])
    store.start_attempt(gang, "n0", [], run_dir_for, [NodeSlice("n0", 4, 2.0, 0), NodeSlice("n2", 4, 2.0, 0)])
    cluster = cluster_state(store.nodes(usage=False), store.running())
    free = {n.name: (n.free_gpus, n.free_cpus) for n in cluster.nodes}
    assert free == {"n0": (0, 6.0), "n1": (4, 8.0), "n2": (0, 6.0)}
    by_name = {n.name: n for n in store.nodes()}
    assert by_name["n2"].used_gpus == 4 and by_name["n2"].jobs[0][0] == gang  # `suanli nodes` agrees


def test_a_gang_waits_with_the_reason_in_the_pools_terms(tmp_path):
    store = _store(tmp_path)
    (busy,) = store.submit_many([_spec(resources={"accelerators": "A100:4"})])
    store.start_attempt(busy, "n1", [], run_dir_for, [NodeSlice("n1", 4, 1.0, 0)])
    (gang,) = store.submit_many([_spec(num_nodes=3, resources={"accelerators": "A100:4"})])
    decided = decide_now(store, get_policy("fifo"), store.nodes())
    assert decided.decisions.starts == []
    assert decided.order() == [(gang, "needs 3 nodes with 4 free A100 GPUs each; 2 such node(s) free")]


def test_lost_nodes_are_not_scheduled_on(tmp_path):
    store = _store(tmp_path)
    store.register_nodes([], lost=["n0", "n1"])
    (job,) = store.submit_many([_spec(resources={"accelerators": "A100:2"})])
    decided = decide_now(store, get_policy("fifo"), store.nodes())
    assert [(s.job_id, [sl.node for sl in s.placement]) for s in decided.decisions.starts] == [(job, ["n2"])]


def test_a_dry_run_job_is_decided_with_the_queue_ahead_of_it(tmp_path):
    store = _store(tmp_path)
    ahead = store.submit_many([_spec(resources={"accelerators": "A100:4"}) for _ in range(3)])
    preview = Store.preview(_spec(resources={"accelerators": "A100:4"}))
    decided = decide_now(store, get_policy("fifo"), store.nodes(), extra=[preview])
    assert [s.job_id for s in decided.decisions.starts] == ahead
    assert decided.order()[-1][0] == preview.id


def test_jobs_view_follows_submissions_starts_cancels_and_ends(tmp_path):
    store = _store(tmp_path)
    view = JobsView(store)
    a, b = store.submit_many([_spec(), _spec()])
    view.refresh()
    assert [j.id for j in view.pending()] == [a, b] and view.running() == []
    store.start_attempt(a, "n0", [], run_dir_for, [NodeSlice("n0", 0, 1.0, 0)])
    store.request_cancel(b)
    (c,) = store.submit_many([_spec(name="late")])
    view.refresh()
    assert [j.id for j in view.pending()] == [c]
    assert [(j.id, at.number, j.cancel_requested) for j, at in view.running()] == [(a, 1, False)]
    store.request_cancel(a)  # no state changes: the view asks for cancel requests each time
    assert [j.cancel_requested for j, _ in view.running()] == [True]
    store.set_attempt_process(a, 1, 4242, 1.0)
    view.touch(a)
    view.refresh()
    assert view.running()[0][1].pid == 4242
    store.finish_attempt(a, 1, exit_code=None, signal="SIGTERM", reason="stopped", preempted=False)
    view.refresh()
    assert view.running() == [] and [j.id for j in view.pending()] == [c]
    assert view.pending() == store.list_jobs(["PENDING"], with_attempts=True)  # the same as a full read


def test_a_job_that_finished_before_its_preemption_took_effect_succeeds(tmp_path):
    store = _store(tmp_path)
    (job,) = store.submit_many([_spec()])
    store.start_attempt(job, "n0", [], run_dir_for, [NodeSlice("n0", 0, 1.0, 0)])
    state = store.finish_attempt(
        job, 1, exit_code=0, signal=None, reason="exited with code 0", preempted=True
    )
    assert state == "SUCCEEDED" and store.get(job).reason == "exited with code 0"
