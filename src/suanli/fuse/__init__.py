"""Robust fusion of models trained by different owners: whole models' weights through the aggregation
rules of federated learning (`fuse_models`, sound from a common start), or an ensemble distilled into one
student (`distill_ensemble`, for models that share no start). See docs/fusion.md."""

from __future__ import annotations

from suanli.fuse.distill import Ensemble, distill_ensemble
from suanli.fuse.files import fuse_files, load_state_dict, save_state_dict
from suanli.fuse.models import check_alike, check_fusion, fuse_models, needs_start

__all__ = [
    "Ensemble",
    "check_alike",
    "check_fusion",
    "distill_ensemble",
    "fuse_files",
    "fuse_models",
    "load_state_dict",
    "needs_start",
    "save_state_dict",
]
