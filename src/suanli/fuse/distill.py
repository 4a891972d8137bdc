"""Fusion by distillation: models that share no common start (different initialisations, even different
architectures) cannot be averaged, but their ensemble can teach one student. The teacher is the mean of
the members' softmax outputs, or, when some members may be Byzantine, their per-class median; the fitting
loop is compress's (`suanli.compress.methods.distill.train`), not a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from suanli.compress.methods.distill import train
from suanli.core.errors import BadInput

# Probabilities are floored here before the log: the student is fitted by mean squared error on the
# teacher's outputs, and a log(0) of -inf (or -100 for a confident member) would swamp the classes that
# matter. exp(-9.2) ~ 1e-4 is below any probability that changes an argmax among 10-1000 classes.
FLOOR = 1e-4


class Ensemble(nn.Module):
    """The members' averaged prediction as one module: log of the mean (or, robust, the renormalised
    per-class median) of their softmax outputs. Logits up to a constant, so a student fitted to them by
    mean squared error has the ensemble's softmax."""

    def __init__(self, members: Sequence[nn.Module], robust: bool = False) -> None:
        super().__init__()
        if not members:
            raise BadInput("models", "", "an ensemble needs at least one model")
        for i, m in enumerate(members):
            if not isinstance(m, nn.Module):
                raise BadInput(f"models[{i}]", type(m).__name__, "must be a torch module")
        self.members = nn.ModuleList(members)
        self.robust = robust

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble's class probabilities for a batch."""
        p = torch.stack([torch.softmax(m(x), dim=-1) for m in self.members])
        if not self.robust:
            return p.mean(0)
        med = p.median(dim=0).values if len(self.members) % 2 else p.quantile(0.5, dim=0)
        return med / med.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(med.dtype).tiny)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probabilities(x).clamp_min(FLOOR).log()


def distill_ensemble(
    models: Sequence[nn.Module],
    student: nn.Module,
    data: np.ndarray | torch.Tensor,
    *,
    robust: bool = False,
    f: int = 0,
    epochs: int = 20,
    lr: float = 3e-2,
    batch: int = 32,
    seed: int = 0,
    log: Any = None,
) -> nn.Module:
    """Fit `student` to the ensemble of `models` on the (unlabelled) inputs `data` and return it.

    `robust=True` uses the per-class median of the members' probabilities, which f Byzantine members
    cannot move outside the honest ones' range while 2f < len(models); the plain mean (the default) is
    refused for f > 0, as one member's outputs move it anywhere. `lr` is the peak of compress's one-cycle
    AdamW schedule; 3e-2 suits small students (a digits MLP reaches the ensemble's accuracy within 2 points
    in 15 epochs), lower it for large ones.
    """
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise BadInput("f", f if isinstance(f, int | float | str) else repr(f), "must be a whole number >= 0")
    n = len(models)
    if f and not robust:
        raise BadInput(
            "f", f, "the mean of the members' outputs tolerates f = 0: use robust=True (the median)"
        )
    if robust and 2 * f >= n:
        raise BadInput(
            "f",
            f,
            f"the median of {n} members' outputs needs 2f < n: it tolerates at most f = {(n - 1) // 2}",
        )
    if not isinstance(student, nn.Module):
        raise BadInput("student", type(student).__name__, "must be a torch module")
    inputs = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if inputs.ndim < 2 or len(inputs) == 0 or inputs.dtype.kind != "f":
        raise BadInput(
            "data", f"shape {list(inputs.shape)} {inputs.dtype}", "must be a batch of float inputs"
        )
    if not np.isfinite(inputs).all():
        raise BadInput("data", "non-finite", "holds NaN or infinite values")
    teacher = Ensemble(models, robust=robust)
    epochs = max(1, int(epochs))
    batch = max(1, min(int(batch), len(inputs)))
    return train(student, teacher, inputs.astype(np.float32), "arrays", epochs=epochs, lr=lr, batch=batch,
                 seed=seed, log=log)  # fmt: skip
