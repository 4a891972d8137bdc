"""One cost model per acquisition mode: what `instances` of an offer cost to finish a job.

Inputs: the offer, the instance count, the job's useful hours on that hardware (from the estimator) and
its energy. Each model returns the expected wall time, the cost charged to this job and the risks.
The formulas are written out in docs/planner.md; the constants below carry their source or say that
they are assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from suanli.catalog.offers import Offer
from suanli.plan import spot as sp

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = 730.0
# No per-provider billing increment was sourced: bill whole hours (conservative); an offer's
# `billing_increment_s` overrides.
DEFAULT_BILLING_INCREMENT_S = 3600.0
# Marketplace hosts are other people's machines: an assumed 95% of rented time is productive (no public
# per-host reliability figure was read); an offer's `reliability` overrides.
DEFAULT_MARKETPLACE_RELIABILITY = 0.95


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Knobs of the cost models (all have stated defaults)."""

    utilisation: float | None = None  # share of a reserved/owned term that other work uses; None = job only
    interruption_per_month: float | None = None  # overrides every spot offer's figure
    restart_hours: float = sp.DEFAULT_RESTART_HOURS
    checkpoint_hours: float | None = None  # None = from the model size (spot.checkpoint_hours)
    marketplace_reliability: float | None = None
    deadline_hours: float | None = None
    serving: bool = False  # an inference service runs a fixed time; interruptions cost capacity, not time


@dataclass(slots=True)
class ModeCost:
    """Cost and time of one (offer, instance count) in its mode."""

    cost_usd: float
    wall_hours: float
    p_miss: float | None = None
    risk: list[str] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)
    checkpoint_interval_hours: float | None = None


def billed_hours(hours: float, increment_s: float | None) -> float:
    """Hours rounded up to the billing increment."""
    inc = (increment_s or DEFAULT_BILLING_INCREMENT_S) / 3600.0
    return math.ceil(hours / inc - 1e-9) * inc


def on_demand(o: Offer, n: int, hours: float, s: ModelSettings) -> ModeCost:
    """price x instances x billed wall hours."""
    assert o.price_usd_per_hour is not None
    b = billed_hours(hours, o.billing_increment_s)
    return ModeCost(o.price_usd_per_hour * n * b, hours, breakdown={"rent_usd": o.price_usd_per_hour * n * b})


def spot(o: Offer, n: int, hours: float, s: ModelSettings, params: float) -> ModeCost | None:
    """Spot price x instances x expected wall hours (interruptions, restarts, Young/Daly checkpoints)."""
    assert o.price_usd_per_hour is not None
    per_month = s.interruption_per_month
    if per_month is None:
        per_month = o.interruption_per_month
    if per_month is None:
        per_month = sp.DEFAULT_INTERRUPTION_PER_MONTH
    if s.serving:
        lam = sp.rate_per_hour(per_month) * n
        down = min(1.0, lam * s.restart_hours)
        cost = o.price_usd_per_hour * n * billed_hours(hours, o.billing_increment_s)
        risk = [f"serving on spot: {lam * hours:.1f} expected interruptions, ~{down:.2%} of capacity lost"]
        return ModeCost(cost, hours, risk=risk, breakdown={"rent_usd": cost})
    c = s.checkpoint_hours if s.checkpoint_hours is not None else sp.checkpoint_hours(params, n)
    run = sp.spot_run(hours, n, per_month, c, s.restart_hours, s.deadline_hours)
    if not run.feasible:
        return None
    cost = o.price_usd_per_hour * n * billed_hours(run.expected_hours, o.billing_increment_s)
    risk = [
        f"spot: +{run.overhead_fraction:.0%} expected time, {run.expected_interruptions:.1f} interruptions "
        f"({per_month:.0%}/month per instance), checkpoint every {run.interval_hours * 60:.0f} min"
    ]
    if run.p_miss is not None:
        risk.append(f"P(miss deadline) {run.p_miss:.0%}")
    return ModeCost(
        cost,
        run.expected_hours,
        p_miss=run.p_miss,
        risk=risk,
        breakdown={"rent_usd": cost},
        checkpoint_interval_hours=run.interval_hours,
    )


def reserved(o: Offer, n: int, hours: float, s: ModelSettings) -> ModeCost:
    """Committed price, paid whether used or not.

    With utilisation U of the term by other work: price x n x hours / U. Without (job only): the whole
    term, price x n x term hours x ⌈hours / term hours⌉.
    """
    assert o.price_usd_per_hour is not None and o.term_months is not None
    term_h = o.term_months * HOURS_PER_MONTH
    if s.utilisation is not None:
        cost = o.price_usd_per_hour * n * hours / s.utilisation
        risk = [f"{o.mode}: commitment shared with other work at {s.utilisation:.0%} utilisation"]
    else:
        cost = o.price_usd_per_hour * n * term_h * math.ceil(hours / term_h - 1e-9)
        risk = [
            f"{o.mode}: pays the whole {o.term_months}-month term (pass --utilisation if other work uses it)"
        ]
    return ModeCost(cost, hours, risk=risk, breakdown={"commitment_usd": cost})


