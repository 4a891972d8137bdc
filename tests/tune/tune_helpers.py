"""Shared by the tune tests: the `tune` command mounted on a throwaway Typer app, and a tiny trial job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer
from typer.testing import CliRunner

from suanli.cli.tune import tune
from suanli.core.errors import SuanliError

# A trial that prints score = x * (step + 1) for 4 steps, 0.3 s apart; x == 0 fails at once.
TRIAL_SCRIPT = """\
import json, os, sys, time
x = float(sys.argv[1])
assert os.environ["SUANLI_PARAM_X"] == sys.argv[1], "the env var and the placeholder disagree"
if x == 0:
    sys.exit(3)
for step in range(4):
    print(json.dumps({"metric": "score", "value": x * (step + 1), "step": step}), flush=True)
    time.sleep(0.3)
"""


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_tune(*args: str) -> Outcome:
    """`suanli tune ARGS` in-process, with SuanliError turned into its exit code as the main CLI does."""
    app = typer.Typer()
    app.command()(tune)
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SuanliError):
        return Outcome(
            result.exception.exit_code, result.stdout, result.stderr + f"error: {result.exception}\n"
        )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def write_trial(directory: Path, *, cpus: float = 1, run: str = "python trial.py {{x}}") -> Path:
    (directory / "trial.py").write_text(TRIAL_SCRIPT)
    job = directory / "job.yaml"
    job.write_text(f"name: tiny\nresources: {{cpus: {cpus:g}}}\nrun: {run}\n")
    return job


def write_tune(directory: Path, text: str, name: str = "tune.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


BASE_TUNE = """\
job: job.yaml
objective: {metric: score, direction: maximize}
params:
  x: {type: float, low: 0.0, high: 1.0}
"""
