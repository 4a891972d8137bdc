"""`suanli`: the command-line entry point. Errors become one line on stderr and their exit code here."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from suanli.cli import catalog, cluster, compress, estimate, jobs, plan, simulate, tune
from suanli.cli.state import set_db
from suanli.core.errors import SuanliError

app = typer.Typer(
    name="suanli",
    help="suanli (算力): spend compute well. Run, queue and watch jobs on your pool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", envvar="SUANLI_DB_URL", help="Database URL (default: SQLite under SUANLI_HOME)."
        ),
    ] = None,
) -> None:
    set_db(db)


app.command()(jobs.run)
app.command()(jobs.submit)
app.command()(jobs.status)
app.command()(jobs.queue)
app.command()(jobs.logs)
app.command()(jobs.cancel)
app.command()(cluster.nodes)
app.add_typer(cluster.agent_app, name="agent")
app.add_typer(estimate.app, name="estimate")
app.command("plan")(plan.plan)
app.add_typer(catalog.app, name="catalog")
app.command("simulate")(simulate.simulate)
app.command("compress")(compress.compress)
app.command("tune")(tune.tune)


def main() -> None:
    """Usage errors are Typer's (exit 2); suanli's own errors print one line and exit with their code."""
    try:
        app()
    except SuanliError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
