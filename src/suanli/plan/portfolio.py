"""A team's portfolio over a horizon: owned baseline + committed reservations + on-demand/spot burst.

Mixed-integer program (scipy.optimize.milp), all quantities per month m of the horizon H:

    minimise   B·u·(capex_h·730·H + host_h·730·H) + Σ_m power_h·o_m
             + Σ_s R1_s·u·p1·730·12 + Σ_s R3_s·u·p3·730·36 + Σ_m (p_od·d_od,m + p_spot·(1+ε)·d_spot,m)
    subject to o_m + r_m + d_od,m + d_spot,m = D_m                   (every GPU-hour is served)
               o_m ≤ B·u·k_m,   r_m ≤ (Σ_{s active in m} R1_s + R3_s)·u·k_m
               d_spot,m ≤ spot_share·D_m
               B, R1_s, R3_s ∈ ℕ (whole servers of u GPUs); o, r, d ≥ 0

with k_m = D_m / P_m the hours each base GPU can serve when demand arrives at its peak P_m and is idle
otherwise (a conservative two-level load; k_m = 730 for flat demand). Commitments are charged their full
term even when it runs past the horizon (the part after it is reported separately).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanli.catalog.offers import Catalog, Offer, load_catalog
from suanli.core.errors import BadInput
from suanli.plan.demand import HOURS_PER_MONTH, Demand, demand_from_dict, load_demand


@dataclass(slots=True)
class Prices:
    """Per-GPU-hour prices for one accelerator, each with the offer it came from."""

    on_demand: float
    spot: float | None = None
    reserved_1y: float | None = None
    reserved_3y: float | None = None
    owned_fixed: float | None = None  # capex (+ hosting) per GPU-hour, at 100% utilisation
    owned_power: float | None = None  # electricity per used GPU-hour
    spot_overhead: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Portfolio:
    """The chosen capacity and what it costs, against renting everything and buying everything."""

    accelerator: str
    horizon_months: int
    gpus_per_server: int
    owned_gpus: int
    reserved_1y: list[dict]
    reserved_3y: list[dict]
    monthly: list[dict]
    total_cost_usd: float
    committed_after_horizon_usd: float
    all_rent_cost_usd: float
    all_buy_cost_usd: float | None
    break_even_utilisation: float | None
    cumulative_usd: dict[str, list[float]]
    prices: dict[str, Any]
    status: str
    seconds: float
    assumptions: list[str]
    explanation: str = ""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def prices_for(catalog: Catalog, acc: str, providers: list[str] | None = None) -> Prices:
    """Cheapest per-GPU-hour price per mode for `acc` (owned: amortised at 100% utilisation)."""
    from suanli.catalog.accelerators import accelerator_spec
    from suanli.plan import spot as sp
    from suanli.plan.modes import owned_hourly

    offers = catalog.query(providers=providers, accelerators=[acc])

    def cheapest(mode: str) -> Offer | None:
        c = [o for o in offers if o.mode == mode and o.price_usd_per_hour is not None]
        return min(c, key=lambda o: o.price_usd_per_hour / o.accelerator_count) if c else None  # type: ignore[operator]

    od = cheapest("on-demand") or cheapest("marketplace")
    if od is None:
        raise BadInput(
            "accelerator",
            acc,
            "has no on-demand price in the catalog",
            hint="pick another accelerator or add an offer (see `suanli catalog list`)",
        )
    p = Prices(on_demand=od.price_usd_per_hour / od.accelerator_count)  # type: ignore[operator]
    p.sources["on_demand"] = f"{od.provider} {od.instance_type}: {od.source} ({od.date})"
    for mode, attr in (("spot", "spot"), ("reserved-1y", "reserved_1y"), ("reserved-3y", "reserved_3y")):
        o = cheapest(mode)
        if o is not None:
            setattr(p, attr, o.price_usd_per_hour / o.accelerator_count)  # type: ignore[operator]
            p.sources[attr] = f"{o.provider} {o.instance_type}: {o.source} ({o.date})"
    owned = [o for o in offers if o.mode == "owned"]
    if owned:
        tdp = None
        with contextlib.suppress(BadInput):
            tdp = accelerator_spec(acc).tdp_w
        best = None
        for o in owned:
            fixed, power = owned_hourly(o, None if tdp is None else tdp * o.accelerator_count)
            per = (fixed / o.accelerator_count, power / o.accelerator_count)
            if best is None or sum(per) < sum(best[0]):
                best = (per, o)
        assert best is not None
        p.owned_fixed, p.owned_power = best[0]
        p.sources["owned"] = f"{best[1].instance_type}: {best[1].source} ({best[1].date})"
    if p.spot is not None:
        run = sp.spot_run(1000.0, 1, sp.DEFAULT_INTERRUPTION_PER_MONTH, 5 / 60)
        p.spot_overhead = run.overhead_fraction
    return p


def plan_portfolio(
    demand: Demand | dict | str | Path,
    *,
    horizon: str | int | None = None,
    catalog: Catalog | None = None,
    providers: list[str] | None = None,
    spot_share: float | None = None,
    prices: Prices | None = None,
) -> Portfolio:
    """Size owned + committed + burst capacity for monthly demand; compare with all-rent and all-buy.

    `horizon` is months ("12mo", "3y" or an int); default: the demand file's length.
    """
    t0 = time.perf_counter()
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    if isinstance(demand, str | Path):
        demand = load_demand(demand)
    elif isinstance(demand, dict):
        demand = demand_from_dict(demand)
    h = _months(horizon) if horizon is not None else demand.months
    dem = demand.over(h)
    if spot_share is not None:
        if not 0 <= spot_share <= 1:
            raise BadInput("spot_share", spot_share, "must be in [0, 1]")
        dem = Demand(
            dem.accelerator, dem.gpu_hours, dem.peak_gpus, dem.gpus_per_server, spot_share, dem.extended_from
        )
    if prices is None:
        prices = prices_for(catalog or load_catalog(), dem.accelerator, providers)
    u = dem.gpus_per_server
    D = np.array(dem.gpu_hours, dtype=float)
    P = np.array(dem.peak_gpus, dtype=float)
    k = np.where(P > 0, np.minimum(D / np.maximum(P, 1e-12), HOURS_PER_MONTH), 0.0)
    # variable layout
    iB = 0
    iR1 = 1
    iR3 = iR1 + h
    iO = iR3 + h
    iR = iO + h
    iD = iR + h
    iS = iD + h
    n = iS + h
    c = np.zeros(n)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    term1, term3 = 12, 36
    if prices.owned_fixed is not None:
        c[iB] = u * prices.owned_fixed * HOURS_PER_MONTH * h
        c[iO : iO + h] = prices.owned_power or 0.0
    else:
        hi[iB] = 0
    if prices.reserved_1y is not None:
        c[iR1 : iR1 + h] = u * prices.reserved_1y * HOURS_PER_MONTH * term1
    else:
        hi[iR1 : iR1 + h] = 0
    if prices.reserved_3y is not None:
        c[iR3 : iR3 + h] = u * prices.reserved_3y * HOURS_PER_MONTH * term3
    else:
        hi[iR3 : iR3 + h] = 0
    c[iD : iD + h] = prices.on_demand
    if prices.spot is not None and dem.spot_share > 0:
        c[iS : iS + h] = prices.spot * (1 + prices.spot_overhead)
        hi[iS : iS + h] = dem.spot_share * D
    else:
        hi[iS : iS + h] = 0
    rows, lb, ub = [], [], []
    for m in range(h):
        r = np.zeros(n)
        r[[iO + m, iR + m, iD + m, iS + m]] = 1
        rows.append(r), lb.append(D[m]), ub.append(D[m])
        r = np.zeros(n)
        r[iO + m] = 1
        r[iB] = -u * k[m]
        rows.append(r), lb.append(-np.inf), ub.append(0.0)
        r = np.zeros(n)
        r[iR + m] = 1
        for s in range(h):
            if s <= m < s + term1:
                r[iR1 + s] = -u * k[m]
            if s <= m < s + term3:
                r[iR3 + s] = -u * k[m]
        rows.append(r), lb.append(-np.inf), ub.append(0.0)
    integrality = np.zeros(n)
    integrality[:iO] = 1
    res = milp(
        c,
        constraints=LinearConstraint(np.array(rows), lb, ub),
        integrality=integrality,
        bounds=Bounds(lo, hi),
    )
    if res.x is None:
        raise BadInput("demand", dem.accelerator, f"the portfolio program has no solution ({res.message})")
    x = np.maximum(np.round(res.x, 6), 0.0)
    B = round(x[iB])
    R1 = [round(v) for v in x[iR1 : iR1 + h]]
    R3 = [round(v) for v in x[iR3 : iR3 + h]]

    def active(m: int) -> int:
        return sum(R1[s] for s in range(h) if s <= m < s + term1) + sum(
            R3[s] for s in range(h) if s <= m < s + term3
        )

    monthly, cum = [], []
    total = 0.0
    after = 0.0
    for m in range(h):
        owned_fixed = B * u * (prices.owned_fixed or 0.0) * HOURS_PER_MONTH
        res_pay = (
            sum(R1[s] for s in range(h) if s <= m < s + term1)
            * u
            * (prices.reserved_1y or 0)
            * HOURS_PER_MONTH
        )
        res_pay += (
            sum(R3[s] for s in range(h) if s <= m < s + term3)
            * u
            * (prices.reserved_3y or 0)
            * HOURS_PER_MONTH
        )
        cost = owned_fixed + res_pay + x[iO + m] * (prices.owned_power or 0.0) + x[iD + m] * prices.on_demand
        if prices.spot is not None:
            cost += x[iS + m] * prices.spot * (1 + prices.spot_overhead)
        total += cost
        cum.append(total)
        monthly.append(
            {
                "month": m + 1,
                "demand_gpu_hours": D[m],
                "peak_gpus": P[m],
                "owned_gpus": B * u,
                "reserved_gpus": active(m) * u,
                "owned_gpu_hours": x[iO + m],
                "reserved_gpu_hours": x[iR + m],
                "on_demand_gpu_hours": x[iD + m],
                "spot_gpu_hours": x[iS + m],
                "cost_usd": cost,
            }
        )
    for s in range(h):
        after += R1[s] * u * (prices.reserved_1y or 0) * HOURS_PER_MONTH * max(0, s + term1 - h)
        after += R3[s] * u * (prices.reserved_3y or 0) * HOURS_PER_MONTH * max(0, s + term3 - h)
    rent = np.cumsum(D * prices.on_demand).tolist()
    buy_cum = None
    all_buy = None
    break_even = None
    if prices.owned_fixed is not None:
        servers = math.ceil(float(P.max()) / u - 1e-9)
        per_month = servers * u * prices.owned_fixed * HOURS_PER_MONTH
        buy_cum = np.cumsum(per_month + D * (prices.owned_power or 0.0)).tolist()
        all_buy = buy_cum[-1]
        margin = prices.on_demand - (prices.owned_power or 0.0)
        break_even = prices.owned_fixed / margin if margin > 0 else None
    cumulative = {"portfolio": cum, "all_rent": rent}
    if buy_cum is not None:
        cumulative["all_buy"] = buy_cum
    assumptions = [
        "demand arrives at its monthly peak and is idle otherwise (two-level load), so a base GPU serves "
        "demand/peak hours a month",
        f"purchases and commitments in whole servers of {u} GPUs; owned bought at month 1, "
        "capex straight-line "
        "over the depreciation period (the horizon's share is charged)",
        "commitments are charged their whole term; the part after the horizon is reported separately",
        "prices: the cheapest catalog offer per mode for this accelerator, per GPU-hour",
    ]
    if prices.spot is not None and dem.spot_share > 0:
        assumptions.append(
            f"spot burst up to {dem.spot_share:.0%} of each month's demand, +{prices.spot_overhead:.1%} "
            "expected time from interruptions (default rate, Young/Daly)"
        )
    if dem.extended_from is not None:
        assumptions.append(
            f"the demand file gives {dem.extended_from} months; the last month is repeated to {h}"
        )
    p = Portfolio(
        accelerator=dem.accelerator,
        horizon_months=h,
        gpus_per_server=u,
        owned_gpus=B * u,
        reserved_1y=[{"start_month": s + 1, "gpus": R1[s] * u} for s in range(h) if R1[s]],
        reserved_3y=[{"start_month": s + 1, "gpus": R3[s] * u} for s in range(h) if R3[s]],
        monthly=monthly,
        total_cost_usd=total + after,
        committed_after_horizon_usd=after,
        all_rent_cost_usd=rent[-1],
        all_buy_cost_usd=all_buy,
        break_even_utilisation=break_even,
        cumulative_usd=cumulative,
        prices={
            "usd_per_gpu_hour": {
                k: getattr(prices, k)
                for k in ("on_demand", "spot", "reserved_1y", "reserved_3y", "owned_fixed", "owned_power")
            },
            "sources": prices.sources,
        },
        status=str(res.message),
        seconds=time.perf_counter() - t0,
        assumptions=assumptions,
    )
    p.explanation = _explain(p)
    return p


def _months(v: str | int) -> int:
    if isinstance(v, int):
        m = v
    else:
        from suanli.core.units import parse_duration

        m = round(parse_duration(v, "horizon") / (HOURS_PER_MONTH * 3600))
    if m < 1 or m > 120:
        raise BadInput("horizon", v, "must be between 1 and 120 months (e.g. 12mo, 3y)")
    return m


def _explain(p: Portfolio) -> str:
    parts = []
    if p.owned_gpus:
        parts.append(f"own {p.owned_gpus} GPUs")
    r1 = sum(r["gpus"] for r in p.reserved_1y)
    r3 = sum(r["gpus"] for r in p.reserved_3y)
    if r1:
        parts.append(f"commit {r1} GPU-years of 1-year reservations")
    if r3:
        parts.append(f"commit {r3} GPUs for 3 years")
    burst = sum(m["on_demand_gpu_hours"] + m["spot_gpu_hours"] for m in p.monthly)
    parts.append(f"rent the remaining {burst:,.0f} GPU-hours on demand/spot" if burst > 0 else "rent nothing")
    save = 1 - p.total_cost_usd / p.all_rent_cost_usd if p.all_rent_cost_usd else 0.0
    text = f"{p.accelerator} over {p.horizon_months} months: " + ", ".join(parts)
    text += f"; total ${p.total_cost_usd:,.0f}, {save:.0%} below renting everything on demand "
    text += f"(${p.all_rent_cost_usd:,.0f})"
    if p.all_buy_cost_usd is not None:
        text += f" and ${p.all_buy_cost_usd:,.0f} for buying for the peak"
    if p.break_even_utilisation is not None:
        text += f". Buying beats on-demand above {p.break_even_utilisation:.0%} utilisation"
    return text + "."
