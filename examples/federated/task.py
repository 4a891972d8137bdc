"""The model and data of the example federation: scikit-learn's 8x8 digits, a small MLP.

`make_model()` builds the network every participant and the server share; `load(path)` reads one
participant's partition (an .npz with `x`, 8x8 pixel values 0-16, and `y`, the digit).
"""

import numpy as np
import torch
from torch import nn


def make_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def load(path: str) -> torch.utils.data.Dataset:
    with np.load(path) as data:
        x = torch.tensor(data["x"], dtype=torch.float32) / 16.0
        y = torch.tensor(data["y"], dtype=torch.int64)
    return torch.utils.data.TensorDataset(x, y)
