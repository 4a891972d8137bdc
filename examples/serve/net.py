"""The digits classifier the example's replicas serve: raw 8x8 digit features (0-16) in, 10 logits out.
`make_model` is also what a `model: net.py:make_model` replica builds before loading its state dict."""

from __future__ import annotations

import torch
from torch import nn


class Scaled(nn.Module):
    """Divides by the features' full scale, so that a served model takes the raw features."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale


def make_model(hidden: int = 32, inputs: int = 64, scale: float = 16.0, classes: int = 10) -> nn.Module:
    return nn.Sequential(Scaled(scale), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))
