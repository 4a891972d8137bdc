"""suanli.train through real suanli jobs: data-parallel equivalence, failure and resume, compression."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from jobhelpers import REPO, cli
from suanli import Client
from suanli.jobs import parse_spec
from suanli.train import checkpoints as ckpt

EXAMPLE = REPO / "examples" / "digits-ddp"


def run_example(workers: int, *args: str, retries: int = 0, compression: str = "none") -> tuple[dict, dict]:
    """Run examples/digits-ddp as a suanli job; returns (record json, per-epoch train_loss)."""
    client = Client()
    spec = parse_spec(
        {
            "name": f"ddp-{workers}",
            "workdir": str(EXAMPLE.parent),
            "resources": {"cpus": 2},
            "num_workers": workers,
            "retries": retries,
            "train": {"gradient_compression": compression, "powersgd_rank": 2},
            "run": "python digits-ddp/train.py --train-size 256 --batch 64 " + " ".join(args),
        }
    )
    job_id = client.submit(spec)
    record = client.wait(job_id, timeout_s=240)
    losses = {p["step"]: p["value"] for p in client.metric_history(job_id) if p["name"] == "train_loss"}
    return record.to_json(), losses


def final_model(record: dict) -> dict[str, torch.Tensor]:
    path = Path(record["attempts"][-1]["log_path"]).parent / "model.pt"
    return torch.load(path)


def test_two_workers_follow_the_one_worker_loss_curve():
    # Without dropout the two runs compute the same global batches, so only float order differs.
    one, losses_1 = run_example(1, "--epochs", "3", "--dropout", "0")
    two, losses_2 = run_example(2, "--epochs", "3", "--dropout", "0")
    assert one["status"] == two["status"] == "SUCCEEDED"
    assert sorted(losses_1) == sorted(losses_2) == [0, 1, 2]
    for epoch in losses_1:
        assert losses_2[epoch] == pytest.approx(losses_1[epoch], rel=1e-4, abs=1e-6)


def test_killed_worker_resumes_from_checkpoint_to_the_same_model():
    clean, _ = run_example(2, "--epochs", "4")
    resumed, _ = run_example(2, "--epochs", "4", "--fail-at-epoch", "2", "--fail-rank", "1", retries=1)
    assert resumed["status"] == "SUCCEEDED"
    first, second = resumed["attempts"]
    assert first["signal"] == "SIGKILL" and "worker 1 killed by SIGKILL" in first["reason"]
    assert second["exit_code"] == 0
    log = Path(second["log_path"]).read_text()
    assert "resumed from ckpt-002000000.pt (epoch 2, batch 0)" in log
    a, b = final_model(clean), final_model(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise, on CPU


def test_powersgd_and_bf16_send_fewer_bytes():
    results = {c: run_example(2, "--epochs", "1", compression=c)[0] for c in ("none", "bf16", "powersgd")}
    per_step = {c: r["metrics"]["comm_bytes_per_step"] for c, r in results.items()}
    assert all(r["status"] == "SUCCEEDED" for r in results.values())
    assert per_step["none"] == results["none"]["metrics"]["comm_uncompressed_bytes_per_step"]
    assert per_step["bf16"] == pytest.approx(per_step["none"] / 2, rel=0.01)
    assert per_step["powersgd"] * 4 <= per_step["none"]


def test_partial_checkpoints_are_never_loaded(tmp_path):
    tmp_path = tmp_path / "checkpoints"
    ckpt.save_atomic({"epoch": 1}, 1_000_000, tmp_path)
    (tmp_path / ".ckpt-000002000000.pt.tmp-123").write_bytes(b"half a checkpoint")
    assert ckpt.latest(tmp_path).name == "ckpt-001000000.pt"
    assert ckpt.load(ckpt.latest(tmp_path)) == {"epoch": 1}
    for serial in (2, 3, 4):
        ckpt.save_atomic({"epoch": serial}, serial * 1_000_000, tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert kept == ["ckpt-003000000.pt", "ckpt-004000000.pt"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run: x\nnum_workers: 0\n", "num_workers=0"),
        ("run: x\nnum_workers: 4096\n", "num_workers=4096: each worker needs a CPU"),
        ("run: x\nbackend: mpi\n", "backend=mpi"),
        ("run: x\ntrain:\n  gradient_compression: zip\n", "train.gradient_compression=zip"),
        ("run: x\ntrain:\n  powersgd_rank: 0\n", "train.powersgd_rank=0"),
    ],
)
def test_invalid_distributed_spec_fails_at_submit(tmp_path, text, expected):
    job = tmp_path / "job.yaml"
    job.write_text(text)
    proc = cli("submit", str(job))
    assert proc.returncode == 2
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_workers_see_the_train_options(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(
        "num_workers: 2\ntrain:\n  gradient_compression: bf16\n  grad_accum_steps: 4\n"
        'run: python -c "import suanli.train as t, json; c = t.TrainConfig.from_env();'
        ' print(json.dumps([c.rank, c.world_size, c.compression, c.grad_accum_steps]))"\n'
    )
    doc = json.loads(cli("run", str(job), "--json", check=True).stdout)
    seen = sorted(json.loads(line) for line in Path(doc["log_path"]).read_text().splitlines())
    assert seen == [[0, 2, "bf16", 4], [1, 2, "bf16", 4]]
    assert os.path.isdir(Path(doc["log_path"]).parents[2] / f"job-{doc['id']}")


def test_last_extra_reads_what_the_resumed_checkpoint_saved(tmp_path, monkeypatch):
    import suanli.train as st

    monkeypatch.setenv("SUANLI_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    assert st.last_extra() == {}
    ckpt.save_atomic({"epoch": 3, "extra": {"best_accuracy": 0.97}}, 3_000_000)
    assert st.last_extra() == {"best_accuracy": 0.97}
