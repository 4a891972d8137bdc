"""`suanli federate`: train across participants whose data stays where it is. Parse, one library call,
print. The driver is imported inside the command so that `suanli --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from suanli.cli.output import emit_json, err, out
from suanli.cli.state import client

if TYPE_CHECKING:
    from suanli.federate.driver import FederationResult

STOPPED = {
    "rounds": "all rounds ran",
    "target_accuracy": "the target accuracy was reached",
    "privacy_budget": "the next round would have exceeded the privacy budget",
}


def federate(
    fed_file: Annotated[
        Path, typer.Argument(help="The federation file (YAML): app, participants, strategy.")
    ],
    simulation: Annotated[
        bool,
        typer.Option(
            "--simulation",
            help="Run in Flower's simulation engine, as one job on the pool. Without it: a SuperLink, a "
            "SuperNode on each participant's node and the ServerApp, each a job.",
        ),
    ] = False,
    rounds: Annotated[
        int | None, typer.Option("--rounds", help="Rounds at most; overrides the file.")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Submit and print the job id; do not follow.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Federated learning on Flower: participants' data never leaves them; rounds are reported as they run.

    Strategies are Flower's (FedAvg, FedProx, FedAdam, Krum, Bulyan, ...) by name, with suanli's
    compute-aware client selection, robust aggregation and accounted differential privacy; see
    docs/federated.md.
    """
    from suanli.federate.driver import federate as run_federation
    from suanli.federate.driver import prepare
    from suanli.federate.spec import load_fed_spec

    spec = load_fed_spec(fed_file, overrides={"rounds": rounds})
    jobs = prepare(spec, client(), simulation=simulation)  # every check, before the progress bar shows
    if detach:
        result = run_federation(spec, client=client(), jobs=jobs, wait=False)
    else:
        result = _with_progress(
            spec.rounds, lambda on_round: run_federation(spec, client=client(), jobs=jobs, on_round=on_round)
        )
    if as_json:
        emit_json(result.to_json())
    else:
        _print(result)
    if result.state not in ("SUCCEEDED", "PENDING"):
        raise typer.Exit(1)


def _with_progress(total: int, call):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]rounds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(), console=err, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("federate", total=total, note="starting")

        def on_round(row: dict) -> None:
            note = f"accuracy {row.get('accuracy', float('nan')):.4f}"
            if "epsilon" in row:
                note += f", ε {row['epsilon']:.3g}"
            bar.update(task, completed=row["round"], note=note)

        return call(on_round)


def _print(result: FederationResult) -> None:
    from suanli.cli.tables import Column, print_table, print_wrapped

    if not result.rounds:
        print_wrapped(out, f"federation {result.name}: job {result.job_id} {result.state}")
        return
    columns = [
        Column("round", "right"), Column("accuracy", "right"), Column("loss", "right"),
        Column("clients", "right"), Column("late", "right", drop=2), Column("round s", "right", drop=1),
        Column("bytes", "right", drop=3), Column("ε", "right"),
    ]  # fmt: skip

    def cell(row: dict, key: str, fmt: str) -> str:
        return "-" if key not in row else format(row[key], fmt)

    rows = [
        [
            str(r["round"]), cell(r, "accuracy", ".4f"), cell(r, "loss", ".4f"),
            cell(r, "clients_used", ".0f"), cell(r, "clients_late", ".0f"), cell(r, "round_time_s", ".3f"),
            cell(r, "bytes", ",.0f"), cell(r, "epsilon", ".3g"),
        ]
        for r in result.rounds
    ]  # fmt: skip
    print_table(out, f"federation {result.name} (job {result.job_id}, {result.cpus:g} CPUs)", columns, rows)
    why = STOPPED.get(result.stopped_because or "", result.error or "the app's ServerApp returned")
    tail = f"; ε = {result.epsilon:.4g}" if result.epsilon is not None else ""
    saved = f"; model in {result.output}" if result.output else ""
    print_wrapped(out, f"{result.state}: {why}; accuracy {result.accuracy}{tail}{saved}")
