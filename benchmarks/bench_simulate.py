"""Scheduling benchmarks: policy quality on the Philly traces and simulator/decision speed.

    python benchmarks/bench_simulate.py                 # everything
    python benchmarks/bench_simulate.py --only quality  # or fidelity, hetero, speed, bound,
                                                        # estimates, alibaba, versus
    SUANLI_SHARED_DATA=/path/to/shared/data python benchmarks/bench_simulate.py

Quality: every Philly virtual cluster (VC) in Pollux's philly.csv that Helios's philly_vc.csv sizes,
replayed on NODESx4 GPUs (the VC's node count, 4 GPUs per node: 16 nodes -> 64 GPUs as 16x4), with
topology-aware (consolidated) placement and the given preemption cost. Prints each policy's average
JCT relative to FIFO, then suanli's default against Tiresias 2D-LAS and the clairvoyant SRTF oracle,
with Jain's fairness index.

Bound: how close a non-clairvoyant policy can come to the SRTF oracle when it is even told the trace's
whole job-size distribution in advance (never the size of any one job): a Gittins-index policy per
GPU count over attained time. Not a policy to deploy (the distribution is the future of the trace);
a reference for what "within 10% of the oracle" asks of any policy that does not know job lengths. Also
the default told every job's true length as an unstated guess (used only inside its queues), and a
Gittins policy told in advance the true lengths of each job's siblings (same size, submitted together).

Estimates: every VC again, with stated runtime estimates (like Slurm's --time) on all or half of the
jobs, off by a lognormal factor: how close the default comes to the oracle when users say how long
their jobs run, against Tiresias (which ignores estimates) and plain SRTF on the same estimates.

Fidelity: Philly VC 6c71a0 (9,953 jobs) on 16x4 GPUs with `count` placement, against the average
JCTs the published Tiresias simulator gives on the same input (SymbioticLab/Tiresias,
simulator/run_sim.py, Python 2.7, `--scheme=count`: fifo, dlas-gpu, shortest-gpu).

Versus: the default against the faithful Tiresias on every VC, with `count` (GPUs counted, as the
published simulators place jobs) and `consolidated` placement.

Alibaba: the 6,203 scheduled GPU pods of Alibaba's GPU cluster trace 2023 (openb_pod_list_default.csv;
QoS class as the user) on 2 nodes x 8 GPUs: average JCT and Jain's index over users' mean slowdowns,
where, unlike on Philly, there are several users to be fair to.

Speed: replay of a 100,000-job synthetic trace (seeded, Philly-like sizes, 90% load on 64x8 GPUs)
per event-driven policy, and one live decision with 10,000 pending jobs on 1,000 nodes; medians.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import random
import statistics
import sys
import time
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

from suanli.schedule import POLICIES, ClusterState, get_policy
from suanli.schedule.policies._common import preemptive_pass
from suanli.schedule.simulate import busy_moment, load_trace, parse_cluster, simulate, summarize, synthetic
from suanli.schedule.simulate.metrics import user_slowdowns

QUALITY_POLICIES = [
    "fifo",
    "backfill",
    "sjf",
    "srtf",
    "drf",
    "priority",
    "gavel",
    "tiresias",
    "suanli",
    "sjf-oracle",
    "srtf-oracle",
]
SPEED_POLICIES = ["fifo", "backfill", "sjf", "drf", "gavel", "tiresias", "suanli"]


def shared_data() -> Path:
    env = os.environ.get("SUANLI_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    if not (path / "traces").is_dir():
        sys.exit("traces not found: set SUANLI_SHARED_DATA to the shared/data folder")
    return path.resolve()


def vc_sizes(traces: Path) -> dict[str, int]:
    with open(traces / "helios" / "philly_vc.csv") as fh:
        return {row["vc"]: int(row["node num"]) for row in csv.DictReader(fh)}


def quality(preemption_cost: float, vcs: list[str] | None) -> None:
    traces = shared_data() / "traces"
    sizes = vc_sizes(traces)
    philly = str(traces / "pollux" / "philly.csv")
    rows = []
    print(
        f"## Quality: Philly VCs, consolidated placement, preemption cost {preemption_cost:g} s\n", flush=True
    )
    head = "| VC | cluster | jobs | " + " | ".join(QUALITY_POLICIES) + " |"
    print("Average JCT relative to FIFO (lower is better; FIFO's own average JCT in hours):\n")
    print(head)
    print("|" + "---|" * (3 + len(QUALITY_POLICIES)))
    for vc in vcs or sorted(sizes):
        trace = load_trace(philly, vc=vc)
        spec = f"{sizes[vc]}x4"
        nodes = parse_cluster(spec)
        summaries = {}
        for name in QUALITY_POLICIES:
            kw = {"consolidate": True}
            if name == "suanli":
                kw["preemption_cost_s"] = preemption_cost
            summaries[name] = summarize(
                simulate(
                    trace.jobs,
                    nodes,
                    get_policy(name, **kw),
                    preemption_cost_s=preemption_cost,
                    skip_invalid=True,
                )
            )
        fifo = summaries["fifo"].avg_jct_s
        cells = [
            f"{fifo / 3600:.2f} h" if n == "fifo" else f"{summaries[n].avg_jct_s / fifo:.3f}"
            for n in QUALITY_POLICIES
        ]
        print(f"| {vc} | {spec} | {summaries['fifo'].jobs} | " + " | ".join(cells) + " |", flush=True)
        rows.append((vc, summaries))
    print(
        "\nsuanli (default) against Tiresias 2D-LAS and the SRTF oracle; Jain's index over jobs' slowdowns:\n"
    )
    print(
        "| VC | suanli / tiresias | suanli / srtf-oracle | Jain fifo | Jain tiresias | Jain suanli "
        "| preemptions tiresias | preemptions suanli |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for vc, s in rows:
        print(
            f"| {vc} | {s['suanli'].avg_jct_s / s['tiresias'].avg_jct_s:.3f} | "
            f"{s['suanli'].avg_jct_s / s['srtf-oracle'].avg_jct_s:.3f} | {s['fifo'].jain_fairness:.3f} | "
            f"{s['tiresias'].jain_fairness:.3f} | {s['suanli'].jain_fairness:.3f} | "
            f"{s['tiresias'].preemptions} | {s['suanli'].preemptions} |"
        )
    worst_t = max(s["suanli"].avg_jct_s / s["tiresias"].avg_jct_s for _, s in rows)
    worst_o = max(s["suanli"].avg_jct_s / s["srtf-oracle"].avg_jct_s for _, s in rows)
    fair = all(s["suanli"].jain_fairness >= s["fifo"].jain_fairness for _, s in rows)
    print(
        f"\nworst suanli/tiresias {worst_t:.3f}; worst suanli/srtf-oracle {worst_o:.3f}; "
        f"Jain >= FIFO on all: {fair}\n"
    )


# SymbioticLab/Tiresias simulator/run_sim.py on Philly VC 6c71a0 (Pollux's philly.csv, submit times
# from the VC's first job, durations as given), 16 nodes x 4 GPUs, --scheme=count; average of job.csv JCT.
PUBLISHED_6C71A0 = {"fifo": 162_324.4, "dlas-gpu": 22_648.1, "shortest-gpu": 19_613.8}
FIDELITY_POLICIES = [
    ("fifo", "fifo"),
    ("tiresias", "dlas-gpu"),
    ("srtf-oracle", "shortest-gpu"),
    ("suanli", None),
]


def fidelity() -> None:
    traces = shared_data() / "traces"
    trace = load_trace(str(traces / "pollux" / "philly.csv"), vc="6c71a0")
    nodes = parse_cluster("16x4")
    print("## Fidelity: Philly VC 6c71a0, 16x4 GPUs, count placement, against the published simulator\n")
    print(
        "| suanli policy | average JCT (s) | published policy | published avg JCT (s) | ratio | preemptions |"
    )
    print("|---|---|---|---|---|---|")
    for name, theirs in FIDELITY_POLICIES:
        result = simulate(trace.jobs, nodes, get_policy(name, consolidate=False), placement="count")
        avg = summarize(result).avg_jct_s
        ref = PUBLISHED_6C71A0.get(theirs or "dlas-gpu")
        label = theirs or "dlas-gpu (as the baseline)"
        print(
            f"| {name} | {avg:,.0f} | {label} | {ref:,.0f} | {avg / ref:.4f} | {result.preemptions} |",
            flush=True,
        )
    print()


HETERO_CLUSTER = "9x4xV100,9x4xP100,9x4xK80"  # Gavel's simulated cluster: 36 + 36 + 36 GPUs
HETERO_POLICIES = ["fifo", "gavel", "tiresias", "suanli", "srtf-oracle"]


def hetero() -> None:
    """Gavel's per-VC Philly traces on Gavel's heterogeneous cluster, with its measured throughputs."""
    from suanli.schedule.simulate import load_throughputs

    traces = shared_data() / "traces"
    table = load_throughputs(traces / "gavel" / "simulation_throughputs.json")
    nodes = parse_cluster(HETERO_CLUSTER)
    print(f"## Heterogeneity: Gavel msr/seed_0 traces on {HETERO_CLUSTER}, preemption cost 0 s\n")
    print("Average JCT relative to FIFO; Jain's index in brackets (VCs with at least 100 jobs):\n")
    print("| VC | jobs | " + " | ".join(HETERO_POLICIES) + " |")
    print("|" + "---|" * (2 + len(HETERO_POLICIES)))
    for path in sorted((traces / "gavel" / "msr" / "seed_0").glob("*.trace")):
        trace = load_trace(str(path), throughputs=table)
        if len(trace.jobs) < 100:
            continue
        s = {
            n: summarize(simulate(trace.jobs, nodes, get_policy(n), skip_invalid=True))
            for n in HETERO_POLICIES
        }
        fifo = s["fifo"].avg_jct_s
        cells = [
            f"{fifo / 3600:.1f} h ({s[n].jain_fairness:.2f})"
            if n == "fifo"
            else f"{s[n].avg_jct_s / fifo:.3f} ({s[n].jain_fairness:.2f})"
            for n in HETERO_POLICIES
        ]
        print(f"| {path.stem} | {s['fifo'].jobs} | " + " | ".join(cells) + " |", flush=True)
    print()


def speed(repeat: int, jobs: int) -> None:
    nodes = parse_cluster("64x8")
    trace = synthetic(jobs, seed=0, gpus_total=512, load=0.9)
    print(f"## Speed: replay of {jobs:,} synthetic jobs on 64x8 (512 GPUs, 90% load), median of {repeat}\n")
    print("| policy | replay s (median) | runs | decisions | avg JCT h |")
    print("|---|---|---|---|---|")
    for name in SPEED_POLICIES:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = simulate(trace.jobs, nodes, get_policy(name))
            times.append(time.perf_counter() - t0)
        s = summarize(result)
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"| {name} | {statistics.median(times):.1f} | {runs} | {result.decisions:,} "
            f"| {s.avg_jct_s / 3600:.2f} |",
            flush=True,
        )
    print("\n## Speed: one live decision, 10,000 pending jobs on 1,000 nodes (8 GPUs each, 90% busy)\n")
    ns, running, pending = busy_moment()
    print("| policy | ms (median) | ms (min) | starts | with waiting reasons |")
    print("|---|---|---|---|---|")
    rng = random.Random(0)
    stated = [  # every waiting job states how long it runs: 10 minutes to a day
        dataclasses.replace(j, estimated_duration_s=rng.uniform(600, 86_400), estimate_stated=True)
        for j in pending
    ]
    cases = [(name, name, pending) for name in sorted(POLICIES)]
    cases.append(("suanli, every job stating an estimate", "suanli", stated))
    for label, name, jobs in cases:
        times = []
        for _ in range(max(repeat, 5)):
            policy = get_policy(name)
            t0 = time.perf_counter()
            out = policy.decide(jobs, ClusterState(ns, running), 10_000.0)
            times.append(1000 * (time.perf_counter() - t0))
        print(
            f"| {label} | {statistics.median(times):.1f} | {min(times):.1f} | {len(out.starts)} | yes |",
            flush=True,
        )


def gittins_table(samples: Sequence[float], grid: Sequence[float]) -> list[float]:
    """Gittins index at each attained-service point of `grid` for the empirical size distribution
    `samples`: the best ratio, over budgets, of the chance to finish within the budget to the expected
    service spent trying. Beyond the largest sample the index is 0."""
    s = sorted(samples)
    n = len(s)
    prefix = [0.0]
    for v in s:
        prefix.append(prefix[-1] + v)
    out = []
    for a in grid:
        i = bisect_right(s, a)  # samples strictly above a: s[i:]
        if i >= n:
            out.append(0.0)
            continue
        best, above = 0.0, n - i
        for k in range(i, n):
            # budget up to s[k]: P(done) = (k-i+1)/above; E[spent] = (sum s[i..k] + (n-1-k) s[k]) / above - a
            spent = prefix[k + 1] - prefix[i] + (n - 1 - k) * s[k] - above * a
            if spent > 0:
                best = max(best, (k - i + 1) / spent)
        out.append(best)
    return out


def _gittins(samples: list[float], step: float = 1.25) -> tuple[list[float], list[float]]:
    grid, x = [0.0], 10.0
    while x < max(samples) * step:
        grid.append(x)
        x *= step
    return grid, gittins_table(samples, grid)


class GittinsKnown:
    """Reference only: each job ranked by the Gittins index, over attained time, of a size
    distribution told in advance (never the job's own length)."""

    preemptive = True
    clairvoyant = False

    def __init__(self, name: str, tables: dict[str, tuple[list[float], list[float]]]) -> None:
        self.name = name
        self.tables = tables  # job id -> (grid, index)

    @classmethod
    def sizes(cls, jobs: list, min_class: int = 30) -> GittinsKnown:
        """The whole trace's lengths of jobs with the same GPU count (all jobs for rare counts)."""
        groups: dict[int, list[float]] = {}
        for j in jobs:
            groups.setdefault(j.gpus, []).append(j.duration_s)
        every = _gittins([j.duration_s for j in jobs])
        by_size = {g: _gittins(t) for g, t in groups.items() if len(t) >= min_class}
        return cls("gittins-known-sizes", {j.id: by_size.get(j.gpus, every) for j in jobs})

    @classmethod
    def siblings(cls, jobs: list, window_s: float = 600, spread: float = 0.3) -> GittinsKnown:
        """The true lengths of a job's siblings (same GPU count, each submitted within `window_s` of
        the previous one), each widened by a lognormal spread; without siblings, `sizes`' table."""
        fallback = cls.sizes(jobs).tables
        tables = {}
        ordered = sorted(jobs, key=lambda j: (j.gpus, j.submit_s))
        bursts: list[list] = []
        for prev, j in zip([None, *ordered], ordered, strict=False):
            if prev is None or j.gpus != prev.gpus or j.submit_s - prev.submit_s > window_s:
                bursts.append([])
            bursts[-1].append(j)
        for burst in bursts:
            for j in burst:
                near = [max(k.duration_s, 1.0) for k in burst if k is not j]
                widened = [d * math.exp(spread * z) for d in near for z in (-1.5, -0.5, 0.5, 1.5)]
                tables[j.id] = _gittins(widened) if near else fallback[j.id]
        return cls("gittins-known-siblings", tables)

    def _index(self, job_id: str, attained_s: float) -> float:
        grid, index = self.tables[job_id]
        return index[bisect_right(grid, attained_s) - 1]

    def decide(self, pending, cluster, now_s):
        entries = [
            ((-self._index(r.request.id, r.attained_s(now_s)), 0, r.started_s, str(r.request.id)), r)
            for r in cluster.running
        ]
        entries += [((-self._index(j.id, j.attained_s()), 1, j.submit_time_s, str(j.id)), j) for j in pending]
        return preemptive_pass(entries, cluster, consolidate=True)

    def next_wake_s(self, pending, cluster, now_s):
        """The next time a running job's attained time crosses a grid point (its index may change)."""
        best = None
        for r in cluster.running:
            grid = self.tables[r.request.id][0]
            k = bisect_right(grid, r.attained_s(now_s))
            if k < len(grid):
                at = now_s + max(grid[k] - r.attained_s(now_s), 1e-6)
                best = at if best is None else min(best, at)
        return best


def with_user_estimates(jobs: list, sigma: float, share: float = 1.0, seed: int = 1) -> list:
    """The trace as if the users of a `share` of its jobs had stated a runtime estimate (like Slurm's
    --time) off by a lognormal factor with this sigma."""
    rng = random.Random(seed)
    out = []
    for j in jobs:
        factor = math.exp(rng.gauss(0.0, sigma))
        out.append(dataclasses.replace(j, estimate_s=j.duration_s * factor) if rng.random() < share else j)
    return out


def bound(vcs: list[str] | None) -> None:
    traces = shared_data() / "traces"
    sizes = vc_sizes(traces)
    philly = str(traces / "pollux" / "philly.csv")
    print(
        "## Bound: non-clairvoyant with the job-size distribution known in advance, against the SRTF oracle\n"
    )
    print(
        "| VC | cluster | suanli / oracle | suanli told true lengths / oracle "
        "| gittins-known-sizes / oracle | gittins-known-siblings / oracle |"
    )
    print("|---|---|---|---|---|---|")
    for vc in vcs or ["103959", "2869ce", "7f04ca"]:
        trace = load_trace(philly, vc=vc)
        nodes = parse_cluster(f"{sizes[vc]}x4")
        told = get_policy("suanli")
        told.clairvoyant = True  # true lengths as its (history-like, unstated) estimates: inside queues only
        known = (GittinsKnown.sizes(trace.jobs), GittinsKnown.siblings(trace.jobs))
        policies = (get_policy("srtf-oracle"), get_policy("suanli"), told, *known)
        jct = [summarize(simulate(trace.jobs, nodes, p, skip_invalid=True)).avg_jct_s for p in policies]
        cells = " | ".join(f"{x / jct[0]:.3f}" for x in jct[1:])
        print(f"| {vc} | {sizes[vc]}x4 | {cells} |", flush=True)


ESTIMATE_CASES = [(1.0, 0.25), (1.0, 1.0), (0.5, 0.5)]  # (share of jobs with an estimate, sigma)


def estimates(vcs: list[str] | None) -> None:
    traces = shared_data() / "traces"
    sizes = vc_sizes(traces)
    philly = str(traces / "pollux" / "philly.csv")
    print("## Stated runtime estimates: the default policy when users state how long jobs run\n")
    print(
        "Average JCT / the SRTF oracle's (and / Tiresias's, which ignores estimates). Estimates are off by a "
        "lognormal factor (σ 0.25: x/÷1.28; σ 1: x/÷2.7); srtf uses the same estimates and calls a job "
        "past its estimate almost done.\n"
    )
    head = " | ".join(f"suanli, {share:.0%} of jobs σ {sigma:g}" for share, sigma in ESTIMATE_CASES)
    print(f"| VC | cluster | tiresias | suanli, no estimates | {head} | srtf, 100% σ 1 |")
    print("|---|---|---|---|" + "---|" * (len(ESTIMATE_CASES) + 1))
    worst_oracle = [0.0] * len(ESTIMATE_CASES)
    worst_tiresias = [0.0] * len(ESTIMATE_CASES)
    for vc in vcs or sorted(sizes):
        trace = load_trace(philly, vc=vc)
        nodes = parse_cluster(f"{sizes[vc]}x4")

        def jct(jobs: list, name: str, nodes: list = nodes) -> float:
            return summarize(simulate(jobs, nodes, get_policy(name), skip_invalid=True)).avg_jct_s

        oracle, tiresias = jct(trace.jobs, "srtf-oracle"), jct(trace.jobs, "tiresias")
        cells = [f"{tiresias / oracle:.3f}", f"{jct(trace.jobs, 'suanli') / oracle:.3f}"]
        for k, (share, sigma) in enumerate(ESTIMATE_CASES):
            x = jct(with_user_estimates(trace.jobs, sigma, share), "suanli")
            worst_oracle[k] = max(worst_oracle[k], x / oracle)
            worst_tiresias[k] = max(worst_tiresias[k], x / tiresias)
            cells.append(f"{x / oracle:.3f} ({x / tiresias:.3f})")
        cells.append(f"{jct(with_user_estimates(trace.jobs, 1.0), 'srtf') / oracle:.3f}")
        print(f"| {vc} | {sizes[vc]}x4 | " + " | ".join(cells) + " |", flush=True)
    for k, (share, sigma) in enumerate(ESTIMATE_CASES):
        print(
            f"\n{share:.0%} of jobs with estimates, σ {sigma:g}: worst suanli/oracle {worst_oracle[k]:.3f}, "
            f"worst suanli/tiresias {worst_tiresias[k]:.3f}",
            end="",
        )
    print("\n")


def versus(vcs: list[str] | None) -> None:
    """suanli's default against the faithful tiresias on every VC, with both placements."""
    traces = shared_data() / "traces"
    sizes = vc_sizes(traces)
    philly = str(traces / "pollux" / "philly.csv")
    print("## Default against Tiresias: Philly VCs, preemption cost 0, count and consolidated placement\n")
    print("| VC | cluster | tiresias, count (s) | suanli / tiresias, count | tiresias, consolidated (s) "
          "| suanli / tiresias, consolidated |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for vc in vcs or sorted(sizes):
        trace = load_trace(philly, vc=vc)
        nodes = parse_cluster(f"{sizes[vc]}x4")
        cells = []
        for placement in ("count", "consolidated"):
            jct = {
                name: summarize(
                    simulate(
                        trace.jobs,
                        nodes,
                        get_policy(name, consolidate=placement != "count"),
                        placement=placement,
                        skip_invalid=True,
                    )
                ).avg_jct_s
                for name in ("tiresias", "suanli")
            }
            worst = max(worst, jct["suanli"] / jct["tiresias"])
            cells += [f"{jct['tiresias']:,.0f}", f"{jct['suanli'] / jct['tiresias']:.4f}"]
        print(f"| {vc} | {sizes[vc]}x4 | " + " | ".join(cells) + " |", flush=True)
    print(f"\nworst suanli/tiresias {worst:.4f}\n")


ALIBABA_POLICIES = ["fifo", "tiresias", "suanli", "srtf-oracle"]
ALIBABA_TRACE = "alibaba/gpu-v2023/openb_pod_list_default.csv"


def alibaba(cluster: str = "2x8") -> None:
    traces = shared_data() / "traces"
    trace = load_trace(str(traces / ALIBABA_TRACE))
    nodes = parse_cluster(cluster)
    print(
        f"## Alibaba GPU trace 2023: {len(trace.jobs):,} scheduled GPU pods on {cluster}, QoS class as user\n"
    )
    print("| policy | avg JCT (h) | Jain over users | avg JCT / suanli's | mean slowdown per user |")
    print("|---|---|---|---|---|")
    rows = []
    for name in ALIBABA_POLICIES:
        result = simulate(trace.jobs, nodes, get_policy(name), skip_invalid=True)
        rows.append((name, summarize(result), user_slowdowns(result)))
    ours = next(s for n, s, _ in rows if n == "suanli").avg_jct_s
    for name, s, slow in rows:
        per_user = ", ".join(f"{u} {v:,.1f}" for u, v in sorted(slow.items()))
        jct = s.avg_jct_s
        print(f"| {name} | {jct / 3600:,.1f} | {s.jain_fairness:.3f} | {jct / ours:.3f} | {per_user} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only",
        choices=["fidelity", "quality", "hetero", "speed", "bound", "estimates", "alibaba", "versus"],
    )
    ap.add_argument("--preemption-cost", type=float, default=0.0)
    ap.add_argument("--vc", action="append", help="only these VCs (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=100_000)
    args = ap.parse_args()
    if args.only in (None, "fidelity"):
        fidelity()
    if args.only in (None, "quality"):
        quality(args.preemption_cost, args.vc)
    if args.only in (None, "hetero"):
        hetero()
    if args.only in (None, "speed"):
        speed(args.repeat, args.jobs)
    if args.only in (None, "bound"):
        bound(args.vc)
    if args.only in (None, "estimates"):
        estimates(args.vc)
    if args.only in (None, "versus"):
        versus(args.vc)
    if args.only in (None, "alibaba"):
        alibaba()


if __name__ == "__main__":
    main()
