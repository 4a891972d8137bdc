"""How much compute a workload needs and how long it takes: analytic transformer math, layouts, energy.

`estimate(...)` is the one entry point (training by default, `mode="infer"` for serving);
`estimate_train` and `estimate_infer` are the typed forms. No torch at import time.
"""

from __future__ import annotations

from typing import Any

from suanli.estimate.infer import InferEstimate, estimate_infer
from suanli.estimate.layout import Layout
from suanli.estimate.model import Architecture, from_hf_config, from_params
from suanli.estimate.throughput import DEFAULT_CALIBRATION, Calibration
from suanli.estimate.train import TrainEstimate, estimate_train, estimate_train_probe


def estimate(mode: str = "train", /, **kwargs: Any) -> TrainEstimate | InferEstimate:
    """Estimate training (`mode="train"`) or serving (`mode="infer"`); keywords as in the typed forms."""
    if mode == "train":
        return estimate_train(**kwargs)
    if mode == "infer":
        return estimate_infer(**kwargs)
    from suanli.core.errors import BadInput

    raise BadInput("mode", mode, "must be train or infer")


__all__ = [
    "DEFAULT_CALIBRATION",
    "Architecture",
    "Calibration",
    "InferEstimate",
    "Layout",
    "TrainEstimate",
    "estimate",
    "estimate_infer",
    "estimate_train",
    "estimate_train_probe",
    "from_hf_config",
    "from_params",
]


class _CallableModule(__import__("types").ModuleType):
    """Lets `suanli.estimate(...)` call `estimate(...)` while `suanli.estimate.layout` stays a module."""

    def __call__(self, mode: str = "train", /, **kwargs: Any) -> TrainEstimate | InferEstimate:
        return estimate(mode, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
