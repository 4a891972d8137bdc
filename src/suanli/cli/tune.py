"""`suanli tune`: hyper-parameter search whose trials are suanli jobs. Parse, one library call, print.

The driver (and Optuna) are imported inside the command so that `suanli --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from suanli.cli.output import emit_json, err, out
from suanli.cli.state import client

if TYPE_CHECKING:
    from suanli.tune.driver import TuneResult

STOPPED = {
    "trials": "all {trials} trials finished",
    "budget": "the device-hour budget was spent ({used:.4g} of {budget:g} device-hours)",
    "interrupted": "interrupted (Ctrl-C): running trial jobs were cancelled",
}


def tune(
    tune_file: Annotated[Path, typer.Argument(help="The tune file (YAML): job, objective, params, ...")],
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (resume by reusing one); overrides the file.")
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", help="Trials in the study in all; overrides the file.")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", help="Trials running at once, at most; overrides the file.")
    ] = None,
    budget_device_hours: Annotated[
        float | None,
        typer.Option("--budget-device-hours", help="Stop starting trials once this many are used."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Search hyper-parameters: an Optuna study whose trials run as suanli jobs, with pruning and a budget.

    Trials get their parameters as SUANLI_PARAM_<NAME> and as {{name}} in the job's run command.
    The study lives in suanli's database; rerun with the same study name to resume it.
    """
    from suanli.tune import load_tune_spec
    from suanli.tune.driver import tune as run_study

    overrides = {"study": study, "trials": trials, "parallel": parallel}
    overrides["budget_device_hours"] = budget_device_hours
    spec = load_tune_spec(tune_file, overrides=overrides)
    result = _with_progress(lambda on_progress: run_study(spec, client=client(), on_progress=on_progress))
    if as_json:
        emit_json(result.to_json())
    else:
        _print(result, spec.trials)
    if result.stopped_because == "interrupted":
        raise typer.Exit(130)


def _with_progress(call):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("tune", total=None, note="")

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            best = "-" if p.best_value is None else f"{p.best_value:.4g}"
            note = f"running {p.running}, best {best}, {p.device_hours_used:.3g} device-h"
            bar.update(task, total=p.total, completed=p.done, note=note)

        return call(on_progress)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _print(result: TuneResult, trials: int) -> None:
    from suanli.cli.tables import Column, print_table, print_wrapped

    columns = [
        Column("trial", "right"),
        Column("job", "right"),
        Column("params", wrap=True, min_width=20),
        Column(result.metric, "right"),
        Column("state", wrap=True, min_width=12),
        Column("device-h", "right", drop=1),
    ]
    rows = []
    for t in result.trials:
        state = t.state if not t.reason or t.state == "COMPLETE" else f"{t.state} ({t.reason})"
        marker = " *" if result.best is not None and t.number == result.best.number else ""
        rows.append(
            [
                f"{t.number}{marker}",
                "-" if t.job_id is None else str(t.job_id),
                _params(t.params),
                _fmt(t.value),
                state,
                f"{t.device_hours:.4f}",
            ]
        )
    print_table(out, f"study {result.study}: {result.metric} ({result.direction})", columns, rows)
    if result.best is not None:
        print_wrapped(
            out,
            f"best: trial {result.best.number}, {result.metric}={_fmt(result.best.value)}, "
            f"{_params(result.best.params)}",
        )
    else:
        out.print("best: none (no trial finished with a value)")
    why = STOPPED[result.stopped_because].format(
        trials=trials, used=result.device_hours_used, budget=result.budget_device_hours or 0
    )
    print_wrapped(
        out, f"stopped: {why}; {result.device_hours_used:.4f} device-hours used, parallel {result.parallel}"
    )
