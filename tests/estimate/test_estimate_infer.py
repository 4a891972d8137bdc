"""Serving estimates: weights and KV cache, largest batch, bandwidth- vs compute-bound decode, cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.estimate import estimate_infer
from suanli.estimate.model import Architecture

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
L70 = Architecture(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000, seq_len=4096)


def test_kv_cache_and_weights_for_llama_2_7b() -> None:
    est = estimate_infer(
        model=CONFIGS / "llama-2-7b.json",
        accelerator="A100-80GB",
        batch=4,
        prompt_tokens=1000,
        output_tokens=24,
    )
    assert est.kv_cache_bytes_per_token == 2 * 32 * 32 * 128 * 2  # 512 KiB per token
    assert est.memory_breakdown_bytes["weights"] == pytest.approx(6.74e9 * 2, rel=0.01)
    assert est.memory_breakdown_bytes["kv_cache"] == pytest.approx(4 * 1024 * 524288, rel=0.01)
    assert est.max_batch >= 100


def test_decode_is_bandwidth_bound_small_and_compute_bound_large() -> None:
    small = estimate_infer(L70, accelerator="H100", count=8, batch=1)
    large = estimate_infer(
        L70, accelerator="H100", count=8, batch=small.max_batch, prompt_tokens=128, output_tokens=64
    )
    assert small.decode_regime == "bandwidth-bound"
    assert large.decode_regime == "compute-bound"
    assert large.decode_tokens_per_second > 20 * small.decode_tokens_per_second
    # batch 1: every weight read once per token at 80% of 8 x 3.35 TB/s
    assert small.decode_tokens_per_second == pytest.approx(0.8 * 8 * 3.35e12 / (69e9 * 2), rel=0.1)


def test_quantised_weights_fit_where_bf16_does_not() -> None:
    with pytest.raises(BadInput, match="smallest count that fits one sequence: 2") as e:
        estimate_infer(L70, accelerator="H100", count=1, precision="bf16")
    assert e.value.exit_code == 2
    int4 = estimate_infer(L70, accelerator="H100", count=1, precision="int4")
    assert int4.memory_breakdown_bytes["weights"] == pytest.approx(69e9 / 2, rel=0.01)


def test_too_large_batch_names_the_largest_that_fits() -> None:
    est = estimate_infer(L70, accelerator="H100", count=2)
    with pytest.raises(BadInput, match=f"at most {est.max_batch} sequences"):
        estimate_infer(L70, accelerator="H100", count=2, batch=est.max_batch + 1)


def test_cost_per_million_tokens() -> None:
    est = estimate_infer(L70, accelerator="H100", count=4, batch=16, price_per_device_hour=3.0)
    assert est.cost_per_million_tokens_usd == pytest.approx(
        3.0 * 4 / (est.decode_tokens_per_second * 3600) * 1e6
    )
    assert estimate_infer(L70, accelerator="H100", count=4).cost_per_million_tokens_usd is None


def test_moe_decode_reads_only_touched_experts() -> None:
    mixtral = estimate_infer(model=CONFIGS / "mixtral-8x7b.json", accelerator="H100", count=2, batch=1)
    dense_same_size = Architecture(
        layers=32, hidden=4096, heads=32, kv_heads=8, ffn_hidden=8 * 14336, vocab=32000
    )
    dense = estimate_infer(dense_same_size, accelerator="H100", count=2, batch=1)
    assert mixtral.decode_tokens_per_second > 2 * dense.decode_tokens_per_second
