"""Each acquisition mode's cost model against hand-computed examples."""

from __future__ import annotations

import math

import pytest

from suanli.catalog.offers import Offer
from suanli.plan import modes, spot

S = modes.ModelSettings()


def offer(mode: str, price: float | None = 2.0, count: int = 8, **kw) -> Offer:
    return Offer("p", "it", "H100", count, mode, "test", "2026-11-22", price_usd_per_hour=price, **kw)


def test_on_demand_bills_whole_hours_by_default_and_the_stated_increment() -> None:
    # 2.0 $/h x 4 instances x ceil(10.2 h) = 2 x 4 x 11 = 88
    assert modes.on_demand(offer("on-demand"), 4, 10.2, S).cost_usd == pytest.approx(88.0)
    # per-minute billing: 10.2 h = 612 min exactly -> 2 x 4 x 10.2 = 81.6
    assert modes.on_demand(offer("on-demand", billing_increment_s=60), 4, 10.2, S).cost_usd == pytest.approx(
        81.6
    )


def test_reserved_pays_the_whole_term_without_other_use() -> None:
    o = offer("reserved-1y", price=1.0)
    # job of 100 h on 2 instances: 1.0 x 2 x (12 x 730) = 17,520
    assert modes.reserved(o, 2, 100.0, S).cost_usd == pytest.approx(17520.0)
    # with 50% utilisation by other work: 1.0 x 2 x 100 / 0.5 = 400
    s = modes.ModelSettings(utilisation=0.5)
    assert modes.reserved(o, 2, 100.0, s).cost_usd == pytest.approx(400.0)
    # a job longer than the term pays two terms
    assert modes.reserved(o, 1, 9000.0, S).cost_usd == pytest.approx(2 * 8760.0)


def test_marketplace_divides_by_reliability() -> None:
    o = offer("marketplace", price=1.0, reliability=0.8)
    mc = modes.marketplace(o, 3, 8.0, S)
    assert mc.wall_hours == pytest.approx(10.0)  # 8 / 0.8
    assert mc.cost_usd == pytest.approx(30.0)  # 1.0 x 3 x 10
    default = modes.marketplace(offer("marketplace", price=1.0), 1, 95.0, S)
    assert default.wall_hours == pytest.approx(100.0)  # the stated 95% default


def test_owned_is_amortised_purchase_plus_power_plus_hosting_never_free() -> None:
    o = offer(
        "owned",
        price=None,
        purchase_usd=87600.0,
        depreciation_years=1.0,
        electricity_usd_per_kwh=0.1,
        hosting_usd_per_month=730.0,
        pue=1.2,
    )
    s = modes.ModelSettings(utilisation=0.5)
    mc = modes.owned(o, 2, 100.0, s, energy_kwh=1000.0, est_pue=1.2)
    # capex 87,600 x 2 x 100 / (8,760 x 0.5) = 4,000; hosting 730 x 2 x (100 / 0.5) / 730 = 400;
    # power 1,000 kWh x 0.1 = 100
    assert mc.breakdown == pytest.approx({"capex_usd": 4000.0, "hosting_usd": 400.0, "power_usd": 100.0})
    assert mc.cost_usd == pytest.approx(4500.0)
    # job only: the whole purchase (2 x 87,600) + a year of hosting (2 x 730 x 12) + power
    mc = modes.owned(o, 2, 100.0, S, energy_kwh=1000.0, est_pue=1.2)
    assert mc.cost_usd == pytest.approx(175200.0 + 17520.0 + 100.0)
    # an offer PUE above the estimator's scales the electricity: 1,000 x 1.5/1.2 x 0.1
    o2 = offer(
        "owned", price=None, purchase_usd=0.0, depreciation_years=1.0, electricity_usd_per_kwh=0.1, pue=1.5
    )
    assert modes.owned(o2, 1, 10.0, s, 1000.0, 1.2).breakdown["power_usd"] == pytest.approx(125.0)


def test_spot_matches_the_young_daly_formula_by_hand() -> None:
    o = offer("spot", price=1.0)
    per_month = 0.2
    lam = -math.log(0.8) / 730  # per instance-hour
    n, hours, c, r = 4, 500.0, 0.1, 1 / 6
    m = 1 / (n * lam)
    tau = math.sqrt(2 * c * m)
    expect = hours * (1 + c / tau) / (1 - (r + tau / 2) / m)
    s = modes.ModelSettings(checkpoint_hours=c, restart_hours=r, interruption_per_month=per_month)
    mc = modes.spot(o, n, hours, s, params=7e9)
    assert mc is not None
    assert mc.wall_hours == pytest.approx(expect)
    assert mc.checkpoint_interval_hours == pytest.approx(tau)
    assert mc.cost_usd == pytest.approx(1.0 * n * math.ceil(expect))


def test_spot_without_interruptions_is_just_the_lower_price() -> None:
    s = modes.ModelSettings(interruption_per_month=0.0)
    mc = modes.spot(offer("spot", price=1.0), 2, 10.0, s, params=1e9)
    assert mc is not None and mc.wall_hours == 10.0 and mc.cost_usd == 20.0


def test_spot_too_volatile_cannot_finish() -> None:
    s = modes.ModelSettings(interruption_per_month=0.999, checkpoint_hours=1.0, restart_hours=1.0)
    assert modes.spot(offer("spot", price=1.0), 512, 100.0, s, params=7e10) is None


def test_young_daly_and_poisson_helpers() -> None:
    assert spot.young_daly_interval(0.5, 100.0) == pytest.approx(10.0)  # sqrt(2 x 0.5 x 100)
    assert spot.poisson_sf(0, 1.0) == pytest.approx(1 - math.exp(-1))
    assert spot.poisson_sf(-1, 3.0) == 1.0
    run = spot.spot_run(100.0, 8, 0.2, 0.1, deadline_h=99.0)
    assert run.p_miss == 1.0  # even without interruptions it cannot make a deadline below the work
    easy = spot.spot_run(100.0, 8, 0.2, 0.1, deadline_h=1000.0)
    assert easy.p_miss is not None and easy.p_miss < 1e-6
