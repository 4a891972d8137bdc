"""The engine: the recommendation equals a brute-force optimum; Pareto flags; constraints and reasons."""

from __future__ import annotations

import math

import pytest

from suanli.catalog.offers import Catalog, Offer
from suanli.core.errors import BadInput
from suanli.estimate.train import estimate_train
from suanli.plan import modes, plan, skypilot_rule
from suanli.plan.options import instance_counts
from suanli.plan.pareto import dominated

WL = {"params": "1e9", "tokens": "2e10"}


def _o(provider: str, inst: str, acc: str, n: int, mode: str, price: float | None, **kw) -> Offer:
    return Offer(provider, inst, acc, n, mode, "test", "2026-11-22", price_usd_per_hour=price, **kw)


SMALL = [
    _o("a", "8x-h100", "H100", 8, "on-demand", 24.0),
    _o("a", "1x-h100", "H100", 1, "on-demand", 3.2),
    _o("a", "8x-h100", "H100", 8, "spot", 12.0),
    _o("b", "8x-a100", "A100-80GB", 8, "on-demand", 13.0),
    _o("b", "1x-a100", "A100-80GB", 1, "on-demand", 1.5),
    _o("b", "2x-l40s", "L40S", 2, "marketplace", 1.4),
    _o("c", "8x-h100", "H100", 8, "reserved-1y", 15.0),
    _o(
        "own",
        "own-8x-h100",
        "H100",
        8,
        "owned",
        None,
        purchase_usd=240000.0,
        depreciation_years=5.0,
        electricity_usd_per_kwh=0.08,
        pue=1.2,
    ),
]


def _brute_force(deadline_h: float, budget: float | None, max_gpus: int, utilisation: float | None):
    """Every (offer, power-of-two instance count): cost by hand where simple, best feasible by cost."""
    s = modes.ModelSettings(utilisation=utilisation, deadline_hours=deadline_h)
    best = None
    for o in SMALL:
        for n in instance_counts(o.accelerator_count, max_gpus):
            try:
                e = estimate_train(accelerator=o.accelerator, count=n * o.accelerator_count, **WL)
            except BadInput:
                continue
            h = e.wall_hours
            if o.mode == "on-demand":
                cost, t, p = o.price_usd_per_hour * n * math.ceil(h), h, None
            elif o.mode == "marketplace":
                t = h / 0.95
                cost, p = o.price_usd_per_hour * n * math.ceil(t), None
            elif o.mode == "reserved-1y":
                t, p = h, None
                cost = (
                    o.price_usd_per_hour * n * h / utilisation
                    if utilisation
                    else o.price_usd_per_hour * n * 8760
                )
            else:
                mc = modes.cost(o, n, h, s, params=e.params, energy_kwh=e.energy_kwh, est_pue=1.2)
                if mc is None:
                    continue
                cost, t, p = mc.cost_usd, mc.wall_hours, mc.p_miss
            ok = t <= deadline_h and (p is None or p <= 0.1) and (budget is None or cost <= budget)
            if ok and (best is None or (cost, t) < best[0]):
                best = ((cost, t), o, n)
    return best


@pytest.mark.parametrize(
    ("deadline", "budget", "max_gpus", "utilisation"),
    [(72.0, None, 64, None), (12.0, None, 64, None), (72.0, None, 16, 0.6), (200.0, 3000.0, 64, 0.9)],
)
def test_recommendation_equals_brute_force_optimum(deadline, budget, max_gpus, utilisation) -> None:
    p = plan(
        WL, offers=SMALL, deadline=deadline * 3600, budget=budget, max_gpus=max_gpus, utilisation=utilisation
    )
    bf = _brute_force(deadline, budget, max_gpus, utilisation)
    if bf is None:
        assert p.recommended is None
        return
    (cost, t), o, n = bf
    r = p.recommended
    assert r is not None
    assert r.cost_usd == pytest.approx(cost)
    assert r.wall_hours == pytest.approx(t)
    assert (r.provider, r.instance_type, r.mode, r.instances) == (o.provider, o.instance_type, o.mode, n)


