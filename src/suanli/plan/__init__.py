"""The acquisition planner: the cheapest way to get a workload done by its deadline.

`plan(...)` enumerates offers x instance counts x layouts x acquisition modes, costs each with its mode's
model, filters by the constraints, marks the Pareto front over cost and time and recommends one option
with the reason. `plan_portfolio(...)` sizes a team's owned + committed + burst capacity over a horizon
as a mixed-integer program. Both return objects with `.to_json()`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanli.catalog.offers import MODES, Catalog, Offer, load_catalog
from suanli.core.errors import BadInput, input_file, read_text
from suanli.core.units import check_range, parse_count, parse_params, parse_tokens, parse_usd
from suanli.core.workload import WHOLE_KEYS, WorkloadSpec, workload_from_dict
from suanli.plan import modes as _modes
from suanli.plan import spot as _spot
from suanli.plan.options import Estimator, Option, enumerate_options
from suanli.plan.pareto import pareto_front
from suanli.plan.portfolio import Portfolio, plan_portfolio
from suanli.plan.recommend import OBJECTIVES, binding, explain, objective_key

DEFAULT_MAX_GPUS = 512
DEFAULT_MAX_MISS = 0.10


@dataclass(slots=True)
class Plan:
    """The ranked options, the Pareto front, the recommendation and everything assumed on the way."""

    workload: str
    objective: str
    constraints: dict
    options: list[Option]  # feasible options, best first for the objective
    all_options: list[Option]  # everything evaluated (feasible or not)
    recommended: Option | None
    explanation: str
    binding_constraint: str | None
    assumptions: list[str]
    skipped: dict[str, str]
    stats: dict[str, float] = field(default_factory=dict)
    top: int = 20

    @property
    def pareto(self) -> list[Option]:
        return [o for o in self.options if o.pareto]

    def shown(self) -> list[Option]:
        """The options a report shows: the best `top` for the objective plus the whole Pareto front."""
        head = self.options[: self.top]
        extra = [o for o in self.pareto if o not in head]
        return head + extra

    def to_json(self) -> dict:
        rec = self.recommended.to_json() if self.recommended else None
        return {
            "workload": self.workload,
            "objective": self.objective,
            "constraints": self.constraints,
            "options": [o.to_json() for o in self.shown()],
            "options_feasible": len(self.options),
            "options_evaluated": len(self.all_options),
            "recommended": rec,
            "explanation": self.explanation,
            "binding_constraint": self.binding_constraint,
            "pareto_front": [o.to_json() for o in self.pareto],
            "assumptions": self.assumptions,
            "skipped": self.skipped,
            "stats": self.stats,
        }


def _as_list(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    items = [x.strip() for x in v.split(",")] if isinstance(v, str) else [str(x).strip() for x in v]
    items = [x for x in items if x]
    return items or None


def _hours(v: str | float | None, field_: str) -> float | None:
    if v is None:
        return None
    from suanli.core.units import parse_duration

    return parse_duration(v, field_) / 3600


def plan(
    workload: WorkloadSpec | dict | None = None,
    *,
    catalog: Catalog | None = None,
    offers: Sequence[Offer] | None = None,
    deadline: str | float | None = None,
    budget: float | str | None = None,
    providers: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    accelerators: str | Sequence[str] | None = None,
    modes: str | Sequence[str] | None = None,
    max_gpus: int = DEFAULT_MAX_GPUS,
    min_gpus: int = 1,
    spot: bool | None = None,
    objective: str = "cost",
    utilisation: float | None = None,
    interruption_per_month: float | None = None,
    checkpoint_minutes: float | None = None,
    restart_minutes: float = _spot.DEFAULT_RESTART_HOURS * 60,
    max_miss_probability: float = DEFAULT_MAX_MISS,
    pue: float | None = None,
    region: str = "world",
    grid_gco2_per_kwh: float | None = None,
    top: int = 20,
    progress: Callable[[str], None] | None = None,
    **workload_fields: Any,
) -> Plan:
    """Plan a workload. Give it as a WorkloadSpec, a dict (job.yaml's `workload:`), or keywords
    (`params="7e9", tokens="1e12"`; serving: `kind="infer", tokens_per_second=..., duration="30d"`).

    `deadline` is a duration ("30d", or seconds); `budget` USD (250000, "250k", "$1.5M");
    `spot=None` considers spot, True only spot, False none;
    `utilisation` is the share of a reserved/owned term that other work uses (None: the job pays it all).
    `progress` hears what is being done once the inputs have been checked (bad input says nothing first).
    """
    t0 = time.perf_counter()
    from suanli.estimate.energy import DEFAULT_PUE, PUE_SOURCE

    pue = DEFAULT_PUE if pue is None else pue
    if workload is None:
        workload = workload_from_dict(checked_workload(workload_fields))
    elif isinstance(workload, dict):
        workload = workload_from_dict(checked_workload({**workload, **workload_fields}))
    if budget is not None:
        budget = parse_usd(budget, "budget")
    if objective not in OBJECTIVES:
        raise BadInput("objective", objective, "must be one of " + ", ".join(OBJECTIVES))
    deadline_h = _hours(deadline, "deadline")
    _check_constraints(
        budget,
        max_gpus,
        min_gpus,
        utilisation,
        max_miss_probability,
        pue,
        interruption_per_month,
        checkpoint_minutes,
        restart_minutes,
        top,
    )
    mode_list = _as_list(modes)
    if mode_list:
        for m in mode_list:
            if m not in MODES:
                from suanli.core.errors import did_you_mean

                raise BadInput("modes", m, "must be one of " + ", ".join(MODES), hint=did_you_mean(m, MODES))
        if spot is True and "spot" not in mode_list:
            raise BadInput("spot", True, "contradicts --modes " + ",".join(mode_list) + " (no spot in it)")
    if spot is True:
        mode_list = ["spot"]
    elif mode_list is None:
        mode_list = [m for m in MODES if m != "edge" or workload.kind == "infer"]
    if spot is False:
        mode_list = [m for m in mode_list if m != "spot"]
        if not mode_list:
            raise BadInput("spot", False, "contradicts --modes spot (nothing left to plan)")
    if catalog is None and offers is None:
        catalog = load_catalog()
    cat = catalog if catalog is not None else Catalog(list(offers or []))
    chosen = cat.query(
        providers=_as_list(providers),
        regions=_as_list(regions),
        accelerators=_as_list(accelerators),
        modes=mode_list,
    )
    if progress is not None:
        progress(f"planning against {len(chosen)} offers ...")
    settings = _modes.ModelSettings(
        utilisation=utilisation,
        interruption_per_month=interruption_per_month,
        restart_hours=restart_minutes / 60,
        checkpoint_hours=None if checkpoint_minutes is None else checkpoint_minutes / 60,
        deadline_hours=deadline_h,
        serving=workload.kind == "infer",
    )
    est = Estimator(workload, pue, region, grid_gco2_per_kwh)
    t1 = time.perf_counter()
    all_opts = enumerate_options(workload, chosen, est, settings, max_devices=max_gpus, min_devices=min_gpus)
    t2 = time.perf_counter()
    for o in all_opts:
        if deadline_h is not None and workload.kind == "train":
            o.meets_deadline = o.wall_hours <= deadline_h and (
                o.p_miss is None or o.p_miss <= max_miss_probability
            )
        elif not math.isfinite(o.wall_hours):
            o.meets_deadline = False
        if budget is not None:
            o.within_budget = o.cost_usd <= budget
    feasible = [o for o in all_opts if o.feasible]
    for i in pareto_front(feasible):
        feasible[i].pareto = True
    feasible.sort(key=objective_key(objective))
    if feasible:
        best: Option | None = feasible[0]
        assert best is not None
        text = explain(best, feasible, objective, deadline_h if workload.kind == "train" else None)
        bind = None
    else:
        best = None
        bind, text = binding(all_opts, deadline_h, budget)
    constraints = {
        "deadline_hours": deadline_h,
        "budget_usd": budget,
        "providers": _as_list(providers),
        "regions": _as_list(regions),
        "accelerators": _as_list(accelerators),
        "modes": mode_list,
        "max_gpus": max_gpus,
        "min_gpus": min_gpus,
        "max_miss_probability": max_miss_probability,
        "utilisation": utilisation,
    }
    assumptions = _assumptions(workload, settings, pue, PUE_SOURCE, region, utilisation)
    skipped = dict(sorted(est.reasons.items()))
    stats = {
        "offers": len(chosen),
        "estimator_calls": est.calls,
        "seconds_enumerate": t2 - t1,
        "seconds_total": time.perf_counter() - t0,
    }
    return Plan(
        workload.describe(),
        objective,
        constraints,
        feasible,
        all_opts,
        best,
        text,
        bind,
        assumptions,
        skipped,
        stats,
        top,
    )


def checked_workload(d: dict[str, Any]) -> dict[str, Any]:
    """`d` with its sizes checked before any work: plausible parameter and token counts (7 for 7B is
    refused with a hint), magnitudes such as 5k tokens/s read, and a `model` that is a readable file."""
    out = dict(d)
    for key in ("params", "active_params"):
        if out.get(key) is not None:
            parse_params(out[key], key)  # checked; the given text is kept for the plan's description
    if out.get("tokens") is not None:
        parse_tokens(out["tokens"], "tokens")
    if out.get("tokens_per_second") is not None:
        out["tokens_per_second"] = parse_count(out["tokens_per_second"], "tokens_per_second")
    if isinstance(out.get("model"), str | Path):
        read_text(input_file(out["model"], "model", inside="config.json"), "model")
    for key in ("network_gbps", "grid_gco2_per_kwh"):
        if isinstance(out.get(key), float):
            check_range(out[key], key, lo=0, lo_open=True)
    for key in WHOLE_KEYS:
        value = out.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and not value >= 1:
            raise BadInput(key, value, "must be a whole number >= 1")
    return out


def _check_constraints(
    budget: float | None,
    max_gpus: int,
    min_gpus: int,
    utilisation: float | None,
    max_miss: float,
    pue: float,
    interruption: float | None,
    checkpoint_minutes: float | None,
    restart_minutes: float,
    top: int,
) -> None:
    if budget is not None and not (budget > 0 and math.isfinite(budget)):
        raise BadInput("budget", budget, "must be a positive amount of USD")
    if max_gpus < 1:
        raise BadInput("max_gpus", max_gpus, "must be a whole number >= 1")
    if min_gpus < 1 or min_gpus > max_gpus:
        raise BadInput("min_gpus", min_gpus, f"must be between 1 and --max-gpus ({max_gpus})")
    check_range(utilisation, "utilisation", lo=0, hi=1, lo_open=True)
    check_range(max_miss, "max_miss_probability", lo=0, hi=1)
    check_range(pue, "pue", lo=1)
    if interruption is not None and not 0 <= interruption < 1:
        raise BadInput("interruption_per_month", interruption, "must be in [0, 1)")
    check_range(checkpoint_minutes, "checkpoint_minutes", lo=0, lo_open=True)
    check_range(restart_minutes, "restart_minutes", lo=0)
    if top < 1:
        raise BadInput("top", top, "must be >= 1")


def _assumptions(
    wl: WorkloadSpec,
    s: _modes.ModelSettings,
    pue: float,
    pue_src: str,
    region: str,
    utilisation: float | None,
) -> list[str]:
    out = [
        "time, layout and energy from suanli's estimator (one estimate per accelerator and device count); "
        "energy = TDP x device-hours x PUE",
        f"{pue_src}" if pue == 1.2 else f"PUE {pue:g} (given)",
        f"CO2 at the '{region}' grid intensity for every offer (offer regions are not mapped to grids)",
        "instance counts tried: powers of two up to --max-gpus devices",
        "billing: whole hours unless an offer states its increment "
        f"({_modes.DEFAULT_BILLING_INCREMENT_S:g} s)",
        f"spot: {_spot.INTERRUPTION_SOURCE}; restart {s.restart_hours * 60:g} min (assumed); checkpoint = "
        f"{_spot.CHECKPOINT_BYTES_PER_PARAM} B/param written at "
        f"{_spot.CHECKPOINT_WRITE_BYTES_PER_S / 1e9:g} GB/s per "
        f"instance + {_spot.CHECKPOINT_FIXED_S:g} s (assumed); interval by Young/Daly sqrt(2 C MTBF)",
        f"marketplace reliability {_modes.DEFAULT_MARKETPLACE_RELIABILITY:.0%} unless the offer states one "
        "(assumed)",
        "reserved/owned: "
        + (
            "the job pays the whole term/purchase (no other use declared)"
            if utilisation is None
            else f"shared with other work at {utilisation:.0%} utilisation"
        ),
        "owned: GPU purchase price only (chassis, CPUs, network, hosting not sourced unless the offer "
        "gives them)",
    ]
    if wl.kind == "infer":
        out.append(
            "serving: replicas = ceil(target tokens/s / one replica's decode tokens/s) at the given batch; "
            "devices draw TDP for the whole duration"
        )
    return out


__all__ = [
    "Option",
    "Plan",
    "Portfolio",
    "WorkloadSpec",
    "plan",
    "plan_portfolio",
    "skypilot_rule",
    "workload_from_dict",
]


def skypilot_rule(p: Plan, accelerator: str, gpus_per_node: int, nodes: int) -> Option | None:
    """SkyPilot's choice among `p`'s options: the lowest hourly price for the requested accelerator and
    node shape (on-demand or marketplace, same runtime for all); its cost is then what suanli's models say
    that choice really costs."""
    cands = [
        o
        for o in p.all_options
        if o.accelerator == accelerator
        and o.instances == nodes
        and o.devices == gpus_per_node * nodes
        and o.mode in ("on-demand", "marketplace")
        and o.price_usd_per_hour is not None
    ]
    if not cands:
        return None
    return min(cands, key=lambda o: (o.price_usd_per_hour, o.cost_usd))
