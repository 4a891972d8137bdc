"""Fusion of whole models trained by different owners: one model from several state dicts, with any rule
of `suanli.federate.aggregate`, so a fusion survives the same f Byzantine owners a federated round does.

Averaging weights is sound only for models that left one common start and trained a short way from it
(the same basin: model soups, federated rounds, fine-tunes of one checkpoint). Models trained from
different initialisations have permuted hidden units, and their average is no model at all; fuse those by
distillation (`suanli.fuse.distill`). With a common start the rules aggregate the changes (model - start)
and add the result back, which is what centred clipping needs (it clips each change's distance from a
reference); the other rules give the same result either way, as they commute with a shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from suanli.core.errors import BadInput
from suanli.federate.aggregate import aggregate, check_tolerates

StateDict = Mapping[str, torch.Tensor]

# Rules that clip each input's distance from a reference (zero unless given): on whole weights that
# distance is the weights' size, not how far an owner moved, so they need the common start.
NEEDS_START = ("centered_clipping",)


def needs_start(rule: str) -> bool:
    """Whether `rule` is meaningful only on changes from a common start (centred clipping, alone or
    inside bucketing), rather than on whole weights."""
    return any(rule == r or rule.endswith("+" + r) for r in NEEDS_START)


def check_fusion(rule: str, n: int, f: int, has_start: bool, **options: Any) -> None:
    """Every check that needs no tensors, so a caller refuses bad input before it loads or starts
    anything: the rule tolerates f among n (BadInput naming the limit) and has the start it needs."""
    check_tolerates(rule, n, f, **options)
    if needs_start(rule) and not has_start and options.get("reference") is None:
        raise BadInput(
            "start",
            "",
            f"{rule} clips each model's distance from a reference; without the common start that distance "
            "is the size of the weights, not the change an owner made: give the models' common start",
        )


def _float(t: torch.Tensor) -> bool:
    return t.is_floating_point()


def check_alike(state_dicts: Sequence[StateDict], start: StateDict | None = None) -> list[str]:
    """The keys of models that all hold the same keys, shapes and dtypes (the start too, when given), in
    the first model's order; else BadInput naming the first mismatch."""
    if not state_dicts:
        raise BadInput("models", "", "need at least one model's state dict")
    first = state_dicts[0]
    named = [(f"models[{i}]", sd) for i, sd in enumerate(state_dicts)]
    if start is not None:
        named.append(("start", start))
    for name, sd in named:
        if not isinstance(sd, Mapping):
            raise BadInput(name, type(sd).__name__, "must be a state dict (a mapping of names to tensors)")
        for key, value in sd.items():
            if not isinstance(value, torch.Tensor):
                raise BadInput(f"{name}[{key!r}]", type(value).__name__, "must be a tensor")
    keys = list(first)
    for name, sd in named[1:]:
        missing = [k for k in keys if k not in sd]
        extra = [k for k in sd if k not in first]
        if missing:
            raise BadInput(name, f"{len(sd)} tensors", f"lacks {missing[0]!r}, which models[0] has")
        if extra:
            raise BadInput(name, f"{len(sd)} tensors", f"has {extra[0]!r}, which models[0] lacks")
        for k in keys:
            a, b = first[k], sd[k]
            if a.shape != b.shape:
                raise BadInput(
                    f"{name}[{k!r}]",
                    f"shape {list(b.shape)}",
                    f"must match models[0] (shape {list(a.shape)})",
                )
            if a.dtype != b.dtype:
                raise BadInput(f"{name}[{k!r}]", str(b.dtype), f"must match models[0] ({a.dtype})")
    return keys


def _rename(e: BadInput) -> BadInput:
    """The aggregation library's error in the caller's terms: its updates[i] are our models[i]."""
    if e.field.startswith("updates"):
        return BadInput("models" + e.field.removeprefix("updates"), e.value, e.allowed, hint=e.hint)
    return e


def _median_elements(values: list[torch.Tensor]) -> torch.Tensor:
    """Per element the lower median of the models' values: one of the values a model really holds (a
    count stays a count), and f < n/2 Byzantine models cannot move it outside the honest ones' range."""
    x = torch.stack([v.to(torch.int64) if v.dtype == torch.bool else v for v in values])
    out = x.kthvalue((x.shape[0] + 1) // 2, dim=0).values if x.numel() else x[0]
    return out.to(values[0].dtype)


def fuse_models(
    state_dicts: Sequence[StateDict],
    rule: str,
    f: int = 0,
    common_start: StateDict | None = None,
    weights: Sequence[float] | None = None,
    **options: Any,
) -> dict[str, torch.Tensor]:
    """One state dict from several models' with the aggregation rule `rule` (any name `aggregate` takes)
    tolerating f Byzantine models among them.

    With `common_start`, the floating-point tensors' changes (model - start) are aggregated and added back
    to the start; centred clipping then clips each owner's change around `reference` (zero change unless
    given), moving at most tau per iteration: give it iterations * tau at least an honest change's size.
    Without a start the weights themselves are aggregated, and rules that need the start are refused.
    Integer and bool tensors (BatchNorm's num_batches_tracked, masks) are never averaged: each element
    takes the models' lower median, an existing value. `weights` (examples per model) are used by the mean
    and inside bucketing's buckets only, as in the library. Every tensor comes back with its dtype.
    """
    check_fusion(rule, len(state_dicts), f, common_start is not None, **options)
    keys = check_alike(state_dicts, common_start)
    floats = [k for k in keys if _float(state_dicts[0][k])]
    others = [k for k in keys if k not in floats]
    fused: dict[str, torch.Tensor] = {}
    if floats:
        wide = {
            k: torch.float64 if state_dicts[0][k].dtype == torch.float64 else torch.float32 for k in floats
        }
        base = [common_start[k].detach().to(wide[k]) for k in floats] if common_start is not None else None
        updates = []
        for sd in state_dicts:
            parts = [sd[k].detach().to(wide[k]) for k in floats]
            updates.append(parts if base is None else [p - b for p, b in zip(parts, base, strict=True)])
        try:
            agg = aggregate(rule, updates, weights, f, **options)
        except BadInput as e:
            raise _rename(e) from None
        for i, k in enumerate(floats):
            value = agg[i] if base is None else agg[i] + base[i]
            fused[k] = value.to(state_dicts[0][k].dtype)
    for k in others:
        fused[k] = _median_elements([sd[k].detach() for sd in state_dicts])
    return {k: fused[k] for k in keys}
