"""Estimator benchmarks: layout-search time, analytic calls per second, the 70B meta-device probe,
calibration error, interval coverage.

python benchmarks/bench_estimate.py          # the tables recorded in docs/estimator.md
python benchmarks/bench_estimate.py --fit    # also re-fit the constants on the calibration runs
python benchmarks/bench_estimate.py --cv     # also leave-one-out cross-validation
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

from suanli.estimate import estimate_train
from suanli.estimate.calibration import PUBLISHED_RUNS, fit, fitted_constant_mfu, predict, rule_6nd
from suanli.estimate.model import Architecture
from suanli.estimate.throughput import DEFAULT_CALIBRATION
from suanli.estimate.train import _SEARCH_CACHE

L70 = Architecture(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=32000, seq_len=4096)
L7 = Architecture(layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=11008, vocab=32000, seq_len=4096)


def _median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cold(**kw: object) -> object:
    _SEARCH_CACHE.clear()  # measure the search itself, not the memo
    return estimate_train(**kw)  # type: ignore[arg-type]


def speed() -> None:
    search = _median_time(lambda: _cold(arch=L70, tokens=2e12, accelerator="H100", count=1024))
    fixed_kw = {"tp": 8, "pp": 4, "dp": 32, "zero": 1, "microbatch": 1, "recompute": "selective"}
    n = 2000
    fixed = _median_time(
        lambda: [
            estimate_train(L70, tokens=2e12, accelerator="H100", count=1024, **fixed_kw) for _ in range(n)
        ]
    )
    m = 200
    small = _median_time(lambda: [_cold(arch=L7, tokens=1e12, accelerator="H100", count=8) for _ in range(m)])
    w = 2000
    warm = _median_time(
        lambda: [estimate_train(L7, tokens=1e12, accelerator="H100", count=8) for _ in range(w)]
    )
    print("## Speed (median of 5 runs)\n")
    print("| measurement | figure |")
    print("|---|---|")
    print(
        f"| layout search, 70B on 1,024 H100 (all tp x pp x dp x ZeRO x microbatch x recompute) | "
        f"{search * 1000:.0f} ms |"
    )
    print(f"| analytic estimate, fixed layout (70B, 1,024 devices) | {n / fixed:,.0f} calls/s |")
    print(f"| analytic estimate with layout search (7B, 8 devices) | {m / small:,.0f} calls/s |")
    print(f"| same, search remembered (a repeated (model, device, count) query) | {w / warm:,.0f} calls/s |")
    print()


def calibration_table() -> None:
    cal_runs = tuple(r for r in PUBLISHED_RUNS if r.split == "calibration")
    const = fitted_constant_mfu(cal_runs)
    lo, hi = DEFAULT_CALIBRATION.interval
    rows = []
    for r in PUBLISHED_RUNS:
        p = predict(r)
        rows.append((r, p, rule_6nd(r, 0.40), rule_6nd(r, const)))
    print("## Published whole training runs: reported vs predicted device-hours\n")
    print(
        f"Single fitted constant: 6ND at {const:.1%} of dense peak (median over the calibration runs). "
        f"Interval: x{lo:g} to x{hi:g} of the prediction.\n"
    )
    print(
        "| run | split | hardware | reported | suanli | err | in interval | 6ND@40% | err | constant | err |"
    )
    print("|---|---|---|---:|---:|---:|:-:|---:|---:|---:|---:|")

    def err(x: float, rep: float) -> str:
        return f"{(x / rep - 1) * 100:+.0f}%"

    for r, p, six, c in rows:
        inside = "yes" if lo * p <= r.device_hours <= hi * p else "no"
        print(
            f"| {r.name} | {r.split} | {r.count} x {r.accelerator} | {r.device_hours:,.0f} | {p:,.0f} | "
            f"{err(p, r.device_hours)} | {inside} | {six:,.0f} | {err(six, r.device_hours)} | {c:,.0f} | "
            f"{err(c, r.device_hours)} |"
        )
    print()
    print("| set | runs | suanli median abs err | 6ND@40% | single constant | interval coverage |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sel in (
        ("all", rows),
        ("calibration", [x for x in rows if x[0].split == "calibration"]),
        ("held-out", [x for x in rows if x[0].split == "held-out"]),
    ):

        def med(i: int, sel: list = sel) -> float:
            return statistics.median(abs(x[i] / x[0].device_hours - 1) for x in sel)

        cover = sum(lo * x[1] <= x[0].device_hours <= hi * x[1] for x in sel) / len(sel)
        print(f"| {name} | {len(sel)} | {med(1):.1%} | {med(2):.1%} | {med(3):.1%} | {cover:.0%} |")
    print()
    logs = [math.log(x[1] / x[0].device_hours) for x in rows]
    print(f"Geometric-mean bias of suanli over all runs: {math.exp(statistics.mean(logs)) - 1:+.1%}\n")


def cross_validate() -> None:
    """Leave one out: fit the constants on the other 24 runs, predict the one left out. No run's own
    figure is used to predict it, so this is the least flattering error of the model."""
    print("## Leave-one-out cross-validation (each run predicted from constants fitted on the others)\n")
    print("| run | reported | predicted | err |")
    print("|---|---:|---:|---:|")
    errs = []
    for i, r in enumerate(PUBLISHED_RUNS):
        p = predict(r, fit(PUBLISHED_RUNS[:i] + PUBLISHED_RUNS[i + 1 :]))
        errs.append(abs(p / r.device_hours - 1))
        print(f"| {r.name} | {r.device_hours:,.0f} | {p:,.0f} | {(p / r.device_hours - 1) * 100:+.0f}% |")
    print(f"\nLeave-one-out median absolute error over {len(errs)} runs: {statistics.median(errs):.1%}\n")


_PROBE_70B = (
    "import json, resource, time\n"
    "t = time.perf_counter()\n"
    "from suanli.estimate.probe import probe\n"
    "probe('suanli.estimate.reference_models:llama_70b', '1,512')\n"
    "print(json.dumps({'s': time.perf_counter() - t,\n"
    "  'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


def probe_70b(repeats: int = 3) -> None:
    """The meta-device probe of Llama-2-70B (goal: under 10 s and 1 GB), each run in a fresh
    process so torch's import and the peak memory are counted as a user sees them."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _PROBE_70B], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"## Meta-device probe, Llama-2-70B at 1 x 512 tokens (median of {repeats} processes)\n")
    print("| measurement | figure |")
    print("|---|---|")
    print(f"| wall time, torch import included | {statistics.median(r['s'] for r in runs):.1f} s |")
    print(f"| peak resident memory | {statistics.median(r['rss_mb'] for r in runs):.0f} MB |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true", help="re-fit the constants on the calibration runs")
    parser.add_argument("--cv", action="store_true", help="leave-one-out cross-validation (about 30 s)")
    args = parser.parse_args()
    speed()
    probe_70b()
    calibration_table()
    if args.cv:
        cross_validate()
    if args.fit:
        start = time.perf_counter()
        cal = fit()
        print(f"## Re-fit ({time.perf_counter() - start:.1f} s)\n")
        print(f"base efficiencies: { {k: round(v, 3) for k, v in cal.base.items()} }")
        print(f"width_half={cal.width_half:g} elementwise={cal.elementwise:g} interval={cal.interval}")


if __name__ == "__main__":
    main()
