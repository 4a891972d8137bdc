"""Distributed, resumable training for ordinary PyTorch loops. Imported only by training processes."""

from suanli.train.distributed import (
    CommStats,
    TrainConfig,
    checkpoint,
    comm_stats,
    epochs,
    finish,
    is_main,
    last_extra,
    mean,
    metric,
    prepare,
)

__all__ = [
    "CommStats",
    "TrainConfig",
    "checkpoint",
    "comm_stats",
    "epochs",
    "finish",
    "is_main",
    "last_extra",
    "mean",
    "metric",
    "prepare",
]
