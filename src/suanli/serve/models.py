"""Loading one replica's model and answering with class probabilities. Runs in replica processes and in
the driver's check child, never in the control plane: onnxruntime and torch are imported inside functions.

    model: net.onnx                     onnxruntime, one input (rows x input_shape), one output
    model: net.pt                       torch.jit.load (a TorchScript module, weights inside)
    model: net.py:make_model            the factory's module, its state dict read from `weights`

A model answers logits or probabilities per class; rows that are not already probabilities (non-negative,
summing to 1) are passed through a softmax, so every replica's answer is a distribution over classes.

    python -m suanli.serve.models check     (SUANLI_SERVE_SPEC set): one JSON line, ok or bad_input
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from suanli.core.childcheck import answer
from suanli.core.errors import BadInput
from suanli.serve.spec import SPEC_ENV, EnsembleSpec, Replica, model_kind

Predict = Callable[[np.ndarray], np.ndarray]


class ModelError(Exception):
    """A model that cannot be loaded or run; the message says why in one line."""


def as_probs(out: np.ndarray) -> np.ndarray:
    """Rows of probabilities: kept if they already are, else a softmax of the logits."""
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2:
        raise ModelError(f"answers shape {list(out.shape)}; a model must answer rows x classes")
    if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _onnx(path: Path) -> Predict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own classes for a file that is not a model
        raise ModelError(f"is not an ONNX model onnxruntime can load ({_first_line(e)})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"has {len(inputs)} inputs; a served model has one (rows x input_shape)")
    name = inputs[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return predict


def _torch_predict(module: object) -> Predict:
    import torch

    module.eval()  # type: ignore[attr-defined]

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = module(torch.from_numpy(x))  # type: ignore[operator]
        return out.detach().cpu().numpy()

    return predict


def _torchscript(path: Path) -> Predict:
    import warnings

    import torch

    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.x, and still what is saved
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # a state dict, a pickled module or not a torch file at all
        raise ModelError(
            f"is not a TorchScript module ({_first_line(e)}); for a state dict use model: file.py:factory "
            "with weights: FILE"
        ) from None
    return _torch_predict(module)


def _factory(spec: EnsembleSpec, replica: Replica) -> Predict:
    import torch

    torch.set_num_threads(1)
    file, attr = replica.model.split(":", 1)
    path = spec.path(file)
    loaded = importlib.util.spec_from_file_location(f"suanli_serve_{path.stem}", path)
    if loaded is None or loaded.loader is None:
        raise ModelError("cannot be imported")
    mod = importlib.util.module_from_spec(loaded)
    try:
        loaded.loader.exec_module(mod)
        factory = mod
        for part in attr.split("."):
            factory = getattr(factory, part)
        module = factory()  # type: ignore[operator]
    except Exception as e:
        raise ModelError(f"cannot be imported and called ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"returned {type(module).__name__}, not a torch.nn.Module")
    if replica.weights:
        try:
            state = torch.load(str(spec.path(replica.weights)), map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as e:
            raise ModelError(f"weights do not load into it ({_first_line(e)})") from None
    return _torch_predict(module)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def load(spec: EnsembleSpec, replica: Replica) -> Predict:
    """The replica's model as a function from a float32 batch (rows x input_shape) to probabilities."""
    kind = model_kind(replica.model)
    for path in spec.model_files(replica):
        if not path.is_file():
            raise ModelError(f"no such file: {path}")
    if kind == "onnx":
        raw = _onnx(spec.path(replica.model))
    elif kind == "torchscript":
        raw = _torchscript(spec.path(replica.model))
    else:
        raw = _factory(spec, replica)

    def predict(x: np.ndarray) -> np.ndarray:
        return as_probs(raw(np.ascontiguousarray(x, dtype=np.float32)))

    return predict


def probe(spec: EnsembleSpec, replica: Replica, predict: Predict) -> int:
    """Run two zero rows through the model; its number of classes (ModelError if it cannot answer)."""
    x = np.zeros((2, *spec.input_shape), dtype=np.float32)
    try:
        out = predict(x)
    except ModelError:
        raise
    except Exception as e:
        shape = "x".join(str(d) for d in spec.input_shape)
        raise ModelError(f"cannot answer rows of input_shape {shape} ({_first_line(e)})") from None
    if out.shape[0] != 2 or out.shape[1] < 2:
        raise ModelError(f"answers shape {list(out.shape)} for 2 rows; it must be 2 x classes (2 or more)")
    return int(out.shape[1])


def check(spec: EnsembleSpec) -> dict:
    """Every distinct model loads and answers rows of the input shape, and all have the same classes
    (BadInput naming the first that does not); {"classes": n}."""
    classes: dict[int, int] = {}
    done: dict[tuple, int] = {}
    for i, r in enumerate(spec.replicas):
        key = (r.model, r.weights)
        if key not in done:
            try:
                done[key] = probe(spec, r, load(spec, r))
            except ModelError as e:
                raise BadInput(f"replicas[{i}].model", r.model, f"must load and answer: {e}") from None
        classes[i] = done[key]
    if len(set(classes.values())) > 1:
        first = spec.replicas[0]
        for i, n in classes.items():
            if n != classes[0]:
                raise BadInput(f"replicas[{i}].model", spec.replicas[i].model,
                               f"must answer the same classes as the others: it has {n}, "
                               f"{first.name} has {classes[0]}")  # fmt: skip
    return {"classes": classes[0]}


def main(argv: list[str]) -> int:
    if argv[:1] != ["check"]:
        print("usage: python -m suanli.serve.models check", file=sys.stderr)
        return 2
    spec = EnsembleSpec.model_validate_json(os.environ[SPEC_ENV])
    return answer(lambda: check(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
