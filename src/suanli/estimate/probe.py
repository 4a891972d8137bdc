"""Probe any PyTorch nn.Module on the meta device: parameters, FLOPs (FlopCounterMode) and activation bytes.

On the meta device tensors have shapes and dtypes but no storage, so a 70B-parameter model is built
and run in seconds with almost no memory. Saved-tensor hooks add up what autograd keeps for the
backward pass: the activation memory of one step. torch is imported inside the functions only.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suanli.core.errors import BadInput


@dataclass(frozen=True, slots=True)
class ProbeResult:
    params: int
    forward_flops: float  # for the probed input batch
    backward_flops: float
    activation_bytes: float  # saved for backward, for the probed input batch
    input_shape: tuple[int, ...]
    input_dtype: str
    seconds: float

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    def to_json(self) -> dict:
        return {
            "params": self.params,
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "activation_bytes": self.activation_bytes,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "seconds": self.seconds,
        }


def load_factory(spec: str) -> Callable[[], Any]:
    """'pkg.module:factory' -> the callable (a class or a function returning an nn.Module)."""
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise BadInput("python", spec, "must be MODULE:FACTORY, e.g. mypkg.models:build")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise BadInput("python", spec, f"cannot import {mod_name} ({e})") from None
    fn = getattr(mod, attr, None)
    if fn is None or not callable(fn):
        raise BadInput("python", spec, f"{mod_name} has no callable {attr}")
    return fn


def parse_shape(value: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """'8,2048' or '8x2048' -> (8, 2048)."""
    if isinstance(value, str):
        parts = value.replace("x", ",").replace(" ", "").split(",")
        try:
            shape = tuple(int(p) for p in parts if p)
        except ValueError:
            raise BadInput("input_shape", value, "must be whole numbers such as 8,2048") from None
    else:
        shape = tuple(int(v) for v in value)
    if not shape or any(d < 1 for d in shape):
        raise BadInput("input_shape", value, "must be whole numbers >= 1 such as 8,2048")
    return shape


def probe(
    factory: str | Callable[[], Any],
    input_shape: str | tuple[int, ...],
    input_dtype: str = "auto",
    backward: bool = True,
) -> ProbeResult:
    """Build the module on the meta device, run forward (and backward) once, count FLOPs and saved bytes.

    input_dtype: "long" for token ids, "float" for dense inputs, "auto" = long when the first
    submodule with weights is an nn.Embedding.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    start = time.perf_counter()
    fn = load_factory(factory) if isinstance(factory, str) else factory
    shape = parse_shape(input_shape)
    with torch.device("meta"):
        module = fn()
    if not isinstance(module, torch.nn.Module):
        raise BadInput("python", str(factory), "the factory must return a torch.nn.Module")
    params = sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
    if input_dtype == "auto":
        first = next((m for m in module.modules() if any(True for _ in m.parameters(recurse=False))), None)
        input_dtype = "long" if isinstance(first, torch.nn.Embedding) else "float"
    if input_dtype == "long":
        x = torch.zeros(shape, dtype=torch.long, device="meta")
    elif input_dtype == "float":
        x = torch.zeros(shape, dtype=torch.float32, device="meta")
    else:
        raise BadInput("input_dtype", input_dtype, "must be auto, long or float")

    saved = [0.0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            saved[0] += t.numel() * t.element_size()
        return t

    counter = FlopCounterMode(display=False)
    with counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = module(x)
        fwd = float(counter.get_total_flops())
        if backward:
            y = _first_tensor(out)
            y.float().sum().backward()
    total = float(counter.get_total_flops())
    return ProbeResult(
        params=int(params),
        forward_flops=fwd,
        backward_flops=total - fwd,
        activation_bytes=saved[0],
        input_shape=shape,
        input_dtype=input_dtype,
        seconds=time.perf_counter() - start,
    )


def _first_tensor(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = out.get("logits", next(iter(out.values())))
        return _first_tensor(out)
    if isinstance(out, list | tuple) and out:
        return _first_tensor(out[0])
    if hasattr(out, "logits"):
        return out.logits
    raise BadInput("python", type(out).__name__, "the module's output has no tensor to differentiate")
