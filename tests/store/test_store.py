"""The store: transactional state changes, the event log, and concurrent writers on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from suanli.core.errors import NotFound
from suanli.jobs import JobState, parse_spec
from suanli.jobs.states import IllegalTransition
from suanli.store import MetricPoint, Store


def spec(name: str = "j", **extra):
    return parse_spec({"name": name, "run": "true", **extra})


def run_dir(job_id: int, n: int) -> str:
    return f"/nonexistent/job-{job_id}/attempt-{n}"


def test_lifecycle_and_event_log(db_url):
    store = Store(db_url)
    job_id = store.submit(spec(retries=1))
    a1 = store.start_attempt(job_id, "n1", [], run_dir)
    assert store.get(job_id).state == "RUNNING"
    assert (
        store.finish_attempt(job_id, a1.number, exit_code=3, signal=None, reason="exited with code 3")
        == "PENDING"
    )
    a2 = store.start_attempt(job_id, "n1", [], run_dir)
    assert a2.number == 2
    store.add_metrics(job_id, 2, [MetricPoint("loss", 0.5, 1, 1.0), MetricPoint("loss", 0.25, 2, 2.0)])
    assert (
        store.finish_attempt(job_id, 2, exit_code=0, signal=None, reason="exited with code 0") == "SUCCEEDED"
    )
    record = store.get(job_id)
    assert [a.exit_code for a in record.attempts] == [3, 0]
    assert record.metrics == {"loss": 0.25}
    events = [(e.from_state, e.to_state) for e in store.events(job_id)]
    assert events == [
        (None, "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert "retrying" in store.events(job_id)[2].reason
    # terminal is terminal: nothing restarts it, and the failed try left no trace in the state.
    with pytest.raises(IllegalTransition):
        store.start_attempt(job_id, "n1", [], run_dir)
    assert store.get(job_id).state == "SUCCEEDED"
    store.close()


def test_no_retries_left_fails(db_url):
    store = Store(db_url)
    job_id = store.submit(spec())
    store.start_attempt(job_id, "n1", [], run_dir)
    assert (
        store.finish_attempt(job_id, 1, exit_code=None, signal="SIGKILL", reason="killed") == JobState.FAILED
    )
    assert store.get(job_id).attempts[0].signal == "SIGKILL"
    store.close()


def test_cancel_pending_and_running(db_url):
    store = Store(db_url)
    pending, running = store.submit_many([spec("a"), spec("b")])
    assert store.request_cancel(pending) == "CANCELLED"
    store.start_attempt(running, "n1", [], run_dir)
    assert store.request_cancel(running) == "RUNNING"
    assert store.get(running).cancel_requested
    assert store.finish_attempt(running, 1, exit_code=None, signal="SIGTERM", reason="x") == "CANCELLED"
    with pytest.raises(NotFound):
        store.request_cancel(9999)
    store.close()


def test_unknown_job_id(db_url):
    store = Store(db_url)
    with pytest.raises(NotFound) as e:
        store.get(42)
    assert "job id=42" in str(e.value) and e.value.exit_code == 2
    store.close()


def test_node_usage(db_url):
    store = Store(db_url)
    store.register_node("n1", 8, 64 * 2**30, "A100", 8)
    job_id = store.submit(spec(resources={"cpus": 2, "accelerators": "A100:4", "memory": "8GiB"}))
    store.start_attempt(job_id, "n1", [0, 1, 2, 3], run_dir)
    (node,) = store.nodes()
    assert (node.used_cpus, node.used_gpus, node.used_memory_bytes, node.running_jobs) == (2, 4, 8 * 2**30, 1)
    store.close()


SUBMITTER = textwrap.dedent(
    """
    import sys
    from suanli.jobs import parse_spec
    from suanli.store import Store
    store = Store(sys.argv[1])
    tag = sys.argv[2]
    sys.stdin.readline()  # start together
    for i in range(500):
        store.submit(parse_spec({"name": f"{tag}-{i}", "run": "true"}))
    """
)


def test_two_processes_submitting_500_each_lose_and_duplicate_nothing(db_url):
    Store(db_url).close()  # create the schema first, as the CLI does
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, db_url, tag],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = Store(db_url)
    jobs = store.list_jobs()
    names = [j.name for j in jobs]
    assert len(jobs) == 1000
    assert len({j.id for j in jobs}) == 1000
    assert sorted(names) == sorted([f"a-{i}" for i in range(500)] + [f"b-{i}" for i in range(500)])
    assert len(store.events()) == 1000
    store.close()


def test_bad_db_url():
    from suanli.core.errors import BadInput

    with pytest.raises(BadInput, match="db=mysql://x"):
        Store("mysql://x")
