"""The Pareto front over cost and time: options no other option beats on both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _CostTime(Protocol):
    cost_usd: float
    wall_hours: float


def pareto_front(options: Sequence[_CostTime]) -> list[int]:
    """Indices of the non-dominated options (minimise cost and wall time), cheapest first.

    Sort by (cost, time); sweep keeping each option faster than every cheaper one: O(n log n).
    """
    order = sorted(range(len(options)), key=lambda i: (options[i].cost_usd, options[i].wall_hours))
    front: list[int] = []
    best_time = float("inf")
    for i in order:
        t = options[i].wall_hours
        if t < best_time:
            front.append(i)
            best_time = t
    return front


def dominated(a: _CostTime, b: _CostTime) -> bool:
    """True when b is at least as good as a on both and better on one."""
    return (b.cost_usd <= a.cost_usd and b.wall_hours <= a.wall_hours) and (
        b.cost_usd < a.cost_usd or b.wall_hours < a.wall_hours
    )
