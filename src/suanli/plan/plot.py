"""Plots: cost against time with the Pareto front, and a portfolio's cumulative cost. matplotlib is
imported inside the functions (Agg backend) so that importing the planner stays light."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suanli.plan import Plan
    from suanli.plan.portfolio import Portfolio


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def plot_target(path: Path | str) -> Path:
    """`path` checked before any work is done: a .png, .svg or .pdf file in an existing folder."""
    from suanli.core.errors import BadInput

    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise BadInput("plot", str(path), "must end in " + ", ".join(PLOT_SUFFIXES))
    if p.is_dir():
        raise BadInput("plot", str(path), "is a directory; give a file name such as plan.png")
    if not p.parent.is_dir():
        raise BadInput("plot", str(path), f"its folder {p.parent} does not exist")
    return p


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_plan(p: Plan, path: Path | str) -> Path:
    """Scatter of every feasible option (cost vs wall time, log-log), the Pareto front as a line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    modes = sorted({o.mode for o in p.options})
    for m in modes:
        xs = [o.wall_hours / 24 for o in p.options if o.mode == m]
        ys = [o.cost_usd for o in p.options if o.mode == m]
        ax.scatter(xs, ys, s=10, alpha=0.45, label=m)
    front = sorted(p.pareto, key=lambda o: o.wall_hours)
    if front:
        ax.plot(
            [o.wall_hours / 24 for o in front],
            [o.cost_usd for o in front],
            "k-o",
            ms=4,
            lw=1.5,
            label="Pareto front",
        )
    if p.recommended is not None:
        r = p.recommended
        ax.scatter(
            [r.wall_hours / 24], [r.cost_usd], s=160, marker="*", color="red", zorder=5, label="recommended"
        )
    dl = p.constraints.get("deadline_hours")
    if dl:
        ax.axvline(dl / 24, color="grey", ls="--", lw=1, label="deadline")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time (days)")
    ax.set_ylabel("cost (USD)")
    ax.set_title(f"suanli plan: {p.workload}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    out = Path(path)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_portfolio(p: Portfolio, path: Path | str) -> Path:
    """Cumulative cost per month: the portfolio against all-rent and all-buy."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    months = list(range(1, p.horizon_months + 1))
    for name, series in p.cumulative_usd.items():
        ax.plot(months, series, marker="o", ms=3, label=name.replace("_", "-"))
    ax.set_xlabel("month")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title(f"{p.accelerator} portfolio over {p.horizon_months} months", fontsize=10)
    ax.legend()
    ax.grid(True, alpha=0.3)
    out = Path(path)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
