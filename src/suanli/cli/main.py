"""`suanli`: the command-line entry point. Every error a user can cause (a usage error Click finds while
parsing, or suanli's own) becomes one line on stderr and its exit code here, for all commands."""

from __future__ import annotations

import difflib
import errno
import itertools
import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from suanli.cli import (
    catalog,
    cluster,
    compress,
    estimate,
    federate,
    fuse,
    jobs,
    ledger,
    monitor,
    plan,
    serve,
    simulate,
    team,
    tune,
)
from suanli.cli.state import set_db
from suanli.core.errors import SuanliError, did_you_mean, printable

# Click's exception classes, wherever this Typer keeps them (vendored in new versions, click's in old).
_click_errors = sys.modules[typer.BadParameter.__module__]
UsageError: type[Exception] = _click_errors.UsageError
_NoArgsIsHelp: type[Exception] | None = getattr(_click_errors, "NoArgsIsHelpError", None)


def usage_line(e: Any, argv: Sequence[str] = ()) -> str:
    """One line for a Click usage error: `<field>: <what is wrong> (<hint>)`."""
    ctx = e.ctx
    path = ctx.command_path if ctx is not None else "suanli"
    if ctx is None or ctx.parent is None:  # raised by the parser before the subcommand's context
        words = [a for a in itertools.takewhile(lambda a: not a.startswith("-"), argv)]
        path = " ".join(["suanli", *words[:2]])
    where = f"see `{path} --help`"
    kind = type(e).__name__
    if kind == "NoSuchOption":
        near = _near_options(e.option_name, ctx)
        hint = f"did you mean {' or '.join(near)}?" if near else where
        return f"{e.option_name}: no such option ({hint})"
    param = getattr(e, "param", None)
    name = _param_name(param)
    if kind == "MissingParameter":
        return f"{name or 'argument'}: is required ({where})"
    if kind == "BadParameter" or (param is not None and kind != "UsageError"):
        return f"{name or 'value'}: {_plain(e.message)} ({where})"
    if kind == "BadOptionUsage":
        text = re.sub(r"^Option '[^']*' ", "", e.message)
        return f"{e.option_name}: {_plain(text)} ({where})"
    unknown = re.match(r"No such command '(.*)'\.", e.message, re.DOTALL)
    if unknown and ctx is not None:
        cmd = printable(unknown.group(1))
        commands = ctx.command.list_commands(ctx) if hasattr(ctx.command, "list_commands") else []
        near = did_you_mean(cmd, commands)
        hint = near.replace("did you mean: ", "did you mean ") if near else "known: " + ", ".join(commands)
        return f"{cmd}: no such command ({hint})"
    extra = re.match(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)", e.message, re.DOTALL)
    if extra:  # click < 8.5 gives the argument as typed: control characters are shown escaped
        return f"{printable(extra.group(1))}: unexpected extra argument ({where})"
    return f"{path}: {_plain(e.message)} ({where})"


def _near_options(name: str, ctx: Any) -> list[str]:
    """Options of the command in `ctx` whose names are near `name` (compared without the dashes)."""
    if ctx is None:
        return []
    opts = [
        o for p in ctx.command.get_params(ctx) for o in (*p.opts, *p.secondary_opts) if o.startswith("--")
    ]
    near = difflib.get_close_matches(name.lstrip("-").lower(), [o[2:] for o in opts], n=2, cutoff=0.6)
    return ["--" + n for n in near]


def _param_name(param: Any) -> str | None:
    if param is None:
        return None
    if getattr(param, "param_type_name", "") == "option" and param.opts:
        return max(param.opts, key=len)
    return (param.name or "").upper() or None


_TYPE_MESSAGES = (
    ("Input should be a valid integer", "must be a whole number"),
    ("Input should be a valid number", "must be a number"),
    ("Input should be a valid boolean", "must be true or false"),
)


_CLICK_TYPES = re.compile(r"^'.*' is not a valid (integer|float|boolean)")  # click < 8.5's wording
_CLICK_PLAIN = {
    "integer": "must be a whole number",
    "float": "must be a number",
    "boolean": "must be true or false",
}


def _plain(message: str) -> str:
    """Click's and Typer's messages in suanli's style: lower-case start, no full stop, one line."""
    for prefix, plain in _TYPE_MESSAGES:
        if message.startswith(prefix):
            return plain
    if m := _CLICK_TYPES.match(message):
        return _CLICK_PLAIN[m.group(1)]
    text = " ".join(message.split()).rstrip(".")
    return text[:1].lower() + text[1:]


def _raw_value(args: Sequence[str], name: str | None) -> str | None:
    """The value the user typed for option `name` (Click's type errors do not carry it)."""
    if not name or not name.startswith("-"):
        return None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


class SuanliGroup(TyperGroup):
    """The root command: parses with Click's standalone mode off and prints every error as one line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except SuanliError as e:
            return _fail(str(e), e.exit_code, standalone_mode, e)
        except UsageError as e:
            if _NoArgsIsHelp is not None and isinstance(e, _NoArgsIsHelp):
                e.show()  # type: ignore[attr-defined]  # `suanli estimate` alone: its help
                return _fail(None, 2, standalone_mode, e)
            line = usage_line(e, argv)
            value = _raw_value(argv, _param_name(getattr(e, "param", None)))
            if value is not None and type(e).__name__ == "BadParameter":
                name, _, rest = line.partition(": ")
                line = f"{name}={printable(value)}: {rest}"
            return _fail(line, 2, standalone_mode, e)
        except typer.Abort as e:
            return _fail("aborted", 1, standalone_mode, e)
        except IsADirectoryError as e:  # a safety net: readers name their field themselves
            return _fail(f"{e.filename}: is a directory, not a file", 2, standalone_mode, e)
        except OSError as e:
            if e.errno != errno.ENAMETOOLONG:
                raise
            name = str(e.filename)
            return _fail(f"{name[:40]}...: file name too long", 2, standalone_mode, e)
        except UnicodeDecodeError as e:
            line = f"input is not UTF-8 text (byte 0x{e.object[e.start]:02x} at byte offset {e.start})"
            return _fail(line, 2, standalone_mode, e)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


def _fail(line: str | None, code: int, standalone_mode: bool, error: BaseException) -> None:
    if not standalone_mode:
        raise error
    if line is not None:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(code)


app = typer.Typer(
    name="suanli",
    cls=SuanliGroup,
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
app.command()(monitor.top)
app.command()(monitor.report)
app.command()(monitor.alerts)
app.command()(cluster.nodes)
app.add_typer(cluster.agent_app, name="agent")
app.add_typer(estimate.app, name="estimate")
app.command("plan")(plan.plan)
app.add_typer(catalog.app, name="catalog")
app.command("simulate")(simulate.simulate)
app.command("compress")(compress.compress)
app.command("tune")(tune.tune)
app.command("federate")(federate.federate)
app.command("fuse")(fuse.fuse)
app.command("serve")(serve.serve)
app.command("server")(team.server)
app.command("login")(team.login)
app.command("logout")(team.logout)
app.add_typer(team.user_app, name="user")
app.add_typer(team.project_app, name="project")
app.add_typer(team.token_app, name="token")
app.add_typer(team.quota_app, name="quota")
app.command("audit")(team.audit)
app.add_typer(ledger.app, name="ledger")


def main() -> None:
    """Run the CLI; errors are printed by SuanliGroup.main as one line with their exit code."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
