"""Memory per device: model states (ZeRO stages 0-3) and activations (Korthikanti et al. 2022).

Closed forms reproduced here (s sequence, b microbatch, h hidden, a heads, t tensor-parallel size):
  no parallelism          s·b·h·(34 + 5·a·s/h)
  tensor parallel         s·b·h·(10 + 24/t + 5·a·s/(h·t))
  + sequence parallel     s·b·h/t·(34 + 5·a·s/h)
  + selective recompute   34·s·b·h/t
  full recompute          2·s·b·h per layer (the layer input)
ZeRO (Rajbhandari et al. 2020, K = 12 for mixed-precision Adam, Ψ params, N_d data-parallel size):
  stage 0 (2+2+K)Ψ, stage 1 4Ψ + KΨ/N_d, stage 2 2Ψ + (2+K)Ψ/N_d, stage 3 (4+K)Ψ/N_d.
The formulas generalise the 34 and 24 to GQA, gated MLPs and MoE by counting each stored tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from suanli.estimate.model import Architecture

BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True, slots=True)
class ActivationTerms:
    """Per-layer activation bytes per token of a 16-bit run, split by how tensor parallelism cuts them."""

    replicated: float  # norms' inputs, block inputs, dropout masks (cut by sequence parallelism only)
    sharded: float  # Q, K, V, projections' inputs, MLP intermediates (cut by tensor parallelism)
    scores_per_seq: float  # times seq_len: softmax output (+ dropout mask and output)


def activation_terms(arch: Architecture) -> ActivationTerms:
    """Bytes per token per layer, as multiples that reduce to Korthikanti's 10 + 24 (+ 5as/h) for GPT."""
    h = arch.hidden
    drop = 1.0 if arch.dropout else 0.0
    # replicated: 2 norm inputs (4h), attention input (2h), MLP input (2h), 2 dropout masks (2h)
    replicated = 4 * h + 2 * h + 2 * h + 2 * drop * h
    q = 2 * arch.heads * arch.qk_dim
    kv_heads = arch.heads if arch.is_mla else arch.kv_heads
    k = 2 * kv_heads * arch.qk_dim
    v = 2 * kv_heads * arch.v_dim
    proj_in = 2 * arch.heads * arch.v_dim
    per_mlp = (6 if arch.gated_ffn else 4) * arch.ffn_hidden
    if arch.is_moe:
        e = (6 if arch.gated_ffn else 4) * arch.expert_ffn
        width = arch.experts_per_token + arch.shared_experts
        moe_mlp = width * (e + 2 * h)  # each routed copy keeps its input and intermediates
        mlp = (arch.dense_layers * per_mlp + arch.moe_layers * moe_mlp) / arch.layers
    else:
        mlp = per_mlp
    sharded = q + k + v + proj_in + mlp
    scores = arch.heads * (2 + 3 * drop)  # softmax out 2 bytes; with dropout + mask 1 + output 2
    return ActivationTerms(replicated=replicated, sharded=sharded, scores_per_seq=scores)


def activation_bytes_per_layer(
    arch: Architecture,
    seq_len: int,
    microbatch: int,
    tp: int = 1,
    sequence_parallel: bool = False,
    recompute: str = "none",
    flash: bool = False,
    act_bytes: float = 2.0,
    terms: ActivationTerms | None = None,
) -> float:
    """Stored activation bytes of one layer for one microbatch on one device."""
    sb = seq_len * microbatch
    scale = act_bytes / 2.0
    if recompute == "full":
        return sb * 2 * arch.hidden * scale / (tp if sequence_parallel else 1)
    t = terms or activation_terms(arch)
    scores = 0.0 if (recompute == "selective" or flash) else t.scores_per_seq * seq_len
    if sequence_parallel:
        per_token = (t.replicated + t.sharded + scores) / tp
    else:
        per_token = t.replicated + (t.sharded + scores) / tp
    return sb * per_token * scale


@dataclass(frozen=True, slots=True)
class ModelStateBytes:
    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


def model_state_bytes(params_per_rank: float, dp: int, zero: int, precision: str = "bf16") -> ModelStateBytes:
    """Weights, gradients and Adam states per device for `params_per_rank` (after tp/pp split)."""
    if precision in ("fp32", "tf32"):
        w, g, k = 4.0, 4.0, 8.0  # fp32 weights and grads, Adam m and v
    else:
        w, g, k = 2.0, 2.0, 12.0  # 16-bit weights/grads (fp8 runs keep 16-bit masters), fp32 master + m + v
    p = params_per_rank
    return ModelStateBytes(
        weights=w * p / (dp if zero >= 3 else 1),
        gradients=g * p / (dp if zero >= 2 else 1),
        optimizer=k * p / (dp if zero >= 1 else 1),
    )
