"""Shared by the tune tests: the `tune` command mounted on a throwaway Typer app, and a tiny trial job."""

from __future__ import annotations

from pathlib import Path

from jobhelpers import Invoked, invoke

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


def run_tune(*args: str) -> Invoked:
    """`suanli tune ARGS` in-process, errors as the main CLI prints them."""
    return invoke("tune", *args)


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
