"""`suanli serve`: an inference service whose answers are a vote of model replicas on different owners'
nodes. Parse, one library call, print. The driver is imported inside the command so that `suanli --help`
stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from suanli.cli.output import emit_json, err, out, safe
from suanli.cli.state import client
from suanli.core.errors import BadInput


def serve(
    ensemble_file: Annotated[
        Path | None,
        typer.Argument(help="The ensemble file (YAML): replicas, their nodes and models, the vote."),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Submit and print the jobs; do not wait until the service answers."),
    ] = False,
    down: Annotated[
        str | None,
        typer.Option("--down", metavar="NAME", help="Stop the service NAME: its front and replicas."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Voting inference: a front answers each request by the majority or weighted soft vote of model
    replicas on the pool's nodes, says how many agreed, and drops replicas that time out or disagree
    persistently. The service runs as suanli jobs until `suanli serve --down NAME`; see docs/serving.md.
    """
    from suanli.serve import driver

    if down is not None:
        if ensemble_file is not None:
            raise BadInput("--down", down, "takes no ENSEMBLE_FILE", hint=f"suanli serve --down {down}")
        ids = driver.down(down, client())
        if as_json:
            emit_json({"name": down, "cancelled": ids})
        else:
            out.print(f"{safe(down)}: stopped jobs {', '.join(map(str, ids))}")
        return
    if ensemble_file is None:
        raise BadInput("ENSEMBLE_FILE", "", "is required (or --down NAME)", hint="see `suanli serve --help`")
    from suanli.serve.spec import load_ensemble_spec

    spec = load_ensemble_spec(ensemble_file)
    jobs = driver.prepare(spec, client())  # every check, before anything is stored
    if detach or as_json:
        result = driver.start(spec, client=client(), jobs=jobs, wait=not detach)
    else:
        with err.status(f"starting {len(spec.replicas)} replicas and the front of {safe(spec.name)}"):
            result = driver.start(spec, client=client(), jobs=jobs)
    if as_json:
        emit_json(result.to_json())
        return
    from suanli.cli.tables import Column, print_table, print_wrapped

    columns = [Column("replica"), Column("node"), Column("model"), Column("weight", "right"),
               Column("job", "right"), Column("address", drop=1)]  # fmt: skip
    rows = [[safe(r["name"]), safe(r["node"] or "-"), safe(r["model"]), f"{r['weight']:g}", str(r["job_id"]),
             safe(r["address"])] for r in result.replicas]  # fmt: skip
    print_table(out, f"ensemble {safe(result.name)}: {spec.vote} vote", columns, rows)
    where = f"{result.state}: POST {result.endpoint}/predict, GET {result.endpoint}/status"
    print_wrapped(
        out, f"{where} (front: job {result.front_job_id}); stop with suanli serve --down {result.name}"
    )
