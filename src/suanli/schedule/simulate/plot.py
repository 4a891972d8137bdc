"""Plots for `suanli simulate --plot`: JCT CDFs of the compared policies and GPU utilisation over time.
matplotlib is imported here only, when a plot is asked for."""

from __future__ import annotations

from pathlib import Path

from suanli.schedule.simulate.engine import SimResult
from suanli.schedule.simulate.metrics import utilization_series


def plot_results(results: list[SimResult], out_dir: Path) -> list[Path]:
    """Write jct_cdf.png and utilization.png into `out_dir`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        jcts = sorted(o.jct_s for o in r.outcomes)
        n = len(jcts)
        ax.step(jcts, [(i + 1) / n for i in range(n)], where="post", label=r.policy)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (s, log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.set_title("JCT CDF")
    ax.grid(True, alpha=0.3)
    ax.legend()
    cdf = out_dir / "jct_cdf.png"
    fig.tight_layout()
    fig.savefig(cdf, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        series = utilization_series(r)
        if series:
            ax.plot([t / 3600 for t, _ in series], [100 * u for _, u in series], label=r.policy)
    ax.set_xlabel("time since first submission (h)")
    ax.set_ylabel("GPUs busy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("GPU utilisation over time")
    ax.grid(True, alpha=0.3)
    ax.legend()
    util = out_dir / "utilization.png"
    fig.tight_layout()
    fig.savefig(util, dpi=120)
    plt.close(fig)
    return [cdf, util]
