"""Bad tune files: one line naming the field (and line), exit code 2, nothing stored, no job started."""

from __future__ import annotations

from pathlib import Path

import pytest
from tune_helpers import BASE_TUNE, run_tune, write_trial, write_tune

from suanli.cli import state
from suanli.tune import load_tune_spec
from suanli.tune.spec import param_env, render


@pytest.fixture(autouse=True)
def fresh_cli_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_client", [])


CASES = {
    "unknown field": (
        BASE_TUNE + "pruners: median\n",
        "tune.yaml:5: pruners=median: is not a known field (did you mean: pruner?)",
    ),
    "unknown nested field": (
        BASE_TUNE.replace("{metric: score, direction: maximize}", "{metric: score, directon: maximize}"),
        "tune.yaml:2: objective.directon=maximize: is not a known field (did you mean: direction?)",
    ),
    "low >= high": (
        BASE_TUNE.replace("low: 0.0, high: 1.0", "low: 1.0, high: 1.0"),
        "tune.yaml:4: params.x.low=1.0: must be less than high (1)",
    ),
    "unknown param type": (
        BASE_TUNE.replace("type: float", "type: floot"),
        "tune.yaml:4: params.x.type=floot: must be one of float, int, categorical (did you mean: float?)",
    ),
    "log with low <= 0": (
        BASE_TUNE.replace("high: 1.0}", "high: 1.0, log: true}"),
        "params.x.low=0.0: must be > 0 when log: true",
    ),
    "unknown pruner": (
        BASE_TUNE + "pruner: medain\n",
        "tune.yaml:5: pruner=medain: must be one of median, successive_halving, none (did you mean: median?)",
    ),
    "unknown sampler": (
        BASE_TUNE + "sampler: tpee\n",
        "tune.yaml:5: sampler=tpee: must be one of tpe, random (did you mean: tpe?)",
    ),
    "objective metric missing": (
        BASE_TUNE.replace("{metric: score, direction: maximize}", "{direction: maximize}"),
        "tune.yaml:2: objective.metric=(missing): is required",
    ),
    "objective missing": (
        BASE_TUNE.replace("objective: {metric: score, direction: maximize}\n", ""),
        "objective=(missing): is required",
    ),
    "missing job file": (
        BASE_TUNE.replace("job: job.yaml", "job: nope.yaml"),
        "tune.yaml:1: job=nope.yaml: must be an existing job file",
    ),
    "parallel < 1": (BASE_TUNE + "parallel: 0\n", "tune.yaml:5: parallel=0: must be at least 1"),
    "negative budget": (
        BASE_TUNE + "budget_device_hours: -1\n",
        "tune.yaml:5: budget_device_hours=-1.0: must be a positive number of device-hours",
    ),
    "enqueued point outside the search": (
        BASE_TUNE + "enqueue: [{y: 0.5}]\n",
        "enqueue.0.y=0.5: is not a param",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tune_file_is_one_line_exit_2_and_stores_nothing(case, tmp_path: Path, suanli_home: Path):
    text, expected = CASES[case]
    write_trial(tmp_path)
    result = run_tune(str(write_tune(tmp_path, text)), "--json")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert not (suanli_home / "suanli.db").exists()  # nothing stored, no job, no study


def test_negative_budget_on_the_command_line(tmp_path: Path, suanli_home: Path):
    write_trial(tmp_path)
    result = run_tune(str(write_tune(tmp_path, BASE_TUNE)), "--budget-device-hours", "-0.5")
    assert result.exit_code == 2
    assert "budget_device_hours=-0.5: must be a positive number of device-hours" in result.stderr
    assert not (suanli_home / "suanli.db").exists()


def test_placeholder_that_is_not_a_param(tmp_path: Path, suanli_home: Path):
    write_trial(tmp_path, run="python trial.py {{xx}}")
    result = run_tune(str(write_tune(tmp_path, BASE_TUNE)))
    assert result.exit_code == 2
    assert "run={{xx}}: is not a param of the search (did you mean: x?)" in result.stderr
    assert not (suanli_home / "suanli.db").exists()


def test_missing_tune_file(tmp_path: Path):
    result = run_tune(str(tmp_path / "absent.yaml"))
    assert result.exit_code == 2
    assert "absent.yaml: does not exist" in result.stderr


def test_good_file_resolves_job_and_names_the_study_after_its_directory(tmp_path: Path):
    work = tmp_path / "lr-search"
    work.mkdir()
    write_trial(work)
    spec = load_tune_spec(write_tune(work, BASE_TUNE + "pruner: {type: successive_halving}\n"))
    assert spec.study == "lr-search"
    assert Path(spec.job) == (work / "job.yaml").resolve()
    assert spec.pruner.type == "successive_halving"
    assert (spec.trials, spec.parallel, spec.sampler) == (10, 1, "tpe")


def test_parameters_reach_the_job_quoted_and_as_env_vars():
    params = {"lr": 0.001, "batch": 64, "opt": "adam w", "flag": True}
    assert render("train --lr {{lr}} --batch {{ batch }} --opt {{opt}} {{flag}}", params) == (
        "train --lr 0.001 --batch 64 --opt 'adam w' true"
    )
    assert param_env(params) == {
        "SUANLI_PARAM_LR": "0.001",
        "SUANLI_PARAM_BATCH": "64",
        "SUANLI_PARAM_OPT": "adam w",
        "SUANLI_PARAM_FLAG": "true",
    }
