"""`suanli simulate`: replay a job trace on a described cluster under one or more policies.

Parse, one library call per policy, print. The simulator package is imported inside the command so
that `suanli --help` stays fast."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer

from suanli.cli.output import seconds
from suanli.core.errors import BadInput

# (header, summary field, format, drop order at narrow widths: 0 never, highest first)
TABLE_COLUMNS = (
    ("policy", "policy", None, 0),
    ("jobs", "jobs", None, 0),
    ("avg\nJCT", "avg_jct_s", "time", 0),
    ("median\nJCT", "median_jct_s", "time", 4),
    ("p95\nJCT", "p95_jct_s", "time", 1),
    ("p99\nJCT", "p99_jct_s", "time", 5),
    ("avg\nqueue", "avg_queue_s", "time", 0),
    ("makespan", "makespan_s", "time", 3),
    ("GPU\nutil", "utilization", "pct", 0),
    ("Jain", "jain_fairness", "ratio", 2),
    ("worst user\nslowdown", "worst_user_slowdown", "ratio", 0),
    ("preempt-\nions", "preemptions", None, 0),
)


def _policy_names(policy: str | None, compare: str | None) -> list[str]:
    from suanli.schedule.policies import DEFAULT_POLICY, get_policy

    names = [policy] if policy else []
    if compare:
        names += [c.strip() for c in compare.split(",") if c.strip()]
    if not names:
        names = [DEFAULT_POLICY]
    names = list(dict.fromkeys(names))
    for name in names:
        get_policy(name)  # unknown names fail here, before the trace is read, listing the known ones
    return names


def _row(summary: object) -> list[str]:
    row = []
    for _, key, kind, _ in TABLE_COLUMNS:
        value = getattr(summary, key)
        if kind == "time":
            row.append(seconds(value))
        elif kind == "pct":
            row.append(f"{100 * value:.1f}%")
        elif kind == "ratio":
            row.append(f"{value:.3f}")
        else:
            row.append(str(value))
    return row


def simulate(
    trace: str = typer.Option(
        ...,
        "--trace",
        help="Trace: generic, Tiresias or Philly CSV, Gavel .trace, Alibaba 2023 pod list; or synthetic:N.",
    ),
    cluster: str = typer.Option(
        ..., "--cluster", help="NODESxGPUS[xTYPE][,...] such as 16x4 or 16x8xA100,8x4xV100, or a YAML file."
    ),
    policy: str | None = typer.Option(None, "--policy", help="Policy to replay (default: suanli's default)."),
    compare: str | None = typer.Option(None, "--compare", help="More policies to compare, comma-separated."),
    preemption_cost: float = typer.Option(
        0.0,
        "--preemption-cost",
        help="Seconds a preempted job spends restoring when it restarts (0 as in published simulators).",
    ),
    placement: str = typer.Option(
        "consolidated",
        "--placement",
        help="consolidated (fewest nodes; default), fewest (best effort), or count.",
    ),
    trace_format: str = typer.Option(
        "auto", "--format", help="auto, generic, tiresias, philly, gavel or alibaba."
    ),
    vc: str | None = typer.Option(None, "--vc", help="Philly virtual cluster to keep (philly.csv), or all."),
    throughputs: Path | None = typer.Option(
        None, "--throughputs", help="Gavel throughput JSON: per-job speed on each GPU type (heterogeneity)."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="List and skip invalid jobs instead of stopping."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Replay only the first N jobs."),
    seed: int = typer.Option(0, "--seed", help="Seed for synthetic traces (results are deterministic)."),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON document and nothing else on stdout."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Folder for JCT CDF and utilisation plots (PNG)."),
) -> None:
    """Replay a job trace on a cluster and compare scheduling policies: JCT, queueing, utilisation,
    preemptions and fairness."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from suanli.schedule.simulate import (
        PLACEMENTS,
        load_throughputs,
        load_trace,
        parse_cluster,
        replay_policy,
        summarize,
        utilization_series,
    )
    from suanli.schedule.simulate import simulate as replay
    from suanli.schedule.simulate.engine import invalid_jobs, job_requests

    if placement not in PLACEMENTS:
        raise BadInput("placement", placement, f"must be one of {', '.join(PLACEMENTS)}")
    if not 0 <= preemption_cost < math.inf:
        raise BadInput("preemption-cost", preemption_cost, "must be a finite number of seconds >= 0")
    if limit is not None and limit < 1:
        raise BadInput("limit", limit, "must be >= 1")
    if plot is not None and plot.exists() and not plot.is_dir():
        raise BadInput("plot", str(plot), "must be a folder (the JCT CDF and utilisation PNGs go in it)")
    names = _policy_names(policy, compare)
    nodes = parse_cluster(cluster)
    table = load_throughputs(throughputs) if throughputs else None
    loaded = load_trace(
        trace, fmt=trace_format, vc=vc, throughputs=table, seed=seed, gpus_total=sum(n.gpus for n in nodes)
    )
    jobs = loaded.jobs[:limit] if limit else loaded.jobs
    _, bad_fit = job_requests(jobs, nodes, placement)
    bad = loaded.invalid + bad_fit
    if bad and not skip_invalid:
        raise invalid_jobs(bad, loaded.source)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if bad:
        err.print(f"skipped {len(bad)} invalid job(s):")
        for line in bad:
            err.print(f"  {line}")
    if not jobs:
        raise BadInput("trace", loaded.source, "has no valid jobs to replay")

    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} jobs"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        for name in names:
            task = bar.add_task(name, total=len(jobs))
            result = replay(
                jobs,
                nodes,
                replay_policy(name, placement, preemption_cost),
                preemption_cost_s=preemption_cost,
                placement=placement,
                skip_invalid=True,
                progress=lambda done, total, task=task: bar.update(task, completed=done, total=total),
            )
            results.append(result)
    summaries = [summarize(r) for r in results]
    plots = []
    if plot is not None:
        from suanli.schedule.simulate.plot import plot_results

        plots = [str(p) for p in plot_results(results, plot)]

    if json_out:
        doc = {
            "trace": loaded.source,
            "cluster": cluster,
            "gpus": sum(n.gpus for n in nodes),
            "nodes": len(nodes),
            "placement": placement,
            "preemption_cost_s": preemption_cost,
            "skipped": bad,
            "policies": [
                {
                    **s.as_dict(),
                    "utilization_over_time": [[round(t, 1), round(u, 4)] for t, u in utilization_series(r)],
                }
                for s, r in zip(summaries, results, strict=True)
            ],
            "plots": plots,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return

    from suanli.cli.tables import Column, print_table

    out = Console(highlight=False)
    title = f"{loaded.source} on {cluster} ({sum(n.gpus for n in nodes)} GPUs), placement={placement}"
    if preemption_cost:
        title += f", preemption cost {preemption_cost:g} s"
    columns = [Column(h, "left" if key == "policy" else "right", drop=d) for h, key, _, d in TABLE_COLUMNS]
    print_table(out, title, columns, [_row(s) for s in summaries])
    for p in plots:
        out.print(f"wrote {p}")
