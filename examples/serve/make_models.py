"""Make the example ensemble's five models: small MLPs on scikit-learn's digits, each trained on its own
bootstrap sample of the training split (bagging) with its own width and seed, saved the three ways a
replica can load a model: ONNX, TorchScript, and a state dict for `net.py:make_model`.

    python examples/serve/make_models.py          # writes examples/serve/models/ (about 60 KB), ~10 s

The held-out rows (`digits_split()[2:]`) are what the tests and the benchmark measure accuracy on.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from net import make_model  # noqa: E402

TRAIN_ROWS = 1200
# name, hidden width, seed, how it is saved
MODELS = [
    ("a", 32, 0, "onnx"), ("b", 48, 1, "onnx"), ("c", 24, 2, "torchscript"), ("d", 64, 3, "onnx"),
    ("e", 32, 4, "state_dict"),
]  # fmt: skip


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): digits' 1,797 rows in a fixed shuffle, 1,200 to train."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    return x[:TRAIN_ROWS], y[:TRAIN_ROWS], x[TRAIN_ROWS:], y[TRAIN_ROWS:]


def train(
    x: np.ndarray, y: np.ndarray, *, hidden: int, seed: int, scale: float = 16.0, epochs: int = 150,
    bootstrap: bool = True,
) -> torch.nn.Module:  # fmt: skip
    """A small MLP, full-batch Adam, on a bootstrap sample of (x, y)."""
    torch.manual_seed(seed)
    rows = np.random.default_rng(seed).integers(0, len(y), len(y)) if bootstrap else np.arange(len(y))
    xt, yt = torch.from_numpy(x[rows]), torch.from_numpy(y[rows])
    model = make_model(hidden, inputs=x.shape[1], scale=scale, classes=int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval()


def save(model: torch.nn.Module, path: Path, how: str, inputs: int) -> None:
    """`model` as ONNX, TorchScript or a state dict, written to a temporary name and renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    example = torch.zeros(1, inputs)
    if how == "onnx":
        torch.onnx.export(model, example, tmp, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "rows"}, "logits": {0: "rows"}}, dynamo=False)  # fmt: skip
    elif how == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), tmp)
    else:
        torch.save(model.state_dict(), tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def filename(name: str, how: str) -> str:
    return {"onnx": f"{name}.onnx", "torchscript": f"{name}.pt", "state_dict": f"{name}-state.pt"}[how]


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    x_train, y_train, x_test, y_test = digits_split()
    out = HERE / "models"
    out.mkdir(exist_ok=True)
    for name, hidden, seed, how in MODELS:
        model = train(x_train, y_train, hidden=hidden, seed=seed)
        with torch.no_grad():
            accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
        save(model, out / filename(name, how), how, x_train.shape[1])
        print(f"{name}: hidden {hidden}, {how}, held-out accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
