"""State-dict files for fusion: read with torch's weights-only loader, since the models come from owners
who are not trusted (a full pickle runs any code it holds), and written under a temporary name then
renamed, so a failed fusion leaves no half-written model behind."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from suanli.core.errors import BadInput, unreadable


def load_state_dict(path: str | Path, field: str = "model") -> dict[str, torch.Tensor]:
    """A state dict from a `.pt` file: a mapping of names to tensors, or a checkpoint holding one under
    `state_dict` or `model`. Anything else, or a file that needs more than weights to unpickle, is
    BadInput naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            obj = torch.load(fh, map_location="cpu", weights_only=True)
    except OSError as e:
        raise unreadable(field, p, e) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise BadInput(
            field, str(p), f"is not a torch state dict that loads with weights_only=True ({first})"
        ) from None
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise BadInput(field, str(p), "must hold a state dict (names to tensors)")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise BadInput(field, str(p), f"holds {bad!r}, which is not a tensor: save model.state_dict()")
    return {str(k): v for k, v in obj.items()}


def save_state_dict(state: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write `state` to `path` atomically: a temporary file in the same folder, fsynced, then renamed."""
    out = Path(path)
    if out.is_dir():
        raise BadInput("out", str(out), "is a directory: give a file name such as fused.pt")
    if not out.parent.is_dir():
        raise BadInput("out", str(out), f"its folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def fuse_files(
    paths: Sequence[str | Path],
    out: str | Path,
    rule: str,
    f: int = 0,
    start: str | Path | None = None,
    weights: Sequence[float] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fuse the state dicts in `paths` (changes from `start`, when given) with `rule` tolerating f
    Byzantine models, and write the result to `out`. Every check that needs no tensor (the rule's limit,
    the output's folder) runs before a file is read, and nothing is written unless all succeed. Returns
    a summary: each model's distance from the fused one, which shows the outliers a robust rule left out."""
    from suanli.fuse.models import check_fusion, fuse_models

    if not paths:
        raise BadInput("models", "", "give at least one model file")
    check_fusion(rule, len(paths), f, start is not None, **options)
    if weights is not None and len(weights) != len(paths):
        raise BadInput("weights", f"{len(weights)} values", f"must be one number per model ({len(paths)})")
    target = Path(out)
    if target.is_dir():
        raise BadInput("out", str(target), "is a directory: give a file name such as fused.pt")
    if not target.parent.is_dir():
        raise BadInput("out", str(target), f"its folder {target.parent} does not exist")
    models = [load_state_dict(p, f"models[{i}]") for i, p in enumerate(paths)]
    base = load_state_dict(start, "start") if start is not None else None
    fused = fuse_models(models, rule, f, common_start=base, weights=weights, **options)
    save_state_dict(fused, target)
    floats = [k for k, v in fused.items() if v.is_floating_point()]

    def distance(sd: Mapping[str, torch.Tensor]) -> float:
        return float(sum(float((sd[k].double() - fused[k].double()).pow(2).sum()) for k in floats)) ** 0.5

    return {
        "rule": rule,
        "f": f,
        "out": str(target),
        "start": str(start) if start is not None else None,
        "tensors": len(fused),
        "parameters": sum(v.numel() for v in fused.values()),
        "models": [
            {"path": str(p), "distance_to_fused": distance(m)} for p, m in zip(paths, models, strict=True)
        ],
        "start_distance_to_fused": distance(base) if base is not None else None,
    }
