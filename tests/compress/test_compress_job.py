"""The compression example is a valid suanli job, and distillation runs on its own as a job payload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_example_job_spec_loads():
    from suanli.jobs.spec import load_spec

    spec = load_spec(REPO / "examples" / "compress" / "job.yaml")
    assert spec.name == "compress-digits"
    assert "run_digits.py" in spec.run
    assert (REPO / "examples" / "compress" / "run_digits.py").exists()


def test_distill_runs_as_a_standalone_payload(digits, tmp_path: Path):
    out = tmp_path / "student"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "suanli.compress.methods.distill",
            "--teacher",
            digits["model"],
            "--weights",
            digits["weights"],
            "--student",
            "width=0.5",
            "--data",
            digits["calib"],
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["metric"] == "student_parameters" and line["value"] > 0
    from suanli.compress import load

    assert load(str(out))(digits["x_test"][:2]).shape == (2, 10)
