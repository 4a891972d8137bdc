"""Analytic FLOPs against torch's own counter, and the meta-device probe on a 70B model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from suanli.estimate.flops import flops_per_token
from suanli.estimate.model import Architecture

torch = pytest.importorskip("torch")

GPT2_STYLE = Architecture(
    layers=3,
    hidden=128,
    heads=4,
    kv_heads=4,
    ffn_hidden=512,
    vocab=1000,
    seq_len=64,
    gated_ffn=False,
    tied_embeddings=True,
    learned_positions=True,
)
LLAMA_GQA = Architecture(layers=2, hidden=256, heads=8, kv_heads=2, ffn_hidden=688, vocab=512, seq_len=96)


def _counted(arch: Architecture, batch: int = 2) -> tuple[float, float, int]:
    from torch.utils.flop_counter import FlopCounterMode

    from suanli.estimate.reference_models import build

    torch.manual_seed(0)
    model = build(arch)
    ids = torch.randint(0, arch.vocab, (batch, arch.seq_len))
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(ids)
        fwd = counter.get_total_flops()
        out.float().sum().backward()
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return float(fwd), float(counter.get_total_flops() - fwd), params


@pytest.mark.parametrize("arch", [GPT2_STYLE, LLAMA_GQA], ids=["gpt2-style", "llama-gqa-swiglu"])
def test_analytic_flops_match_flop_counter_within_2_percent(arch: Architecture) -> None:
    fwd, bwd, params = _counted(arch, batch=2)
    f = flops_per_token(arch)
    tokens = 2 * arch.seq_len
    assert abs(f.forward * tokens / fwd - 1) < 0.02
    assert abs(f.backward * tokens / bwd - 1) < 0.02
    assert params == arch.params()


def test_attention_share_grows_with_sequence_length() -> None:
    short = flops_per_token(LLAMA_GQA, 512)
    long = flops_per_token(LLAMA_GQA, 32768)
    assert long.attention == pytest.approx(64 * short.attention)  # linear in sequence length per token
    assert long.dense == short.dense
    assert long.attention / long.forward > 0.9 > short.attention / short.forward


def test_probe_of_70b_llama_counts_on_the_meta_device_without_allocating_weights() -> None:
    """The probe's answer, and that it never materialises the 70B weights (276 GB in fp32); its speed
    is a performance claim, measured by benchmarks/bench_estimate.py, not asserted here."""
    code = (
        "import json, resource\n"
        "from suanli.estimate.probe import probe\n"
        "r = probe('suanli.estimate.reference_models:llama_70b', '1,512')\n"
        "print(json.dumps({'params': r.params, 'fwd': r.forward_flops,\n"
        "  'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    d = json.loads(out.stdout.strip().splitlines()[-1])
    arch = Architecture(
        layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000, seq_len=512
    )
    assert d["params"] == arch.params()
    assert abs(d["fwd"] / (flops_per_token(arch).forward * 512) - 1) < 0.02
    assert d["rss_kb"] < 1024 * 1024  # under 1 GiB resident: the weights stayed on the meta device


def test_estimate_package_does_not_import_torch() -> None:
    code = "import sys, suanli.estimate, suanli.cli.estimate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
