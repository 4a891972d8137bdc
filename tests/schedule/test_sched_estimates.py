"""Runtime estimates the live scheduler gives its policy: the job's own (stated in its spec, or the
estimator's time for its workload), else a guess from the user's finished jobs."""

from __future__ import annotations

import pytest

from suanli.core.errors import BadInput
from suanli.estimate import estimate_train
from suanli.jobs import parse_spec
from suanli.run.scheduling import job_history, job_request, run_seconds
from suanli.store import Store


def submitted(store: Store, **spec):
    job_id = store.submit(parse_spec({"name": "j", "run": "true", **spec}))
    return store.get(job_id)


def test_a_stated_expected_duration_is_the_estimate(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    request = job_request(submitted(store, expected_duration="90m"))
    assert request.estimated_duration_s == 5400 and request.estimate_stated


def test_a_training_workload_is_timed_by_the_estimator_on_the_jobs_own_accelerators(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    workload = {"kind": "train", "params": 7e9, "tokens": 1e12, "seq_len": 4096, "precision": "bf16"}
    job = submitted(store, resources={"accelerators": "H100:8"}, num_nodes=4, workload=workload)
    request = job_request(job)
    expected = estimate_train(
        params=7e9, tokens=1e12, seq_len=4096, precision="bf16", accelerator="H100", count=32
    )
    assert request.estimated_duration_s == pytest.approx(expected.wall_hours * 3600)
    assert request.estimate_stated
    # A stated duration wins over the workload's.
    job = submitted(store, resources={"accelerators": "H100:8"}, workload=workload, expected_duration="3d")
    assert job_request(job).estimated_duration_s == 3 * 86400


def test_without_an_estimate_the_users_finished_jobs_of_that_size_give_a_guess(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    done = []
    for _ in range(2):
        job = submitted(store, user="ann")
        attempt = store.start_attempt(job.id, "n1", [], lambda j, n: tmp_path / f"{j}-{n}")
        store.finish_attempt(job.id, attempt.number, exit_code=0, signal=None, reason="exited with code 0")
        done.append(store.get(job.id))
    waiting = submitted(store, user="ann")
    request = job_request(waiting, job_history(store))
    assert request.estimated_duration_s == pytest.approx(sum(map(run_seconds, done)) / 2)
    assert not request.estimate_stated
    assert job_request(submitted(store, user="bob"), job_history(store)).estimated_duration_s is None


@pytest.mark.parametrize("value", ["-2h", "soon", 0])
def test_a_bad_expected_duration_names_the_field_and_what_is_allowed(value):
    with pytest.raises(BadInput) as err:
        parse_spec({"run": "true", "expected_duration": value})
    assert str(err.value).startswith(f"expected_duration={value}: must be a positive duration")