def test_pareto_flags_match_pairwise_dominance() -> None:
    p = plan(WL, offers=SMALL, max_gpus=64)
    assert p.options
    for a in p.options:
        is_dominated = any(dominated(a, b) for b in p.options if b is not a)
        assert a.pareto == (not is_dominated) or _tied(a, p.options)


def _tied(a, options) -> bool:
    return any(b is not a and b.cost_usd == a.cost_usd and b.wall_hours == a.wall_hours for b in options)


def test_objective_time_picks_the_fastest() -> None:
    p = plan(WL, offers=SMALL, max_gpus=64, objective="time")
    assert p.recommended is not None
    assert p.recommended.wall_hours == min(o.wall_hours for o in p.options)


def test_deadline_that_nothing_meets_names_the_fastest() -> None:
    p = plan(WL, offers=SMALL, max_gpus=16, deadline="1h")
    assert p.recommended is None and p.binding_constraint == "deadline"
    assert "fastest" in p.explanation and "your deadline is 1.0 h" in p.explanation


def test_budget_that_nothing_meets_names_the_cheapest() -> None:
    p = plan(WL, offers=SMALL, max_gpus=64, budget=1.0)
    assert p.recommended is None and p.binding_constraint == "budget"
    assert "your budget is $1.00" in p.explanation


def test_spot_explanation_says_what_it_saves_and_costs_in_time() -> None:
    p = plan(WL, offers=SMALL, max_gpus=64, deadline="3d", spot=True)
    assert p.recommended is not None and p.recommended.mode == "spot"
    p = plan(WL, offers=SMALL, max_gpus=64, deadline="3d", modes="on-demand,spot")
    assert p.recommended is not None and p.recommended.mode == "spot"
    assert "spot saves" in p.explanation and "checkpoints" in p.explanation


def test_json_document_fields() -> None:
    d = plan(WL, offers=SMALL, max_gpus=64, deadline="3d").to_json()
    for k in ("options", "recommended", "explanation", "assumptions"):
        assert k in d
    for k in (
        "provider",
        "instance_type",
        "accelerator",
        "instances",
        "devices",
        "mode",
        "layout",
        "wall_hours",
        "cost_usd",
        "energy_kwh",
        "co2_kg",
        "pareto",
    ):
        assert k in d["options"][0]
    assert d["recommended"] in d["options"]


def test_serving_workload_sizes_replicas() -> None:
    p = plan(
        {"kind": "infer", "params": "7e9", "tokens_per_second": 5000, "duration": "30d", "batch": 16},
        offers=SMALL,
        max_gpus=64,
    )
    r = p.recommended
    assert r is not None and r.layout["replicas"] >= 1 and r.wall_hours == pytest.approx(720.0)


def test_skypilot_rule_takes_the_lowest_hourly_price_for_the_shape() -> None:
    p = plan(WL, offers=SMALL, max_gpus=64)
    sky = skypilot_rule(p, "H100", 8, 1)
    assert sky is not None and sky.price_usd_per_hour == 24.0 and sky.mode == "on-demand"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget": -5}, "budget"),
        ({"max_gpus": 0}, "max_gpus"),
        ({"spot": True, "modes": "on-demand"}, "spot"),
        ({"spot": False, "modes": "spot"}, "spot"),
        ({"objective": "speed"}, "objective"),
        ({"utilisation": 1.5}, "utilisation"),
        ({"deadline": "-3d"}, "deadline"),
        ({"modes": "rented"}, "modes"),
        ({"min_gpus": 128, "max_gpus": 64}, "min_gpus"),
    ],
)
def test_contradictory_or_bad_constraints(kwargs, field) -> None:
    with pytest.raises(BadInput) as e:
        plan(WL, offers=SMALL, **kwargs)
    assert e.value.field == field


def test_unknown_provider_region_accelerator_get_near_names() -> None:
    cat = Catalog(SMALL)
    with pytest.raises(BadInput, match="did you mean"):
        plan(WL, catalog=cat, providers="aa")
    with pytest.raises(BadInput, match="did you mean: H100"):
        plan(WL, catalog=cat, accelerators="H10")
    with pytest.raises(BadInput, match="regions"):
        plan(WL, catalog=cat, regions="mars-1")
