"""The `workload:` block of a job spec (and `suanli estimate`/`suanli plan` flags): what has to get
done, checked once with near names for typos. A job spec holds it as a WorkloadSpec; the planner plans
it; the scheduler asks the estimator how long it takes on a job's own accelerators. It lives in core
because the job spec (jobs/) and the estimator and planner (estimate/, plan/) all read it."""

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

    def to_dict(self) -> dict[str, Any]:
        """The block as a job file writes it (what is stored with the job, and read back)."""
        if self.kind == "train":
            return dict(self.args)
        out: dict[str, Any] = {"kind": "infer", **self.args}
        if self.tokens_per_second is not None:
            out["tokens_per_second"] = self.tokens_per_second
        if self.duration_hours is not None:
            out["duration"] = self.duration_hours * 3600.0  # seconds
        return out


def workload_from_dict(d: dict[str, Any], source: str = "workload", *, complete: bool = True) -> WorkloadSpec:
    """A WorkloadSpec from job.yaml's `workload:` block or the CLI's flags; unknown keys get near names.
    `complete=False` checks the names and values given but not that the block is whole (a job file's
    block that `suanli plan --tokens ...` completes)."""
    if not isinstance(d, dict):
        raise BadInput(source, repr(d)[:80], "must be a mapping of workload fields")
    d = {k: v for k, v in d.items() if v is not None}
    kind = str(d.pop("kind", "train")).lower()
    if kind not in ("train", "infer"):
        raise BadInput(f"{source}.kind", kind, "must be train or infer")
    keys = TRAIN_KEYS if kind == "train" else INFER_KEYS
    for k in d:
        if not isinstance(k, str):
            raise BadInput(f"{source}", repr(k)[:40], "field names must be text")
        if k not in keys:
            raise BadInput(
                f"{source}.{k}", d[k], f"is not a {kind} workload field", hint=did_you_mean(k, keys)
            )
    if kind == "train":
        if complete and not any(k in d for k in ("tokens", "steps")):
            raise BadInput(
                f"{source}.tokens", None, "give tokens (or steps with batch) for a training workload"
            )
        return WorkloadSpec("train", d)
    tps = d.pop("tokens_per_second", None)
    dur = d.pop("duration", None)
    if (tps is not None or complete) and (tps is None or float(tps) <= 0):
        raise BadInput(f"{source}.tokens_per_second", tps, "must be > 0 for a serving workload")
    if dur is None and complete:
        raise BadInput(f"{source}.duration", None, 'is needed for a serving workload, e.g. "30d"')
    hours = None if dur is None else parse_duration(dur, f"{source}.duration") / 3600
    return WorkloadSpec("infer", d, None if tps is None else float(tps), hours)
