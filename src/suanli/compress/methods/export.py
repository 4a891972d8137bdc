"""Export a torch module (or a sentence encoder with its pooling) to ONNX, for ONNX Runtime deployment."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def export_onnx(
    module: Any, io: str, example: Any, out: Path, *, tokenizer: Any = None, normalize: bool = False
) -> Path:
    """Trace `module` to `out` with dynamic batch (and sequence) axes; text models include mean pooling."""
    import torch

    from suanli.compress.models import mean_pool

    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if io == "text":
            enc = tokenizer(list(example), padding=True, truncation=True, return_tensors="pt")
            names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]

            class _Encoder(torch.nn.Module):
                def __init__(self, inner: Any) -> None:
                    super().__init__()
                    self.inner = inner

                def forward(self, *args: Any) -> Any:
                    kw = dict(zip(names, args, strict=True))
                    hidden = self.inner(**kw).last_hidden_state
                    return mean_pool(hidden, kw["attention_mask"], normalize)

            axes = {n: {0: "batch", 1: "seq"} for n in names}
            axes["embedding"] = {0: "batch"}
            torch.onnx.export(
                _Encoder(module),
                tuple(enc[n] for n in names),
                str(out),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        else:
            x = torch.from_numpy(np.ascontiguousarray(example))
            torch.onnx.export(
                module,
                (x,),
                str(out),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    return out
