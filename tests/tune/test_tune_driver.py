"""Real studies: trials run as suanli jobs through the agent, are pruned, fail, resume, and stop on budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from tune_helpers import BASE_TUNE, run_tune, write_trial, write_tune

from suanli import Client
from suanli.cli import state
from suanli.core.errors import BadInput
from suanli.store.records import NodeRecord
from suanli.tune import load_tune_spec, tune
from suanli.tune.driver import pool_capacity


@pytest.fixture(autouse=True)
def fresh_cli_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_client", [])


STUDY = (
    BASE_TUNE
    + """\
trials: 4
parallel: 2
pruner: {type: median, startup_trials: 1}
sampler: random
seed: 0
study: tiny
enqueue: [{x: 0.8}, {x: 0.9}, {x: 0.1}, {x: 0.0}]
"""
)


def _overlap(jobs) -> int:
    """The most trial jobs that ran at the same moment."""
    spans = [(j.attempts[0].started_at, j.attempts[-1].ended_at) for j in jobs if j.attempts]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_study_runs_trials_as_jobs_prunes_fails_and_resumes(tmp_path: Path, suanli_home: Path):
    write_trial(tmp_path)
    tune_file = write_tune(tmp_path, STUDY)
    result = run_tune(str(tune_file), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    trials = {t["number"]: t for t in doc["trials"]}
    # The better trial starts second, so it cannot be pruned against the first however the two
    # interleave (a worse second trial would be, whenever the first finished before it reported).
    assert [trials[n]["params"]["x"] for n in range(4)] == [0.8, 0.9, 0.1, 0.0]
    assert [trials[n]["state"] for n in range(4)] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert trials[0]["value"] == pytest.approx(3.2)  # the last score the job printed
    assert trials[1]["value"] == pytest.approx(3.6)
    # 0.1 is far below the finished trials' median: pruned at the first step it reports once a trial
    # has finished (0 or 1, by how the trials interleave), never left to run its last step (3).
    assert re.fullmatch(r"pruned at step [01]", trials[2]["reason"])
    assert "exited with code 3" in trials[3]["reason"]
    assert doc["best"] == {"number": 1, "params": {"x": 0.9}, "value": pytest.approx(3.6)}
    assert doc["stopped_because"] == "trials"
    assert doc["study"] == "tiny" and doc["parallel"] == 2
    assert doc["device_hours_used"] == pytest.approx(sum(t["device_hours"] for t in doc["trials"]), abs=1e-5)
    assert all(t["device_hours"] > 0 for t in doc["trials"])
    assert "trials" in result.stderr  # the progress bar went to stderr

    client = Client(start_agent=False)
    jobs = [client.get(t["job_id"]) for t in doc["trials"]]
    assert [j.name for j in jobs] == [f"tiny-trial-{n}" for n in range(4)]
    assert [j.state for j in jobs] == ["SUCCEEDED", "SUCCEEDED", "CANCELLED", "FAILED"]
    assert all(j.spec.labels["tune_study"] == "tiny" for j in jobs)
    assert _overlap(jobs) == 2  # two at once, never more

    tables = set(inspect(create_engine(client.store.url)).get_table_names())
    assert {"jobs", "metrics", "studies", "trials", "trial_intermediate_values"} <= tables

    # Rerunning with the same study resumes it: the four trials are kept, one more runs.
    again = run_tune(str(tune_file), "--trials", "5")
    assert again.exit_code == 0, again.stderr
    assert "stopped: all 5 trials finished" in again.stdout
    assert re.search(r"^best: trial \d, score=[\d.]+, x=[\d.]+$", again.stdout, re.MULTILINE)
    names = sorted(j.name for j in client.jobs(all=True))
    assert names == [f"tiny-trial-{n}" for n in range(5)]  # one new job; the old trials did not rerun


def test_budget_stops_the_study_and_parallel_is_capped_by_the_pool(tmp_path: Path, suanli_home: Path):
    node_cpus = Client(start_agent=False).pool()[0].cpus
    write_trial(tmp_path, cpus=node_cpus)  # one trial fills the machine
    text = BASE_TUNE + "trials: 5\nparallel: 3\nbudget_device_hours: 0.0001\nstudy: capped\n"
    result = run_tune(str(write_tune(tmp_path, text)), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["parallel"] == 1
    assert doc["stopped_because"] == "budget"
    assert len(doc["trials"]) == 1
    assert doc["device_hours_used"] >= 0.0001


def test_ctrl_c_cancels_running_trial_jobs(tmp_path: Path, suanli_home: Path):
    write_trial(tmp_path, run="sleep 60 # {{x}}")
    spec = load_tune_spec(write_tune(tmp_path, BASE_TUNE + "trials: 2\nparallel: 2\n"))

    def interrupt(progress) -> None:
        if progress.running:
            raise KeyboardInterrupt

    client = Client()
    result = tune(spec, client=client, on_progress=interrupt)
    assert result.stopped_because == "interrupted"
    assert [t.state for t in result.trials] == ["FAIL", "FAIL"]
    assert all(client.get(t.job_id).state == "CANCELLED" for t in result.trials)


def test_a_trial_left_running_by_a_driver_that_died_is_adopted(tmp_path: Path):
    write_trial(tmp_path)
    spec = load_tune_spec(write_tune(tmp_path, BASE_TUNE + "trials: 1\nenqueue: [{x: 0.5}]\npruner: none\n"))

    def die(progress) -> None:
        if progress.running:
            raise SystemExit(9)  # not Ctrl-C: the driver is gone without cleaning up

    with pytest.raises(SystemExit):
        tune(spec, client=Client(), on_progress=die)
    result = tune(spec, client=Client())
    assert [(t.state, t.value) for t in result.trials] == [("COMPLETE", pytest.approx(2.0))]
    assert len(Client(start_agent=False).jobs(all=True)) == 1  # the same job, not a new one


def test_a_resumed_study_must_keep_its_direction(tmp_path: Path):
    write_trial(tmp_path)
    tune_file = write_tune(tmp_path, BASE_TUNE + "trials: 1\nenqueue: [{x: 0.5}]\n")
    assert run_tune(str(tune_file)).exit_code == 0
    flipped = write_tune(tmp_path, tune_file.read_text().replace("maximize", "minimize"))
    result = run_tune(str(flipped))
    assert result.exit_code == 2
    assert "objective.direction=minimize: study" in result.stderr and "maximize" in result.stderr


def test_pool_capacity_counts_every_resource():
    node = NodeRecord(
        "n", cpus=16, memory_bytes=64 * 2**30, accelerator="A100", gpus=4, status="UP", heartbeat_at=0.0
    )
    from suanli.jobs.spec import JobSpec

    def spec(**resources) -> JobSpec:
        return JobSpec(run="true", resources=resources)

    assert pool_capacity(spec(cpus=2), [node]) == 8
    assert pool_capacity(spec(cpus=2, accelerators="A100:1"), [node, node]) == 8
    assert pool_capacity(spec(cpus=1, memory="40GiB"), [node]) == 1
    with pytest.raises(BadInput):
        spec(cpus=0)


@pytest.mark.slow
def test_digits_example(suanli_home: Path):
    repo = Path(__file__).resolve().parents[2]
    result = run_tune(str(repo / "examples" / "digits-tune" / "tune.yaml"), "--trials", "4", "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["study"] == "digits-lr" and len(doc["trials"]) == 4
    assert doc["best"]["value"] > 0.9
