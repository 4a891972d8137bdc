"""How quality is measured (higher is better): accuracy, Spearman correlation, cosine to the original,
or a user's function `fn(outputs, targets) -> float`. numpy/scipy only."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from suanli.compress.data import Data
from suanli.core.errors import BadInput

Outputs = np.ndarray  # tensor data: model outputs (n, ...); sentence pairs: (n, 2, d); sentences: (n, d)


def check_task(task: str, data: Data, field: str = "eval") -> None:
    """Refuse data that cannot measure this task, before any model is loaded."""
    if task == "classification":
        if data.kind != "tensor":
            raise BadInput(field, "sentences", "classification needs an .npz with x (inputs) and y (labels)")
        if data.y is None:
            raise BadInput(field, "no y", "classification needs integer labels in an array named y")
        if data.y.dtype.kind not in "iu" and not np.all(np.equal(np.mod(data.y, 1), 0)):
            raise BadInput(field, f"y dtype {data.y.dtype}", "classification needs integer class labels in y")
    elif task == "similarity":
        if data.y is None:
            raise BadInput(field, "no scores", "similarity needs target scores (y, or a score column)")
        if data.kind == "text" and data.b is None:
            raise BadInput(
                field, "one sentence column", "similarity needs sentence pairs (sentence1, sentence2)"
            )


def measure(task: str, data: Data, outputs: Outputs, reference: Outputs | None) -> float:
    """The quality of `outputs` on `data` (reference: the original model's outputs, for fidelity)."""
    if task == "classification":
        pred = outputs.reshape(len(outputs), -1).argmax(axis=1)
        return float(np.mean(pred == data.y.astype(np.int64)))
    if task == "similarity":
        if data.kind == "text":
            score = _cos_rows(outputs[:, 0], outputs[:, 1])
        else:
            score = outputs.reshape(len(outputs), -1)[:, 0]
        return spearman(score, data.y)
    if task == "fidelity":
        if reference is None:
            return 1.0
        return float(np.mean(cosines(outputs, reference)))
    fn = load_function(task, "task")
    return float(fn(outputs, data.y))


def cosines(outputs: Outputs, reference: Outputs) -> np.ndarray:
    """Row-wise cosine between two output arrays (pairs count as two rows)."""
    a = outputs.reshape(-1, outputs.shape[-1]) if outputs.ndim == 3 else outputs.reshape(len(outputs), -1)
    b = reference.reshape(a.shape)
    return _cos_rows(a, b)


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(den, 1e-12)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (ties averaged)."""
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(0.0 if np.isnan(rho) else rho)


def load_function(spec: str, field: str) -> Callable:
    """`package.module:name` or `path/to/file.py:name`, imported on demand."""
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise BadInput(field, spec, f"file {module_name} does not exist")
            mod_name = f"_suanli_user_{path.stem}"
            if mod_name not in sys.modules:
                sys.path.insert(0, str(path.resolve().parent))
                loader = importlib.util.spec_from_file_location(path.stem, path)
                mod = importlib.util.module_from_spec(loader)
                sys.modules[path.stem] = mod
                loader.loader.exec_module(mod)
                sys.modules[mod_name] = mod
            mod = sys.modules[mod_name]
        else:
            mod = importlib.import_module(module_name)
    except BadInput:
        raise
    except Exception as e:
        raise BadInput(field, spec, f"cannot be imported ({type(e).__name__}: {e})") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise BadInput(field, spec, f"{module_name} has no function {attr}")
    return fn
