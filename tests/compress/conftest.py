"""Fixtures for the compression tests: a small digits CNN trained in seconds, its data, and a CLI runner
that converts suanli errors the way the main CLI does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jobhelpers import invoke

REPO = Path(__file__).resolve().parents[2]


MODEL_FILE = """
import sys
sys.path.insert(0, {digits!r})
from train import DigitsCNN

def build():
    return DigitsCNN(width=8)
"""


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A DigitsCNN(width=8) trained for a few epochs, its factory file, weights and eval/calib .npz files."""
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root = tmp_path_factory.mktemp("digits")
    sys.path.insert(0, str(REPO / "examples" / "digits"))
    from train import DigitsCNN

    d = load_digits()
    x = (d.images[:, None] / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = DigitsCNN(width=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(6):
        model.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    torch.save(model.state_dict(), root / "weights.pt")
    (root / "model_def.py").write_text(MODEL_FILE.format(digits=str(REPO / "examples" / "digits")))
    np.savez(root / "eval.npz", x=x_te, y=y_te)
    np.savez(root / "calib.npz", x=x_tr[:512], y=y_tr[:512])
    return {
        "root": root,
        "model": f"{root / 'model_def.py'}:build",
        "weights": str(root / "weights.pt"),
        "eval": str(root / "eval.npz"),
        "calib": str(root / "calib.npz"),
        "x_test": x_te,
        "y_test": y_te,
    }


@pytest.fixture
def run_cli():
    """`suanli compress ARGS` in-process: (exit code, stdout, stderr) as the main CLI gives them."""

    def run(*args: str) -> tuple[int, str, str]:
        r = invoke("compress", *args)
        return r.exit_code, r.stdout, r.stderr

    return run
