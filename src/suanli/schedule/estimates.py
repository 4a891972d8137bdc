"""Runtime estimates for the policies that use them, shared by the live agent and the simulator.

A job's own estimate comes first: the one its user stated (`expected_duration`, like Slurm's --time),
else the estimator's time for its `workload:` block on the accelerators it asks for. Such estimates
are *stated* (`JobRequest.estimate_stated`) and the default policy ranks by them. Failing both, a
guess from history (the mean of the same user's last finished jobs of the same size) only breaks ties.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from functools import lru_cache
from typing import TYPE_CHECKING

from suanli.core.errors import SuanliError

if TYPE_CHECKING:
    from suanli.core.workload import WorkloadSpec
    from suanli.estimate.train import TrainEstimate


class HistoryEstimator:
    """Duration guesses from history: the same user's finished jobs of the same size, else any size."""

    def __init__(self, window: int = 20, how: str = "mean") -> None:
        self.how = how
        self.by_size: dict[tuple[str, int], deque] = defaultdict(lambda: deque(maxlen=window))
        self.by_user: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))

    def guess(self, user: str, gpus: int) -> float | None:
        hist = self.by_size.get((user, gpus)) or self.by_user.get(user)
        if not hist:
            return None
        if self.how == "median":
            return sorted(hist)[len(hist) // 2]
        return sum(hist) / len(hist)

    def learn(self, user: str, gpus: int, duration_s: float) -> None:
        self.by_size[(user, gpus)].append(duration_s)
        self.by_user[user].append(duration_s)


def workload_estimate(
    workload: WorkloadSpec | None, accelerators: dict[str, int], num_nodes: int
) -> TrainEstimate | None:
    """The estimator's answer for a training workload on the job's own accelerators (one type, a
    count per node), or None: no workload, a serving workload or no accelerator. Repeated questions
    (every scheduling pass asks again for each waiting job) are answered from a cache."""
    if workload is None or len(accelerators) != 1 or workload.kind != "train":
        return None
    ((accelerator, per_node),) = accelerators.items()
    return _train(json.dumps(workload.args, sort_keys=True), accelerator, per_node * num_nodes)


def workload_seconds(
    workload: WorkloadSpec | None, accelerators: dict[str, int], num_nodes: int
) -> float | None:
    """The estimated wall time, or None also when the estimator cannot time it (the spec was checked
    at submit; a workload that no longer fits is not the scheduler's error to report)."""
    try:
        est = workload_estimate(workload, accelerators, num_nodes)
    except (SuanliError, TypeError, ValueError):
        return None
    return None if est is None else est.wall_hours * 3600.0


@lru_cache(maxsize=4096)
def _train(workload_json: str, accelerator: str, count: int) -> TrainEstimate:
    from suanli.estimate import estimate_train

    args = {k: v for k, v in json.loads(workload_json).items() if v is not None and k != "kind"}
    return estimate_train(**args, accelerator=accelerator, count=count)
