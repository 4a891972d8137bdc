"""suanli compress on a small digits CNN: each CPU method, the budget on held-out data, evaluation in its
own process, the CLI's JSON and table, and the saved model loading back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from suanli.compress import compress, load, parse_budget, parse_methods


def _accuracy(runner, x, y) -> float:
    return float(np.mean(runner(x).argmax(1) == y))


def test_onnx_int8_holds_budget_on_heldout(digits, tmp_path: Path):
    out = tmp_path / "out"
    report = compress(
        digits["model"],
        weights=digits["weights"],
        task="classification",
        eval_data=digits["eval"],
        calib=digits["calib"],
        budget="1pt",
        methods="int8-dynamic,int8-static",
        runtime="onnx",
        objective="size",
        out=str(out),
        repeats=5,
        threads=1,
    )
    chosen = report["chosen_candidate"]
    assert chosen["recipe"] in ("int8-dynamic", "int8-static")
    assert chosen["holds_budget_val"] and chosen["holds_budget_heldout"]
    assert chosen["quality_heldout"] >= report["baseline_quality_heldout"] - 0.01
    assert chosen["size_ratio"] >= 2.0  # int8 weights; graph overhead is large for so tiny a model
    assert {
        "latency_b1_p50_ms",
        "latency_b1_p95_ms",
        "throughput_b32_per_s",
        "size_bytes",
        "parameters",
        "cosine_mean_heldout",
        "quality_val",
    } <= set(chosen)
    names = [c["name"] for c in report["candidates"]]
    assert names[:2] == ["original (torch fp32)", "onnx fp32"]
    # every candidate ran in its own process, none in this one
    pids = {c["pid"] for c in report["candidates"] if "pid" in c}
    assert os.getpid() not in pids and len(pids) == len(report["candidates"])
    assert sorted(p.name for p in out.iterdir()) == ["model", "quality_vs_latency.png", "report.json"]
    runner = load(str(out))
    assert _accuracy(runner, digits["x_test"], digits["y_test"]) >= 0.85
    assert not list(tmp_path.glob(".out.tmp-*"))
    _estimate_shows_both(out, report)


def _estimate_shows_both(out: Path, report: dict) -> None:
    """`suanli estimate infer --compressed OUT`: original and compressed cost, side by side."""
    cmd = [sys.executable, "-m", "suanli", "estimate", "infer", "--compressed"]
    proc = subprocess.run(
        [*cmd, str(out), "--price", "0.5", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    chosen = report["chosen_candidate"]
    assert doc["compressed"]["size_bytes"] == chosen["size_bytes"]
    assert doc["original"]["name"] == "original (torch fp32)"
    assert doc["size_ratio"] == pytest.approx(chosen["size_ratio"])
    per_million = 0.5 / (chosen["throughput_b32_per_s"] * 3600) * 1e6
    assert doc["compressed"]["cost_per_million_inferences_usd"] == pytest.approx(per_million)
    bad = subprocess.run(
        [*cmd, str(out.parent / "nope")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--compressed=" in bad.stderr and "output directory" in bad.stderr


def test_torch_runtime_prune_then_torchao(digits, tmp_path: Path):
    """Structured pruning then torchao int8, saved for PyTorch deployment, loads back and runs."""
    report = compress(
        digits["model"],
        weights=digits["weights"],
        task="classification",
        eval_data=digits["eval"],
        calib=digits["calib"],
        budget="5pt",
        methods="prune:0.5+int8-dynamic",
        runtime="torch",
        out=str(tmp_path / "out"),
        repeats=5,
        threads=1,
    )
    original, cand = report["candidates"]
    assert cand["recipe"] == "prune:0.5+int8-dynamic" and "error" not in cand, cand
    # structured pruning removes channels: fewer parameters and fewer bytes
    assert cand["parameters"] < 0.6 * original["parameters"]
    assert cand["size_bytes"] < 0.7 * original["size_bytes"]
    runner = load(str(tmp_path / "out"))
    assert runner(digits["x_test"][:3]).shape == (3, 10)


def test_prune_and_distill_units(digits):
    import torch

    from suanli.compress.methods import distill, prune

    sys.path.insert(0, str(Path(digits["model"].rpartition(":")[0]).parent))
    from model_def import build

    model = build()
    model.load_state_dict(torch.load(digits["weights"]))
    model.eval()
    pruned, info = prune.prune(model, 0.5, "tensor")
    assert info["removed_channels"] == 4 + 8  # half of 8 and of 16 channels
    x = torch.from_numpy(digits["x_test"][:4])
    assert pruned(x).shape == (4, 10)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(pruned) < 0.5 * n(model)
    student = distill.make_student(model, "width=0.5", "tensor")
    xs = np.load(digits["calib"])["x"]
    before = torch.nn.functional.mse_loss(student(torch.from_numpy(xs)), model(torch.from_numpy(xs))).item()
    student = distill.train(student, model, xs, "tensor", epochs=5)
    after = torch.nn.functional.mse_loss(student(torch.from_numpy(xs)), model(torch.from_numpy(xs))).item()
    assert after < before
    from suanli.compress.methods.torchao_quant import quantize

    for method in ("int8-weight", "int8-dynamic"):
        q = quantize(model, method)
        assert type(q.head[2].weight).__name__ != "Parameter"  # a torchao quantised tensor
        assert torch.allclose(q(x), model(x), atol=0.1)


def test_int4_weight_and_fallback(digits, tmp_path: Path):
    """A budget int8 cannot meet: the search falls back sensitive layers to fp32, then gives up (exit 2)."""
    from suanli.core.errors import BadInput

    messages: list[str] = []
    with pytest.raises(BadInput) as err:
        compress(
            digits["model"],
            weights=digits["weights"],
            task="fidelity",
            eval_data=digits["eval"],
            budget="0.00001%",
            methods="int8-dynamic,int4-weight",
            runtime="onnx",
            out=str(tmp_path / "o"),
            repeats=3,
            threads=1,
            progress=messages.append,
        )
    assert "best quality reached" in str(err.value)
    assert any("layers fp32" in m for m in messages)
    assert any("int4-weight" in m for m in messages)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.tmp-*"))


def test_cli_json_and_table(digits, tmp_path: Path, run_cli, monkeypatch):
    out = tmp_path / "cli-out"
    code, stdout, _ = run_cli(
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "accuracy",
        "--eval",
        digits["eval"],
        "--budget",
        "1pt",
        "--methods",
        "int8-dynamic",
        "--runtime",
        "onnx",
        "--out",
        str(out),
        "--repeats",
        "3",
        "--threads",
        "1",
        "--json",
    )
    assert code == 0, stdout
    doc = json.loads(stdout)  # exactly one JSON document
    assert doc["chosen_candidate"]["recipe"] == "int8-dynamic"
    assert (out / "model" / "model.onnx").exists()
    from suanli.compress.report import TABLE_HEADER, table_rows

    rows = table_rows(doc)
    assert len(rows) == len(doc["candidates"]) and all(len(r) == len(TABLE_HEADER) for r in rows)
    assert any(r[-1] == "chosen" for r in rows)
    import suanli.compress

    monkeypatch.setattr(suanli.compress, "compress", lambda *a, **k: doc)
    code, stdout, _ = run_cli(digits["model"], "--task", "accuracy", "--eval", digits["eval"])
    assert code == 0 and "chosen: onnx int8-dynamic" in stdout and "quality held-out" in stdout


def test_parsing():
    assert parse_budget("1%").floor(0.8) == pytest.approx(0.792)
    assert parse_budget("1pt").floor(0.97) == pytest.approx(0.96)
    recipes = parse_methods("int8-dynamic,prune:0.3,distill:layers=3+int8-dynamic")
    assert [r.text for r in recipes] == ["int8-dynamic", "prune:0.3", "distill:layers=3+int8-dynamic"]


def test_cli_does_not_import_torch():
    code = "import sys, suanli.cli.compress, suanli.compress; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_onnx_file_as_model(digits, tmp_path: Path):
    """An .onnx MODEL gets the ONNX Runtime methods; prune/distill are refused (they need PyTorch)."""
    import torch

    from suanli.compress.models import load_source
    from suanli.core.errors import BadInput

    src = load_source(digits["model"], digits["weights"])
    onnx_file = tmp_path / "digits.onnx"
    from suanli.compress.methods.export import export_onnx

    export_onnx(src.module, "tensor", digits["x_test"][:2], onnx_file)
    assert torch.is_tensor(next(src.module.parameters()))
    report = compress(
        str(onnx_file),
        task="classification",
        eval_data=digits["eval"],
        budget="1pt",
        methods="int8-dynamic",
        out=str(tmp_path / "out"),
        repeats=3,
        threads=1,
    )
    assert report["candidates"][0]["name"] == "original (onnx fp32)"
    assert report["chosen_candidate"]["recipe"] == "int8-dynamic"
    with pytest.raises(BadInput, match="need a PyTorch model"):
        compress(
            str(onnx_file),
            task="classification",
            eval_data=digits["eval"],
            methods="prune:0.3",
            out=str(tmp_path / "o2"),
        )
    assert not (tmp_path / "o2").exists()
