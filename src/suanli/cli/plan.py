"""`suanli plan`: parse flags, one library call (plan or plan_portfolio), print a table or one JSON document.

The planner, numpy, scipy and matplotlib are imported inside the command so `suanli --help` stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from suanli.cli import workload as W


def plan(
    job: Path | None = typer.Argument(None, help="A job.yaml with a `workload:` block (flags override it)."),
    params: W.Params = None,
    layers: W.Layers = None,
    hidden: W.Hidden = None,
    heads: W.Heads = None,
    kv_heads: W.KvHeads = None,
    ffn_hidden: W.FfnHidden = None,
    vocab: W.Vocab = None,
    seq_len: W.SeqLen = None,
    experts: W.Experts = None,
    experts_per_token: W.ExpertsPerToken = None,
    active_params: W.ActiveParams = None,
    model: W.Model = None,
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens, e.g. 1T or 2e12."),
    steps: int | None = typer.Option(None, "--steps"),
    batch: int | None = typer.Option(
        None, "--batch", help="Training: global batch; serving: concurrent sequences."
    ),
    precision: str | None = typer.Option(
        None, "--precision", help="bf16 (default), fp16, fp8, fp32; serving int8/int4."
    ),
    tp: int | None = typer.Option(
        None, "--tp", help="Fix tensor parallelism (else searched per device count)."
    ),
    pp: int | None = typer.Option(None, "--pp"),
    zero: int | None = typer.Option(None, "--zero"),
    recompute: str | None = typer.Option(None, "--recompute"),
    network_gbps: float | None = typer.Option(None, "--network-gbps", help="Inter-node Gb/s per device."),
    infer: bool = typer.Option(False, "--infer", help="Plan a serving workload instead of training."),
    tokens_per_second: str | None = typer.Option(
        None, "--tokens-per-second", help="Serving: output tokens/s, e.g. 5000 or 5k."
    ),
    duration: str | None = typer.Option(None, "--duration", help='Serving: how long it runs, e.g. "30d".'),
    prompt_tokens: int | None = typer.Option(None, "--prompt-tokens"),
    output_tokens: int | None = typer.Option(None, "--output-tokens"),
    deadline: str | None = typer.Option(None, "--deadline", help='Finish within, e.g. "30d" or "36h".'),
    budget: str | None = typer.Option(
        None, "--budget", help='Most USD to spend, e.g. 250000, 250k or "$1.5M".'
    ),
    providers: str | None = typer.Option(None, "--providers", help="Comma-separated, e.g. lambda,runpod."),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated region names."),
    accelerators: str | None = typer.Option(
        None, "--accelerators", help="Comma-separated, e.g. H100,A100-80GB."
    ),
    modes: str | None = typer.Option(
        None, "--modes", help="on-demand,spot,reserved-1y,reserved-3y,marketplace,owned,edge"
    ),
    max_gpus: int = typer.Option(512, "--max-gpus", help="Most devices in one option."),
    min_gpus: int = typer.Option(1, "--min-gpus"),
    spot: bool | None = typer.Option(
        None, "--spot/--no-spot", help="Only spot / no spot (default: consider it)."
    ),
    objective: str = typer.Option("cost", "--objective", help="cost, time, energy or carbon."),
    utilisation: float | None = typer.Option(
        None,
        "--utilisation",
        help="Share of a reserved/owned term other work uses (default: the job pays it all).",
    ),
    interruption_per_month: float | None = typer.Option(
        None, "--interruption-per-month", help="Spot: share of instances reclaimed per month (default 0.2)."
    ),
    checkpoint_minutes: float | None = typer.Option(
        None, "--checkpoint-minutes", help="Spot: time to write one."
    ),
    restart_minutes: float = typer.Option(
        10.0, "--restart-minutes", help="Spot: restart after an interruption."
    ),
    max_miss: float = typer.Option(0.1, "--max-miss", help="Spot: largest accepted P(miss deadline)."),
    pue: float | None = typer.Option(None, "--pue"),
    region: str = typer.Option("world", "--region", help="Grid for CO2, e.g. world, france, china."),
    grid_gco2_per_kwh: float | None = typer.Option(None, "--grid-gco2-per-kwh"),
    offers: list[Path] | None = typer.Option(
        None, "--offers", help="Your offers / owned hardware (YAML or CSV)."
    ),
    top: int = typer.Option(15, "--top", help="Options shown (plus the whole Pareto front)."),
    horizon: str | None = typer.Option(
        None, "--horizon", help='Portfolio horizon, e.g. "12mo" (needs --demand).'
    ),
    demand: Path | None = typer.Option(None, "--demand", help="Portfolio: monthly GPU-hours YAML."),
    spot_share: float | None = typer.Option(None, "--spot-share", help="Portfolio: most demand on spot."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a PNG/SVG: cost vs time, or cumulative cost."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """The cheapest way to get a workload done by its deadline: on-demand, spot, reserved, rental, owned."""
    from suanli.cli.catalog import user_catalog
    from suanli.cli.output import emit_json, err
    from suanli.core.errors import BadInput

    if plot is not None:
        from suanli.plan.plot import plot_target

        plot_target(plot)
    if spot_share is not None and demand is None:
        raise BadInput("spot_share", spot_share, "applies to portfolio planning: use it with --demand")
    catalog = user_catalog(offers)
    if demand is not None or horizon is not None:
        if demand is None:
            raise BadInput("demand", None, "is needed with --horizon (monthly GPU-hours YAML)")
        from suanli.plan import plan_portfolio

        pf = plan_portfolio(
            demand, horizon=horizon, catalog=catalog, providers=_split(providers), spot_share=spot_share
        )
        if plot is not None:
            from suanli.plan.plot import plot_portfolio

            plot_portfolio(pf, plot)
            err.print(f"wrote {plot}")
        if as_json:
            emit_json(pf.to_json())
        else:
            _print_portfolio(pf)
        return
    flags = {
        "model": model,
        "params": params,
        "tokens": tokens,
        "steps": steps,
        "batch": batch,
        "seq_len": seq_len,
        "precision": precision,
        "tp": tp,
        "pp": pp,
        "zero": zero,
        "recompute": recompute,
        "network_gbps": network_gbps,
        "tokens_per_second": tokens_per_second,
        "duration": duration,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        **W.arch_flags(
            layers, hidden, heads, kv_heads, ffn_hidden, vocab, experts, experts_per_token, active_params
        ),
    }
    wl, job_accels = _workload(job, {k: v for k, v in flags.items() if v is not None}, infer)
    from suanli.plan import plan as run_plan

    p = run_plan(
        wl,
        progress=err.print,
        catalog=catalog,
        deadline=deadline,
        budget=budget,
        providers=providers,
        regions=regions,
        accelerators=accelerators or (",".join(job_accels) if job_accels else None),
        modes=modes,
        max_gpus=max_gpus,
        min_gpus=min_gpus,
        spot=spot,
        objective=objective,
        utilisation=utilisation,
        interruption_per_month=interruption_per_month,
        checkpoint_minutes=checkpoint_minutes,
        restart_minutes=restart_minutes,
        max_miss_probability=max_miss,
        pue=pue,
        region=region,
        grid_gco2_per_kwh=grid_gco2_per_kwh,
        top=top,
    )
    if plot is not None:
        from suanli.plan.plot import plot_plan

        plot_plan(p, plot)
        err.print(f"wrote {plot}")
    if as_json:
        emit_json(p.to_json())
    else:
        _print_plan(p)


def _workload(
    job: Path | None, flags: dict[str, Any], infer: bool
) -> tuple[dict[str, Any], list[str] | None]:
    """The workload to plan and the job file's accelerators: the file's `workload:` block with each flag
    given overriding its field; the flags alone when the file has no block."""
    from suanli.core.errors import BadInput

    wl: dict[str, Any] = {}
    job_accels: list[str] | None = None
    if job is not None:
        from suanli.jobs.spec import load_spec

        spec = load_spec(job)
        if spec.workload is None and not flags:
            raise BadInput(
                "workload",
                "",
                "the job file has no `workload:` block",
                hint="add one, or pass --params/--model with --tokens",
                source=str(job),
            )
        wl = spec.workload.to_dict() if spec.workload else {}
        if isinstance(wl.get("model"), str) and not Path(wl["model"]).is_absolute():
            wl["model"] = str(Path(job).parent / wl["model"])
        job_accels = list(spec.resources.accelerators) or None
    wl.update(flags)
    if infer:
        wl["kind"] = "infer"
    if wl.get("kind", "train") == "infer":
        for k in ("tokens", "steps", "seq_len", "tp", "pp", "zero", "recompute", "network_gbps"):
            wl.pop(k, None)
    else:
        for k in ("tokens_per_second", "duration", "prompt_tokens", "output_tokens"):
            if k in wl:
                raise BadInput(k, wl[k], "is a serving field: add --infer (or kind: infer) to plan a service")
    return wl, job_accels


def _split(v: str | None) -> list[str] | None:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def _layout(d: dict) -> str:
    if "replicas" in d:
        return f"tp{d['tp']}x{d['replicas']}"
    return f"{d.get('tp')}/{d.get('pp')}/{d.get('dp')}/z{d.get('zero')}"


def _short_risk(o: Any, limit: int = 26) -> str:
    """The first risk's first clause, cut at a word to `limit` characters (the JSON has them all)."""
    if o.mode == "spot" and o.p_miss is not None:
        return f"P(miss) {o.p_miss:.0%}"
    if not o.risk:
        return ""
    text = re.split(r"[,;(]", o.risk[0].split(":", 1)[-1], maxsplit=1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _hardware(o: Any) -> str:
    """ "8x8 H100": instances x devices per instance; one number when it is one instance or one device."""
    if o.instances == 1 or o.instances == o.devices:
        return f"{o.devices}x {o.accelerator}"
    return f"{o.instances}x{o.devices // o.instances} {o.accelerator}"


def _print_plan(p: Any) -> None:
    from suanli.cli.output import out
    from suanli.cli.tables import Column, print_table, print_wrapped

    energy_first = p.objective in ("energy", "carbon")
    columns = [
        Column("#", "right"),
        Column("provider"),
        Column("devices"),
        Column("mode"),
        Column("days", "right"),
        Column("USD", "right"),
        Column("kWh", "right", drop=0 if p.objective == "energy" else 4),
        Column("kg CO2", "right", drop=0 if p.objective == "carbon" else 3),
        Column("tp/pp/dp/z", drop=2),
        Column("risk", wrap=True, min_width=26, drop=5 if energy_first else 1),
        Column("instance type", drop=6),
    ]
    rows, styles = [], []
    for i, o in enumerate(p.shown(), 1):
        rows.append(
            [
                f"{i}{'*' if o.pareto else ''}",
                o.provider,
                _hardware(o),
                o.mode,
                f"{o.wall_hours / 24:.1f}",
                _num(o.cost_usd),
                _num(o.energy_kwh),
                _num(o.co2_kg),
                _layout(o.layout),
                _short_risk(o),
                o.instance_type,
            ]
        )
        styles.append("bold green" if o is p.recommended else None)
    title = f"suanli plan: {p.workload} (objective: {p.objective})"
    print_table(out, title, columns, rows, styles=styles)
    print_wrapped(
        out,
        f"{len(p.options)} feasible of {len(p.all_options)} options evaluated; * = Pareto front (cost vs "
        "time); devices: instances x devices per instance",
    )
    print_wrapped(out, p.explanation)
    out.print("[bold]Assumptions[/bold]")
    for a in p.assumptions:
        print_wrapped(out, a, indent="  - ", hang="    ")


def _print_portfolio(pf: Any) -> None:
    from suanli.cli.output import out
    from suanli.cli.tables import Column, print_table, print_wrapped

    columns = [
        Column("month", "right"),
        Column("demand\nGPU-h", "right"),
        Column("peak\nGPUs", "right"),
        Column("owned\nGPUs", "right"),
        Column("rsvd\nGPUs", "right"),
        Column("owned\nGPU-h", "right"),
        Column("rsvd\nGPU-h", "right"),
        Column("on-dem.\nGPU-h", "right"),
        Column("spot\nGPU-h", "right"),
        Column("USD", "right"),
    ]
    rows = [
        [
            str(m["month"]),
            _num(m["demand_gpu_hours"]),
            _num(m["peak_gpus"]),
            str(m["owned_gpus"]),
            str(m["reserved_gpus"]),
            _num(m["owned_gpu_hours"]),
            _num(m["reserved_gpu_hours"]),
            _num(m["on_demand_gpu_hours"]),
            _num(m["spot_gpu_hours"]),
            _num(m["cost_usd"]),
        ]
        for m in pf.monthly
    ]
    title = f"suanli plan --horizon {pf.horizon_months}mo: {pf.accelerator} (rsvd = reserved)"
    print_table(out, title, columns, rows)
    print_wrapped(
        out,
        f"total {_num(pf.total_cost_usd)} USD (after the horizon: {_num(pf.committed_after_horizon_usd)}); "
        f"all-rent {_num(pf.all_rent_cost_usd)}; all-buy {_num(pf.all_buy_cost_usd)}; break-even utilisation "
        f"for buying {_num(pf.break_even_utilisation, '{:.0%}')}",
    )
    print_wrapped(out, pf.explanation)
    for a in pf.assumptions:
        print_wrapped(out, a, indent="  - ", hang="    ")
