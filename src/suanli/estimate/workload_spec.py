"""The `workload:` block of a job spec (and `suanli estimate`/`suanli plan` flags): what has to get
done, checked once with near names for typos. The planner plans it; the scheduler asks the estimator
how long it takes on a job's own accelerators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suanli.core.errors import BadInput, did_you_mean
from suanli.core.units import parse_duration

SHAPE_KEYS = (  # a model given by its shape instead of `model` or `params`
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "ffn_hidden",
    "vocab",
    "experts",
    "experts_per_token",
    "active_params",
)
# Fields that are whole numbers >= 1 when given (the shape's counts, sizes and parallel degrees).
WHOLE_KEYS = (
    *(k for k in SHAPE_KEYS if k != "active_params"),
    *("seq_len", "steps", "batch", "tp", "pp", "prompt_tokens", "output_tokens"),
)
TRAIN_KEYS = (
    "model",
    "params",
    "tokens",
    "steps",
    "batch",
    "seq_len",
    "precision",
    "tp",
    "pp",
    "dp",
    "zero",
    "fsdp",
    "microbatch",
    "recompute",
    "flash_attention",
    "sequence_parallel",
    "network_gbps",
    *SHAPE_KEYS,
)
INFER_KEYS = (
    "model",
    "params",
    "precision",
    "kv_precision",
    "batch",
    "prompt_tokens",
    "output_tokens",
    "tokens_per_second",
    "duration",
    *SHAPE_KEYS,
)


@dataclass(slots=True)
class WorkloadSpec:
    """What has to get done. Training: the estimator's arguments. Serving: a throughput for a duration."""

    kind: str = "train"  # train | infer
    args: dict[str, Any] = field(default_factory=dict)
    tokens_per_second: float | None = None  # serving: output tokens/s the service must sustain
    duration_hours: float | None = None  # serving: how long it runs

    def describe(self) -> str:
        a = self.args
        what = a.get("params") or a.get("model") or f"{a.get('layers')}L x {a.get('hidden')}"
        if self.kind == "infer":
            return f"serve {what}: {self.tokens_per_second:g} output tokens/s for {self.duration_hours:g} h"
        work = f"{a['tokens']} tokens" if a.get("tokens") is not None else f"{a.get('steps')} steps"
        return f"train {what} on {work}"


def workload_from_dict(d: dict[str, Any], source: str = "workload") -> WorkloadSpec:
    """A WorkloadSpec from job.yaml's `workload:` block or the CLI's flags; unknown keys get near names."""
    d = {k: v for k, v in d.items() if v is not None}
    kind = str(d.pop("kind", "train")).lower()
    if kind not in ("train", "infer"):
        raise BadInput(f"{source}.kind", kind, "must be train or infer")
    keys = TRAIN_KEYS if kind == "train" else INFER_KEYS
    for k in d:
        if k not in keys:
            raise BadInput(
                f"{source}.{k}", d[k], f"is not a {kind} workload field", hint=did_you_mean(k, keys)
            )
    if kind == "train":
        if not any(k in d for k in ("tokens", "steps")):
            raise BadInput(
                f"{source}.tokens", None, "give tokens (or steps with batch) for a training workload"
            )
        return WorkloadSpec("train", d)
    tps = d.pop("tokens_per_second", None)
    dur = d.pop("duration", None)
    if tps is None or float(tps) <= 0:
        raise BadInput(f"{source}.tokens_per_second", tps, "must be > 0 for a serving workload")
    if dur is None:
        raise BadInput(f"{source}.duration", None, 'is needed for a serving workload, e.g. "30d"')
    return WorkloadSpec("infer", d, float(tps), parse_duration(dur, f"{source}.duration") / 3600)
