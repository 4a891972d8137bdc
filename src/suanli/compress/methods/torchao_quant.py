"""torchao quantisation for PyTorch deployment (torch.ao.quantization eager mode is deprecated)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from suanli.compress.methods import NotApplicable

TORCHAO = {"int8-dynamic": "Int8DynamicActivationInt8WeightConfig", "int8-weight": "Int8WeightOnlyConfig"}


def quantize(module: Any, method: str, *, skip: Sequence[str] = ()) -> Any:
    """A quantised copy of `module`: nn.Linear layers not in `skip` get torchao's tensor subclasses."""
    import logging

    import torch

    logging.getLogger("torchao").setLevel(logging.ERROR)
    import torchao.quantization as tq

    if method not in TORCHAO:
        raise NotApplicable(f"{method} has no torchao CPU kernel in this install")
    config = getattr(tq, TORCHAO[method])()
    q = copy.deepcopy(module)
    skipped = set(skip)
    tq.quantize_(q, config, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn not in skipped)
    return q


def sensitivity(module: Any) -> list[str]:
    """Linear layers, most sensitive first (relative per-tensor int8 weight error)."""
    import torch

    scored = []
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.Linear):
            w = m.weight.detach().double()
            scale = max(w.abs().max().item() / 127.0, 1e-12)
            err = (w - torch.round(w / scale) * scale).norm() / w.norm().clamp(min=1e-12)
            scored.append((err.item(), name))
    return [name for _, name in sorted(scored, reverse=True)]
