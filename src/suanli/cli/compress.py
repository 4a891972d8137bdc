"""`suanli compress`: parse, one library call (suanli.compress.compress), print."""

from __future__ import annotations

from typing import Annotated

import typer

# The report's columns as shown: a shorter two-line header and the order they are left out at narrow
# widths (0: never; the highest goes first).
_COLUMNS: dict[str, tuple[str, int]] = {
    "params": ("params", 3),
    "b1 p50/p95 ms": ("b1 p50/p95\nms", 0),
    "b32 /s": ("b32\n/s", 2),
    "quality val": ("quality\nval", 4),
    "quality held-out": ("quality held-out", 0),
    "cosine to original": ("cosine to\noriginal", 1),
}
_WRAP = {"candidate": 16, "status": 13}  # long recipe names and errors fold down to these widths


def compress(
    model: Annotated[
        str,
        typer.Argument(
            help="file.py:factory or module:factory, a saved .pt module, a model directory, or .onnx."
        ),
    ],
    task: Annotated[
        str,
        typer.Option(
            help="classification, similarity (Spearman), fidelity (cosine to the original) or mod:fn."
        ),
    ],
    eval_data: Annotated[
        str, typer.Option("--eval", help="Evaluation data: .npz (x, y) or .csv/.tsv sentence pairs.")
    ],
    calib: Annotated[
        str | None, typer.Option(help="Calibration / distillation data (never used to judge quality).")
    ] = None,
    holdout: Annotated[
        str | None, typer.Option(help="Held-out data to verify the budget (default: half of --eval).")
    ] = None,
    budget: Annotated[
        str, typer.Option(help="Quality loss allowed: 1% (relative) or 1pt (absolute).")
    ] = "1%",
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma list: int8-dynamic,int8-static,int8-weight,int4-weight,prune:0.3,distill:layers=3; "
            "'+' chains (distill:layers=3+int8-dynamic)."
        ),
    ] = None,
    target: Annotated[str, typer.Option(help="Hardware measured on: cpu or cuda.")] = "cpu",
    runtime: Annotated[str, typer.Option(help="Deployment runtime: auto (both), onnx or torch.")] = "auto",
    objective: Annotated[str, typer.Option(help="Pick the best by latency, throughput or size.")] = "latency",
    out: Annotated[str | None, typer.Option(help="Output directory (default: MODEL-compressed).")] = None,
    weights: Annotated[
        str | None, typer.Option(help="A state_dict to load into a factory-built model.")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for every measurement.")] = 2,
    repeats: Annotated[int, typer.Option(help="Timed batch-1 runs per candidate.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for the validation/held-out split and training.")] = 0,
    distill_epochs: Annotated[
        int | None,
        typer.Option(help="Epochs of distillation / pruning recovery (default: 2 text, 30 arrays)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Quantise, prune and distil a model to a quality budget, measured on the target hardware."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from suanli.compress import compress as run_compress

    err = Console(stderr=True, highlight=False)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # piped: no blank line before a one-line error
    ) as bar:
        job = bar.add_task("compress", total=None)
        report = run_compress(
            model,
            task=task,
            eval_data=eval_data,
            calib=calib,
            holdout=holdout,
            budget=budget,
            methods=methods,
            target=target,
            runtime=runtime,
            objective=objective,
            out=out,
            weights=weights,
            threads=threads,
            repeats=repeats,
            seed=seed,
            distill_epochs=distill_epochs,
            progress=lambda m: bar.update(job, description=m),
        )
    if json_out:
        import json
        import sys

        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    from suanli.cli.tables import Column, print_table, print_wrapped
    from suanli.compress.report import TABLE_HEADER, table_rows

    console = Console(highlight=False)
    title = f"suanli compress: {report['task']}, budget {report['budget']}, target {report['target']}"
    shown = [_COLUMNS.get(h, (h, 0)) for h in TABLE_HEADER]
    columns = [Column(h, drop=drop, wrap=h in _WRAP, min_width=_WRAP.get(h, 12)) for h, drop in shown]
    print_table(console, title, columns, table_rows(report))
    c = report["chosen_candidate"]
    print_wrapped(
        console,
        f"chosen: {c['name']} - {c['size_ratio']:.1f}x smaller, "
        f"{c['speedup_b1_vs_original']:.2f}x faster at batch 1, "
        f"{c['speedup_b32_vs_original']:.2f}x at batch 32 than the original; saved to {report['out_dir']}",
    )
