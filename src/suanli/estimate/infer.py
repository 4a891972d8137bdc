"""`estimate_infer`: memory, largest batch, time to first token, decode speed and cost of serving a model.

Roofline per step: a step takes max(bytes read / (bandwidth x b_eff), FLOPs / (peak x c_eff)). Decode at
small batch reads every weight once per token (bandwidth-bound); at large batch the FLOPs win
(compute-bound). Prefill is one big forward pass over the prompt (usually compute-bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from suanli.catalog.accelerators import accelerator_spec
from suanli.core.errors import BadInput
from suanli.estimate.flops import flops_per_token
from suanli.estimate.layout import GIB, RESERVED_BYTES, USABLE_FRACTION
from suanli.estimate.memory import BYTES
from suanli.estimate.model import Architecture
from suanli.estimate.train import _check_precision, resolve_architecture

INFER_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4", "fp32")
# A public roofline presets module notes 50-80% of peak compute and 70-90% of peak bandwidth are
# reachable in practice; suanli takes the middle of each (uncalibrated against serving runs).
BANDWIDTH_EFF = 0.80
COMPUTE_EFF = 0.65


@dataclass(slots=True)
class InferEstimate:
    accelerator: str
    count: int
    precision: str
    kv_precision: str
    params: int
    active_params: int
    batch: int
    prompt_tokens: int
    output_tokens: int
    memory_per_device_bytes: int
    memory_breakdown_bytes: dict
    memory_capacity_bytes: int
    kv_cache_bytes_per_token: float
    max_batch: int
    time_to_first_token_s: float
    decode_step_s: float
    decode_tokens_per_second: float  # all sequences together
    decode_tokens_per_second_per_sequence: float
    decode_regime: str  # "bandwidth-bound" or "compute-bound"
    request_seconds: float
    cost_per_million_tokens_usd: float | None
    flops: dict
    assumptions: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def estimate_infer(
    arch: Architecture | None = None,
    *,
    model: str | Path | dict | None = None,
    params: float | str | None = None,
    accelerator: str = "H100",
    count: int = 1,
    batch: int = 1,
    prompt_tokens: int = 512,
    output_tokens: int = 256,
    precision: str = "bf16",
    kv_precision: str | None = None,
    price_per_device_hour: float | None = None,
    **arch_flags: int | float | str | None,
) -> InferEstimate:
    """Estimate serving `batch` sequences of prompt + output tokens on `count` tensor-parallel devices."""
    a = resolve_architecture(arch=arch, model=model, params=params, **arch_flags)  # type: ignore[arg-type]
    precision = _check_precision(precision, INFER_PRECISIONS)
    kv_precision = _check_precision(
        kv_precision or ("fp8" if precision == "fp8" else "bf16"), INFER_PRECISIONS
    )
    for name, v in (("count", count), ("batch", batch), ("prompt_tokens", prompt_tokens)):
        if v < 1:
            raise BadInput(name, v, "must be a whole number >= 1")
    if output_tokens < 0:
        raise BadInput("output_tokens", output_tokens, "must be >= 0")
    compute_prec = precision if precision in ("fp8", "fp32") else "bf16"
    spec = accelerator_spec(accelerator, need=("memory_bytes", "memory_bw"), precision=compute_prec)
    if count > 1 and spec.intra_node_bw is None:
        raise BadInput(
            "accelerator",
            spec.name,
            "has no sourced interconnect bandwidth for tensor parallelism",
            hint="use --count 1 or another accelerator",
        )
    peak = spec.peak(compute_prec)
    assert peak is not None and spec.memory_bw is not None and spec.memory_bytes is not None
    tp = count
    wbytes = BYTES[precision]
    params_total = a.params()
    weights_dev = params_total * wbytes / tp
    kv_tok = a.kv_bytes_per_token(BYTES[kv_precision])
    kv_split = tp if a.is_mla else min(tp, a.kv_heads)  # kv heads are replicated beyond kv_heads ranks
    kv_tok_dev = kv_tok / (1 if a.is_mla else kv_split)
    ctx = prompt_tokens + output_tokens
    usable = spec.memory_bytes * USABLE_FRACTION - RESERVED_BYTES

    def temp_for(b: int) -> float:
        act = 2.0 * b * prompt_tokens * (4 * a.hidden + 2 * a.ffn_hidden / tp)
        return act + b * a.vocab * 4.0 / tp

    free = usable - weights_dev
    if free <= kv_tok_dev * ctx + temp_for(1):
        more = _smallest_count(params_total * wbytes, kv_tok * ctx, usable, spec.devices_per_node)
        raise BadInput(
            "count",
            count,
            f"{a.describe()} at {precision} needs {weights_dev / GIB:.1f} GiB of weights per device; "
            f"{spec.name} has {usable / GIB:.1f} GiB usable",
            hint=f"smallest count that fits one sequence: {more}" if more else "use a smaller precision",
        )
    per_seq = kv_tok_dev * ctx + temp_for(1)
    max_batch = max(1, int(free // per_seq))
    if batch > max_batch:
        raise BadInput(
            "batch",
            batch,
            f"does not fit: at most {max_batch} sequences of {ctx} tokens fit",
            hint=f"use --batch {max_batch} or more devices",
        )

    f = flops_per_token(a, prompt_tokens)
    bw = spec.memory_bw * BANDWIDTH_EFF
    link = (spec.intra_node_bw or 1.0) / 2
    # prefill
    pf_flops = batch * prompt_tokens * (f.dense + f.output + f.attention / 2)  # causal: half the scores
    t_pf_c = pf_flops / (tp * peak * COMPUTE_EFF)
    t_pf_m = weights_dev / bw
    t_pf_comm = _allreduce(2 * a.layers, batch * prompt_tokens * a.hidden * 2.0, tp, link)
    ttft = max(t_pf_c, t_pf_m) + t_pf_comm
    # decode, at the average context
    avg_ctx = prompt_tokens + output_tokens / 2
    fd = flops_per_token(a, max(1, int(avg_ctx)))
    dec_flops = batch * (fd.dense + fd.output + fd.attention / 2)
    if a.is_moe:
        expert_w = a.mlp_params(a.expert_ffn) * a.experts * a.moe_layers
        touched = min(1.0, batch * a.experts_per_token / a.experts)
        read_w = (params_total - expert_w * (1 - touched)) * wbytes / tp
    else:
        read_w = weights_dev
    kv_read = batch * avg_ctx * kv_tok_dev
    t_d_m = (read_w + kv_read) / bw
    t_d_c = dec_flops / (tp * peak * COMPUTE_EFF)
    t_d_comm = _allreduce(2 * a.layers, batch * a.hidden * 2.0, tp, link)
    step = max(t_d_m, t_d_c) + t_d_comm
    regime = "bandwidth-bound" if t_d_m >= t_d_c else "compute-bound"
    tps = batch / step
    request = ttft + output_tokens * step
    cost = None
    if price_per_device_hour is not None:
        if price_per_device_hour < 0:
            raise BadInput("price", price_per_device_hour, "must be >= 0 USD per device-hour")
        cost = price_per_device_hour * count / (tps * 3600) * 1e6
    mem = {
        "weights": int(weights_dev),
        "kv_cache": int(kv_tok_dev * ctx * batch),
        "temporary": int(temp_for(batch)),
    }
    notes = [
        *a.notes,
        f"weights {precision} ({wbytes:g} bytes/param), KV cache {kv_precision}, "
        f"tensor parallel over {tp} devices",
        f"roofline: {BANDWIDTH_EFF:.0%} of {spec.memory_bw / 1e12:g} TB/s memory bandwidth and "
        f"{COMPUTE_EFF:.0%} of {peak / 1e12:g} TFLOP/s dense {compute_prec} ({spec.source}); "
        "not calibrated against serving benchmarks",
        "decode speed at the average context (prompt + half the output); "
        "causal attention counts half the scores",
        "tensor-parallel all-reduce: bandwidth term only (no per-call latency)"
        if tp > 1
        else "single device",
        f"usable memory {usable / GIB:.1f} GiB of {spec.memory_bytes / GIB:.1f} GiB "
        "(5% fragmentation, 1 GiB context)",
    ]
    if a.is_moe:
        notes.append(f"MoE decode reads only experts touched by {batch} x top-{a.experts_per_token} routes")
    if cost is not None:
        notes.append(
            f"cost: {price_per_device_hour:g} USD per device-hour x {count} devices, output tokens only"
        )
    return InferEstimate(
        accelerator=spec.name,
        count=count,
        precision=precision,
        kv_precision=kv_precision,
        params=int(params_total),
        active_params=int(a.active_params()),
        batch=batch,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        memory_per_device_bytes=int(sum(mem.values())),
        memory_breakdown_bytes=mem,
        memory_capacity_bytes=int(spec.memory_bytes),
        kv_cache_bytes_per_token=kv_tok,
        max_batch=max_batch,
        time_to_first_token_s=ttft,
        decode_step_s=step,
        decode_tokens_per_second=tps,
        decode_tokens_per_second_per_sequence=1 / step,
        decode_regime=regime,
        request_seconds=request,
        cost_per_million_tokens_usd=cost,
        flops={"prefill": pf_flops, "decode_per_step": dec_flops},
        assumptions=notes,
    )


def _allreduce(calls: int, nbytes: float, n: int, bw: float) -> float:
    if n <= 1:
        return 0.0
    return calls * 2 * (n - 1) / n * nbytes / bw


def _smallest_count(weight_bytes: float, kv_seq: float, usable: float, per_node: int) -> int | None:
    for c in (1, 2, 4, 8, 16, 32, 64):
        if c > max(per_node, 8) * 8:
            break
        if weight_bytes / c + kv_seq / c < usable * 0.98:
            return c
    return None
