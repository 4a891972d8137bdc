"""Planner benchmarks: speed (one workload against the shipped catalog + every SkyPilot CSV; a 36-month
portfolio) and quality (suanli's recommendation vs SkyPilot's rule: the cheapest hourly price for the
requested accelerator and node count, every candidate at the same runtime).

    .venv/bin/python benchmarks/bench_plan.py [--runs 5]

The SkyPilot CSVs are found through SUANLI_SHARED_DATA or ../shared/data beside the repository.
Prints markdown tables (recorded in docs/planner.md, "Benchmark figures").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from suanli.catalog.offers import load_catalog, shipped_offers
from suanli.catalog.skypilot import import_skypilot
from suanli.estimate import train as est_train
from suanli.plan import plan, plan_portfolio, skypilot_rule

REPO = Path(__file__).resolve().parents[1]


def shared_skypilot() -> Path:
    base = os.environ.get("SUANLI_SHARED_DATA")
    root = Path(base) if base else REPO.parent / "shared" / "data"
    path = root / "catalogs" / "skypilot"
    if not path.is_dir():
        raise SystemExit(f"SkyPilot catalogs not found under {root} (set SUANLI_SHARED_DATA)")
    return path


def _cold() -> None:
    """Forget the estimator's layout-search cache so each run pays for its searches."""
    est_train._SEARCH_CACHE.clear()


def speed(runs: int, store: Path) -> list[str]:
    t0 = time.perf_counter()
    res = import_skypilot(shared_skypilot(), store)
    t_import = time.perf_counter() - t0
    rows: list[str] = [
        "| measurement | median | min | max | runs |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(name: str, xs: list[float], unit: str = "s") -> None:
        rows.append(
            f"| {name} | {statistics.median(xs):.3f} {unit} | {min(xs):.3f} {unit} "
            f"| {max(xs):.3f} {unit} | {len(xs)} |"
        )

    loads, cold, warm, totals = [], [], [], []
    workload = {"params": "7e9", "tokens": "1e12"}
    for _ in range(runs):
        t = time.perf_counter()
        cat = load_catalog(imported_dir=store)
        loads.append(time.perf_counter() - t)
        _cold()
        t = time.perf_counter()
        p = plan(workload, catalog=cat, deadline="30d", budget=250000)
        cold.append(time.perf_counter() - t)
        totals.append(loads[-1] + cold[-1])
        t = time.perf_counter()
        plan(workload, catalog=cat, deadline="30d", budget=250000)
        warm.append(time.perf_counter() - t)
    big = []
    for _ in range(runs):
        cat = load_catalog(imported_dir=store)
        _cold()
        t = time.perf_counter()
        plan({"params": "70e9", "tokens": "2e12"}, catalog=cat, deadline="60d")
        big.append(time.perf_counter() - t)
    row("import SkyPilot CSVs (7 files, once)", [t_import])
    row("load catalog (shipped + imported)", loads)
    row("plan 7B/1T, cold estimator cache", cold)
    row("load + plan 7B/1T (the 1-second goal)", totals)
    row("plan 7B/1T again (estimator cache warm)", warm)
    row("plan 70B/2T, cold estimator cache", big)
    pf = []
    for _ in range(runs):
        t = time.perf_counter()
        plan_portfolio(REPO / "examples" / "plan" / "demand.yaml", horizon="36mo", catalog=cat)
        pf.append(time.perf_counter() - t)
    row("36-month portfolio MILP (examples/plan/demand.yaml)", pf)
    info = (
        f"Catalog: {len(shipped_offers())} shipped rows + {res.rows_read} SkyPilot CSV rows "
        f"({len(res.offers)} offers after collapsing regions with the same price) -> "
        f"{len(cat.offers)} offers "
        f"after de-duplication; the 7B plan evaluated {len(p.all_options)} options with "
        f"{p.stats['estimator_calls']} estimator calls."
    )
    return [info, "", *rows]


# (name, workload, deadline, SkyPilot request: accelerator, GPUs per node, nodes)
WORKLOADS = [
    ("pretrain 1B on 100B tokens", {"params": "1e9", "tokens": "1e11"}, "7d", ("A100-80GB", 8, 1)),
    ("pretrain 7B on 1T tokens", {"params": "7e9", "tokens": "1e12"}, "30d", ("H100", 8, 4)),
    ("pretrain 70B on 2T tokens", {"params": "70e9", "tokens": "2e12"}, "90d", ("H100", 8, 32)),
    ("fine-tune 7B on 2B tokens", {"params": "7e9", "tokens": "2e9"}, "2d", ("A100-80GB", 8, 1)),
    ("fine-tune 13B on 5B tokens", {"params": "13e9", "tokens": "5e9"}, "3d", ("H100", 8, 1)),
    (
        "serve 7B, 5,000 output tokens/s for 30 days",
        {"kind": "infer", "params": "7e9", "tokens_per_second": 5000, "duration": "30d", "batch": 32},
        None,
        ("H100", 1, None),
    ),
]


def quality(store: Path) -> list[str]:
    cat = load_catalog(imported_dir=store)
    rows = [
        "| workload | deadline | SkyPilot request | SkyPilot's pick (cheapest hourly) | its time | its cost "
        "| meets deadline | suanli's recommendation | time | cost | suanli / SkyPilot "
        "| suanli without spot | its cost | no-spot / SkyPilot |",
        "|---|---|---|---|---:|---:|:-:|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, wl, deadline, (acc, g, nodes) in WORKLOADS:
        p = plan(wl, catalog=cat, deadline=deadline, max_gpus=512)
        if nodes is None:  # serving: SkyPilot takes the cheapest instance of that shape, same replica count
            c = [o for o in p.all_options if o.accelerator == acc and o.devices // o.instances == g
                 and o.mode in ("on-demand", "marketplace")]  # fmt: skip
            sky = min(c, key=lambda o: (o.price_usd_per_hour, o.cost_usd)) if c else None
            req = f"{acc}:{g}, replicas as needed"
        else:
            sky = skypilot_rule(p, acc, g, nodes)
            req = f"{acc}:{g} x {nodes} nodes"
        r = p.recommended
        ns = plan(wl, catalog=cat, deadline=deadline, max_gpus=512, spot=False).recommended
        if sky is None or r is None:
            rows.append(f"| {name} | {deadline} | {req} | none | | | | {r.label() if r else 'none'} | | | |")
            continue
        dl = p.constraints["deadline_hours"]
        meets = "-" if dl is None else ("yes" if sky.wall_hours <= dl else "no")
        rows.append(
            f"| {name} | {deadline or '-'} | {req} | {sky.provider} {sky.instance_type} "
            f"(${sky.price_usd_per_hour:.2f}/h, {sky.mode}) | {sky.wall_hours / 24:.1f} d "
            f"| ${sky.cost_usd:,.0f} "
            f"| {meets} | {r.label()} | {r.wall_hours / 24:.1f} d | ${r.cost_usd:,.0f} "
            f"| {r.cost_usd / sky.cost_usd:.2f} | {ns.label() if ns else 'none'} "
            f"| {'-' if ns is None else f'${ns.cost_usd:,.0f}'} "
            f"| {'-' if ns is None else f'{ns.cost_usd / sky.cost_usd:.2f}'} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "catalogs"
        print("## Speed\n")
        print("\n".join(speed(args.runs, store)))
        print("\n## Quality: suanli vs SkyPilot's rule\n")
        print("\n".join(quality(store)))


if __name__ == "__main__":
    main()
