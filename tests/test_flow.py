"""The main flow's stages: the estimate of a job with a workload block, in the dry run."""

from __future__ import annotations

import pytest

from jobhelpers import REPO, cli, cli_json
from suanli import Stage
from suanli.core.errors import BadInput
from suanli.flow import estimate
from suanli.jobs import load_spec, parse_spec


def test_stages_run_in_order():
    assert [s.name for s in sorted(Stage, key=lambda s: s.value)] == ["ESTIMATE", "SCHEDULE", "RUN", "RECORD"]


def test_dry_run_of_a_workload_job_shows_the_estimate_for_its_hardware():
    doc = cli_json("run", str(REPO / "examples" / "plan" / "job.yaml"), "--dry-run", "--backend", "ray")
    est = doc["estimate"]
    assert est["accelerator"] == "H100"
    assert est["layout"]["tp"] * est["layout"]["pp"] * est["layout"]["dp"] == 32  # 8 GPUs x 4 nodes
    assert est["device_hours_low"] < est["device_hours"] < est["device_hours_high"]
    assert est["device_hours"] == pytest.approx(est["wall_hours"] * 32, rel=1e-6)
    human = cli("run", str(REPO / "examples" / "plan" / "job.yaml"), "--dry-run", "--backend", "ray").stdout
    assert "estimate:" in human and "H100-hours" in human


def test_no_estimate_without_workload_or_accelerator():
    assert estimate(parse_spec({"run": "x"})) is None
    assert estimate(parse_spec({"run": "x", "workload": {"params": 1e9, "tokens": 1e9}})) is None


def test_bad_workload_block_is_one_line(tmp_path):
    spec = load_spec(REPO / "examples" / "plan" / "job.yaml")
    bad = spec.model_copy(update={"workload": {"params": 7e9, "tokns": 1e12}})
    with pytest.raises(BadInput, match=r"workload\.tokns"):
        estimate(bad)
