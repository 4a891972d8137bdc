"""Pick the best feasible option for the objective and say why in one or two sentences.

When nothing meets the constraints, say which constraint binds and what the best achievable is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from suanli.plan.options import Option

OBJECTIVES = ("cost", "time", "energy", "carbon")


def objective_key(objective: str):
    """Sort key for an objective; ties go to the cheaper, then the faster option."""
    if objective == "cost":
        return lambda o: (o.cost_usd, o.wall_hours)
    if objective == "time":
        return lambda o: (o.wall_hours, o.cost_usd)
    if objective == "energy":
        return lambda o: (math.inf if o.energy_kwh is None else o.energy_kwh, o.cost_usd)
    if objective == "carbon":
        return lambda o: (math.inf if o.co2_kg is None else o.co2_kg, o.cost_usd)
    raise ValueError(objective)


def _days(h: float) -> str:
    return f"{h / 24:.1f} days" if h >= 48 else f"{h:.1f} h"


def _usd(x: float) -> str:
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def explain(best: Option, feasible: Sequence[Option], objective: str, deadline_h: float | None) -> str:
    """Why this option: compared with the best on-demand alternative, or with the fastest option."""
    head = (
        f"Recommended: {best.label()}, {_days(best.wall_hours)}, {_usd(best.cost_usd)}"
        + ("" if objective == "cost" else f" (best {objective})")
        + "."
    )
    meets = ""
    if deadline_h is not None:
        slack = f"; it still meets the {_days(deadline_h)} deadline"
        meets = slack + (f" (P(miss) {best.p_miss:.0%})" if best.p_miss is not None else "")
    if best.mode != "on-demand":
        od = [o for o in feasible if o.mode == "on-demand"]
        same = [
            o
            for o in od
            if (o.provider, o.instance_type, o.instances)
            == (best.provider, best.instance_type, best.instances)
        ]
        if same or od:
            ref = same[0] if same else min(od, key=lambda o: (o.cost_usd, o.wall_hours))
            against = (
                "the same hardware on demand" if same else f"the cheapest on-demand option, {ref.label()},"
            )
            saving = 1 - best.cost_usd / ref.cost_usd if ref.cost_usd > 0 else 0.0
            dt = best.wall_hours / ref.wall_hours - 1 if ref.wall_hours > 0 else 0.0
            what = (
                f"{best.mode} saves {saving:.0%}" if saving >= 0 else f"{best.mode} costs {-saving:.0%} more"
            )
            why = ""
            if (
                best.mode == "spot"
                and best.checkpoint_interval_hours
                and math.isfinite(best.checkpoint_interval_hours)
            ):
                why = f" from interruptions with {best.checkpoint_interval_hours * 60:.0f}-minute checkpoints"
            if why:
                time_txt = (
                    f" but adds {dt:.0%} expected time{why}"
                    if dt >= 0.01
                    else f" but adds {dt:.1%} expected time{why}"
                )
            elif dt > 0.005:
                time_txt = f" but adds {dt:.0%} expected time"
            elif dt < -0.005:
                time_txt = f" and takes {-dt:.0%} less time"
            else:
                time_txt = " in the same time"
            text = f"{head} Against {against} at {_usd(ref.cost_usd)}, {what}{time_txt}{meets}."
            if same and od:
                cheapest = min(od, key=lambda o: (o.cost_usd, o.wall_hours))
                if cheapest is not ref:
                    text += (
                        f" The cheapest on-demand option is {cheapest.label()} at {_usd(cheapest.cost_usd)}."
                    )
            return text
        return f"{head} No on-demand option meets the constraints{meets}."
    fastest = min(feasible, key=lambda o: (o.wall_hours, o.cost_usd))
    tail = ""
    if fastest is not best:
        took = f"{_days(fastest.wall_hours)} for {_usd(fastest.cost_usd)}"
        tail = f" The fastest option ({fastest.label()}) takes {took}."
    return f"{head} It is the {objective}-best option that meets the constraints{meets}.{tail}"


def binding(all_options: Sequence[Option], deadline_h: float | None, budget: float | None) -> tuple[str, str]:
    """(constraint, sentence) when no option is feasible: which constraint binds, the best achievable."""
    finite = [o for o in all_options if math.isfinite(o.wall_hours)]
    if not finite:
        return "catalog", "No offer can run this workload (see `skipped` for why each device was left out)."
    if deadline_h is not None and not any(o.meets_deadline for o in finite):
        f = min(finite, key=lambda o: (o.wall_hours, o.cost_usd))
        return "deadline", (
            f"No option meets the deadline: the fastest ({f.label()}) finishes in {_days(f.wall_hours)}; "
            f"your deadline is {_days(deadline_h)}. Raise --max-gpus or the deadline."
        )
    if budget is not None:
        ok = [o for o in finite if o.meets_deadline]
        c = min(ok, key=lambda o: (o.cost_usd, o.wall_hours))
        return "budget", (
            f"No option fits the budget: the cheapest that meets the deadline ({c.label()}) costs "
            f"{_usd(c.cost_usd)}; your budget is {_usd(budget)}."
        )
    return "none", "No option meets the constraints."