def marketplace(o: Offer, n: int, hours: float, s: ModelSettings) -> ModeCost:
    """price x n x hours / reliability: lost host time is re-run and paid for."""
    assert o.price_usd_per_hour is not None
    r = o.reliability or s.marketplace_reliability or DEFAULT_MARKETPLACE_RELIABILITY
    t = hours if s.serving else hours / r
    cost = o.price_usd_per_hour * n * billed_hours(t, o.billing_increment_s)
    risk = [f"marketplace: reliability {r:.0%} assumed" + ("" if o.reliability else " (default)")]
    return ModeCost(cost, t, risk=risk, breakdown={"rent_usd": cost})


def owned(
    o: Offer, n: int, hours: float, s: ModelSettings, energy_kwh: float | None, est_pue: float
) -> ModeCost:
    """Amortised purchase + hosting/operations + electricity; never free.

    capex: purchase x n x hours / (depreciation hours x U) with utilisation U, or the whole purchase
    (x ⌈hours / depreciation hours⌉) when the job is the only use. power: the job's energy (TDP x hours
    x PUE) x electricity price. hosting: per server-month x months used / U, when sourced.
    """
    assert o.purchase_usd is not None and o.depreciation_years and o.electricity_usd_per_kwh is not None
    dep_h = o.depreciation_years * HOURS_PER_YEAR
    risk = []
    if s.utilisation is not None:
        capex = o.purchase_usd * n * hours / (dep_h * s.utilisation)
        host_h = hours / s.utilisation
        risk.append(
            f"{o.mode}: purchase amortised over {o.depreciation_years:g} y at {s.utilisation:.0%} utilisation"
        )
    else:
        capex = o.purchase_usd * n * math.ceil(hours / dep_h - 1e-9)
        host_h = dep_h * math.ceil(hours / dep_h - 1e-9)
        risk.append(f"{o.mode}: the whole purchase is charged to this job (pass --utilisation to share it)")
    hosting = 0.0
    if o.hosting_usd_per_month is not None:
        hosting = o.hosting_usd_per_month * n * host_h / HOURS_PER_MONTH
    else:
        risk.append("hosting/operations not sourced: not included")
    power = 0.0
    if energy_kwh is not None:
        pue = o.pue or est_pue
        power = energy_kwh * pue / est_pue * o.electricity_usd_per_kwh
    else:
        risk.append("no sourced power figure: electricity not included")
    risk.append("purchase lead time not modelled")
    return ModeCost(
        capex + hosting + power,
        hours,
        risk=risk,
        breakdown={"capex_usd": capex, "hosting_usd": hosting, "power_usd": power},
    )


def owned_hourly(o: Offer, power_w: float | None, utilisation: float = 1.0) -> tuple[float, float]:
    """(fixed USD per instance-hour at `utilisation`, power USD per used instance-hour) of owned hardware."""
    assert o.purchase_usd is not None and o.depreciation_years and o.electricity_usd_per_kwh is not None
    fixed = o.purchase_usd / (o.depreciation_years * HOURS_PER_YEAR)
    if o.hosting_usd_per_month is not None:
        fixed += o.hosting_usd_per_month / HOURS_PER_MONTH
    watts = o.power_w if o.power_w is not None else (power_w or 0.0)
    power = watts / 1000 * (o.pue or 1.2) * o.electricity_usd_per_kwh
    return fixed / utilisation, power


def cost(
    o: Offer,
    n: int,
    hours: float,
    s: ModelSettings,
    *,
    params: float,
    energy_kwh: float | None,
    est_pue: float,
) -> ModeCost | None:
    """Dispatch to the offer's mode; None when the mode cannot finish the job (e.g. spot too volatile)."""
    if o.mode == "on-demand":
        return on_demand(o, n, hours, s)
    if o.mode == "spot":
        return spot(o, n, hours, s, params)
    if o.mode in ("reserved-1y", "reserved-3y"):
        return reserved(o, n, hours, s)
    if o.mode == "marketplace":
        return marketplace(o, n, hours, s)
    if o.mode in ("owned", "edge"):
        return owned(o, n, hours, s, energy_kwh, est_pue)
    raise ValueError(o.mode)
