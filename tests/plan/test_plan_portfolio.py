"""The portfolio MILP against hand-solved cases, and the demand file's validation."""

from __future__ import annotations

import pytest

from suanli.core.errors import BadInput
from suanli.plan import plan_portfolio
from suanli.plan.demand import demand_from_dict
from suanli.plan.portfolio import Prices

FLAT = {
    "accelerator": "H100",
    "gpus_per_server": 8,
    "monthly_gpu_hours": [8 * 730] * 12,
    "peak_gpus": [8] * 12,
}


def test_flat_demand_buys_one_server() -> None:
    # owned: 8 GPUs x 0.5 $/GPU-h x 730 h x 12 = 35,040 + power 8 x 730 x 12 x 0.1 = 7,008 -> 42,048
    # renting: 8 x 730 x 12 x 2.0 = 140,160
    pr = Prices(on_demand=2.0, owned_fixed=0.5, owned_power=0.1)
    p = plan_portfolio(FLAT, prices=pr)
    assert p.owned_gpus == 8
    assert p.total_cost_usd == pytest.approx(42048.0)
    assert p.all_rent_cost_usd == pytest.approx(140160.0)
    assert p.all_buy_cost_usd == pytest.approx(42048.0)
    assert p.break_even_utilisation == pytest.approx(0.5 / (2.0 - 0.1))
    assert len(p.cumulative_usd["portfolio"]) == 12


def test_peaky_demand_hand_solved() -> None:
    # 5,840 GPU-h a month at a peak of 16 GPUs: a base GPU serves 5,840/16 = 365 h a month.
    # B=0: 5,840 x 2 = 11,680/month. B=1: 2,920 fixed + 292 power + 2,920 x 2 rent = 9,052.
    # B=2: 5,840 fixed + 584 power = 6,424 -> the optimum, 12 x 6,424 = 77,088.
    d = {"accelerator": "H100", "monthly_gpu_hours": [5840] * 12, "peak_gpus": [16] * 12}
    p = plan_portfolio(d, prices=Prices(on_demand=2.0, owned_fixed=0.5, owned_power=0.1))
    assert p.owned_gpus == 16
    assert p.total_cost_usd == pytest.approx(77088.0)
    # at owned 1.2 $/GPU-h: B=1 costs 7,008+292+5,840 = 13,140 > renting 11,680 -> rent everything
    p = plan_portfolio(d, prices=Prices(on_demand=2.0, owned_fixed=1.2, owned_power=0.1))
    assert p.owned_gpus == 0 and p.total_cost_usd == pytest.approx(140160.0)


def test_reservation_when_nothing_can_be_bought() -> None:
    # 1-year commitment at 1.0: 8 x 1.0 x 730 x 12 = 70,080 < renting 140,160
    p = plan_portfolio(FLAT, prices=Prices(on_demand=2.0, reserved_1y=1.0))
    assert p.reserved_1y == [{"start_month": 1, "gpus": 8}]
    assert p.total_cost_usd == pytest.approx(70080.0)
    assert p.committed_after_horizon_usd == 0


def test_late_demand_does_not_commit_past_the_horizon_when_renting_is_cheaper() -> None:
    # demand only in the last 2 of 12 months: a 12-month commitment would cost 12 months for 2 of use
    d = {"accelerator": "H100", "monthly_gpu_hours": [0] * 10 + [5840, 5840], "peak_gpus": [1] * 10 + [8, 8]}
    p = plan_portfolio(d, prices=Prices(on_demand=2.0, reserved_1y=1.0))
    assert p.reserved_1y == [] and p.total_cost_usd == pytest.approx(2 * 5840 * 2.0)


def test_shipped_catalog_prices_and_36_month_horizon() -> None:
    d = {"accelerator": "H100", "monthly_gpu_hours": [20000, 30000, 40000], "peak_gpus": [48, 64, 96]}
    p = plan_portfolio(d, horizon="36mo")
    assert p.horizon_months == 36 and p.total_cost_usd <= p.all_rent_cost_usd
    assert any("repeated" in a for a in p.assumptions)
    assert p.to_json()["prices"]["sources"]["on_demand"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"monthly_gpu_hours": [1]}, "accelerator"),
        ({"accelerator": "H10", "monthly_gpu_hours": [1]}, "accelerator"),
        ({"accelerator": "H100"}, "months"),
        ({"accelerator": "H100", "monthly_gpu_hours": [-1]}, "monthly_gpu_hours[0]"),
        ({"accelerator": "H100", "monthly_gpu_hours": [7300], "peak_gpus": [5]}, "months[0].peak_gpus"),
        ({"accelerator": "H100", "monthly_gpu_hours": [1], "spot_share": 2}, "spot_share"),
        ({"accelerator": "H100", "monthly_gpu_hours": [1], "horizon": 3}, "horizon"),
    ],
)
def test_bad_demand(doc, field) -> None:
    with pytest.raises(BadInput) as e:
        demand_from_dict(doc)
    assert e.value.field == field
