"""Spot/preemptible runs: interruptions, restart overhead and lost work bounded by checkpoints.

A synchronous job on `n` instances stops whenever any one of them is reclaimed, so its mean time between
interruptions is M = 1 / (n λ), with λ the per-instance interruption rate per hour. Checkpointing every
τ = √(2 C M) hours (Young 1974; Daly 2006's first-order optimum) bounds the lost work to τ/2 on average.
Expected wall time for T hours of useful work:

    T_spot = T (1 + C/τ) / (1 − (R + τ/2) / M)

(checkpoint writes add C per τ of work; each interruption costs the restart R and on average half an
interval of rework). The number of interruptions is Poisson with mean T_spot / M, which gives the
probability of missing a deadline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_MONTH = 730.0
# AWS Spot Instance Advisor reports "frequency of interruption" per instance type as the share of Spot
# capacity reclaimed in the trailing month, in bands <5%, 5-10%, 10-15%, 15-20%, >20% [R10]. No per-GPU
# figure for the GPU clouds was found, so suanli assumes the top band's edge, 20% a month, with the
# 10%-30% band for the low/high figures (GPU spot capacity is scarce). Override per offer
# (`interruption_per_month`) or with --interruption-per-month.
DEFAULT_INTERRUPTION_PER_MONTH = 0.20
INTERRUPTION_BAND = (0.10, 0.30)
INTERRUPTION_SOURCE = (
    "AWS Spot Instance Advisor bands <5%, 5-10%, 10-15%, 15-20%, >20% reclaimed per month [R10]; "
    "20%/month assumed for GPU spot (no per-GPU source)"
)
DEFAULT_RESTART_HOURS = 10 / 60  # re-acquire an instance, start, load the checkpoint: an assumption
# Checkpoint size: bf16 weights + fp32 master weights + Adam moments = 16 bytes/parameter (ZeRO paper's
# K = 12 plus 4); written in parallel by all instances at an assumed 1 GB/s each, plus 30 s fixed.
CHECKPOINT_BYTES_PER_PARAM = 16
CHECKPOINT_WRITE_BYTES_PER_S = 1e9
CHECKPOINT_FIXED_S = 30.0


def rate_per_hour(per_month: float) -> float:
    """Per-instance interruption rate λ (per hour) from the share of instances reclaimed in a month."""
    if per_month <= 0:
        return 0.0
    if per_month >= 1:
        return math.inf
    return -math.log(1.0 - per_month) / HOURS_PER_MONTH


def checkpoint_hours(params: float, instances: int) -> float:
    """Time to write one checkpoint (the stated size and bandwidth assumptions above)."""
    return (
        CHECKPOINT_FIXED_S + params * CHECKPOINT_BYTES_PER_PARAM / (CHECKPOINT_WRITE_BYTES_PER_S * instances)
    ) / 3600


def young_daly_interval(checkpoint_h: float, mtbf_h: float) -> float:
    """Optimal checkpoint interval τ = √(2 C M) (hours)."""
    return math.sqrt(2.0 * checkpoint_h * mtbf_h)


@dataclass(frozen=True, slots=True)
class SpotRun:
    """Expected wall time of an interruptible run and its deadline risk."""

    expected_hours: float
    interval_hours: float  # checkpoint interval τ (inf when nothing interrupts)
    mtbf_hours: float
    expected_interruptions: float
    overhead_fraction: float  # expected_hours / useful hours - 1
    p_miss: float | None  # probability of missing the deadline (None without a deadline)

    @property
    def feasible(self) -> bool:
        return math.isfinite(self.expected_hours)


def spot_run(
    useful_hours: float,
    instances: int,
    per_month: float,
    checkpoint_h: float,
    restart_h: float = DEFAULT_RESTART_HOURS,
    deadline_h: float | None = None,
) -> SpotRun:
    """Expected time of `useful_hours` of work on `instances` interruptible instances (formula above)."""
    lam = rate_per_hour(per_month) * instances
    if lam == 0:
        p = None if deadline_h is None else float(useful_hours > deadline_h)
        return SpotRun(useful_hours, math.inf, math.inf, 0.0, 0.0, p)
    if math.isinf(lam):
        return SpotRun(math.inf, 0.0, 0.0, math.inf, math.inf, None if deadline_h is None else 1.0)
    m = 1.0 / lam
    tau = young_daly_interval(checkpoint_h, m)
    base = useful_hours * (1.0 + checkpoint_h / tau)
    loss = restart_h + tau / 2.0
    denom = 1.0 - loss / m
    if denom <= 0.05:  # interrupted faster than it can make progress
        return SpotRun(math.inf, tau, m, math.inf, math.inf, None if deadline_h is None else 1.0)
    t = base / denom
    p_miss = None
    if deadline_h is not None:
        if base > deadline_h:
            p_miss = 1.0
        else:
            k_allowed = math.floor((deadline_h - base) / loss)
            p_miss = poisson_sf(k_allowed, t / m)
    return SpotRun(t, tau, m, t / m, t / useful_hours - 1.0, p_miss)


def poisson_sf(k: int, mean: float) -> float:
    """P(X > k) for X ~ Poisson(mean); a normal approximation for large means."""
    if k < 0:
        return 1.0
    if mean > 200:
        z = (k + 0.5 - mean) / math.sqrt(mean)
        return 0.5 * math.erfc(z / math.sqrt(2))
    term = math.exp(-mean)
    cdf = term
    for i in range(1, k + 1):
        term *= mean / i
        cdf += term
        if term < 1e-16 and i > mean:
            break
    return max(0.0, 1.0 - cdf)
