"""Memory formulas reproduce published closed forms (Korthikanti et al. 2022; ZeRO, Rajbhandari 2020)."""

from __future__ import annotations

import pytest

from suanli.estimate.memory import activation_bytes_per_layer, model_state_bytes
from suanli.estimate.model import Architecture

# GPT-3 175B's shape, with the dropout masks the paper's 34 and 5as/h terms include.
GPT = Architecture(
    layers=96,
    hidden=12288,
    heads=96,
    kv_heads=96,
    ffn_hidden=4 * 12288,
    vocab=51200,
    seq_len=2048,
    gated_ffn=False,
    dropout=True,
)
S, B, H, A = 2048, 1, 12288, 96


def test_no_parallelism_matches_34_plus_5as_over_h() -> None:
    want = S * B * H * (34 + 5 * A * S / H)
    assert activation_bytes_per_layer(GPT, S, B) == pytest.approx(want)


@pytest.mark.parametrize("t", [2, 4, 8])
def test_tensor_parallel_matches_10_plus_24_over_t(t: int) -> None:
    want = S * B * H * (10 + 24 / t + 5 * A * S / (H * t))
    assert activation_bytes_per_layer(GPT, S, B, tp=t) == pytest.approx(want)


@pytest.mark.parametrize("t", [2, 8])
def test_sequence_parallel_divides_everything_by_t(t: int) -> None:
    want = S * B * H / t * (34 + 5 * A * S / H)
    assert activation_bytes_per_layer(GPT, S, B, tp=t, sequence_parallel=True) == pytest.approx(want)


def test_selective_recompute_with_sequence_parallel_is_34_sbh_over_t() -> None:
    got = activation_bytes_per_layer(GPT, S, B, tp=8, sequence_parallel=True, recompute="selective")
    assert got == pytest.approx(34 * S * B * H / 8)


def test_full_recompute_keeps_only_the_layer_input() -> None:
    assert activation_bytes_per_layer(GPT, S, 4, recompute="full") == pytest.approx(2 * S * 4 * H)


def test_gqa_and_no_dropout_store_less_than_the_gpt_form() -> None:
    llama = Architecture(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000)
    mha = Architecture(layers=80, hidden=8192, heads=64, kv_heads=64, ffn_hidden=28672, vocab=32000)
    assert activation_bytes_per_layer(llama, S, B, flash=True) < activation_bytes_per_layer(
        mha, S, B, flash=True
    )


PSI, ND = 7.5e9, 64  # the ZeRO paper's running example: 7.5B parameters on 64 GPUs, K = 12


@pytest.mark.parametrize(
    ("stage", "want_gb"),
    [
        (0, (2 + 2 + 12) * PSI / 1e9),
        (1, (4 * PSI + 12 * PSI / ND) / 1e9),
        (2, (2 * PSI + 14 * PSI / ND) / 1e9),
        (3, 16 * PSI / ND / 1e9),
    ],
)
def test_zero_stages_match_the_paper(stage: int, want_gb: float) -> None:
    got = model_state_bytes(PSI, ND, stage).total / 1e9
    assert got == pytest.approx(want_gb)
    # the paper's Figure 1 figures: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB
    assert round(got, 1) == {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}[stage]
