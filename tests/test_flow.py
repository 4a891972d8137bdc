"""The main flow's stages: the estimate of a job with a workload block, in the dry run."""

from __future__ import annotations

import pytest

from jobhelpers import REPO, cli, cli_json
from suanli import Stage
from suanli.core.errors import BadInput
from suanli.flow import estimate
from suanli.jobs import parse_spec
from suanli.store.store import Store


def test_stages_run_in_order():
    assert [s.name for s in sorted(Stage, key=lambda s: s.value)] == ["ESTIMATE", "SCHEDULE", "RUN", "RECORD"]


def test_dry_run_of_a_workload_job_shows_the_estimate_for_its_hardware():
    job = str(REPO / "examples" / "plan" / "job.yaml")
    proc = cli("run", job, "--dry-run")  # 4 nodes x 8 H100: this machine can never hold it
    assert proc.returncode == 2 and "is larger than any node in the pool" in proc.stderr
    for i in range(4):
        Store().register_node(f"h100-{i}", 64, 2**40, "H100", 8)
    doc = cli_json("run", job, "--dry-run")
    est = doc["estimate"]
    assert est["accelerator"] == "H100"
    assert est["layout"]["tp"] * est["layout"]["pp"] * est["layout"]["dp"] == 32  # 8 GPUs x 4 nodes
    assert est["device_hours_low"] < est["device_hours"] < est["device_hours_high"]
    assert est["device_hours"] == pytest.approx(est["wall_hours"] * 32, rel=1e-6)
    assert doc["would_start_now"] is True and len(set(doc["placement"])) == 4
    human = cli("run", job, "--dry-run").stdout
    assert "estimate:" in human and "H100-hours" in human


def test_no_estimate_without_workload_or_accelerator():
    assert estimate(parse_spec({"run": "x"})) is None
    assert estimate(parse_spec({"run": "x", "workload": {"params": 1e9, "tokens": 1e9}})) is None


def test_bad_workload_block_is_one_line(tmp_path):
    spec = {"run": "python train.py", "resources": {"accelerators": "H100:8"}}
    with pytest.raises(BadInput, match=r"workload\.tokns"):
        parse_spec({**spec, "workload": {"params": 7e9, "tokns": 1e12}})
    incomplete = parse_spec({**spec, "workload": {"params": 7e9}})  # `suanli plan --tokens` completes it
    with pytest.raises(BadInput, match=r"workload\.tokens"):
        estimate(incomplete)
