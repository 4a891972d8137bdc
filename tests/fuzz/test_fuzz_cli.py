"""Fuzzing the CLI's arguments: generated argv lists built from the real command and option names
(discovered from the Click app) mixed with hostile tokens (numbers with suffixes, negatives, NaN, huge,
unicode, non-UTF-8 argv, empty, missing paths, a directory, a non-UTF-8 file), run in this process
through typer's CliRunner against suanli.cli.main.app. Every run ends with exit code 0, 1 or 2 and no
traceback; an error is one `error: ...` line, the last on stderr; `--json` prints one strict JSON
document.

Only commands that start nothing run with generated arguments (estimate, plan, catalog, simulate on small
synthetic traces, status/queue/logs/cancel/nodes on an empty store, agent status, run --dry-run); the
others (submit, tune, compress, agent start|stop) only with --help. Everything runs in a temporary
folder with its own SUANLI_HOME.

Seeded (derandomize=True) so CI is reproducible; benchmarks/bench_fuzz.py runs the same properties with
far more examples and a random seed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import typer.testing
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_spec import FUZZ, Known, regressions, tolerating

from jobhelpers import REPO
from suanli.cli import state
from suanli.cli.main import app
from suanli.core.errors import SuanliError

CALL_TIMEOUT_S = 60  # one command taking longer is a failure (a hang, or work out of all proportion)

# ---- the commands, from the Click app ---------------------------------------------------------------

ROOT = typer.main.get_command(app)


def _walk(command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:  # type: ignore[no-untyped-def]
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(ROOT))
GROUPS = [p for p, c in COMMANDS.items() if hasattr(c, "commands")]
LEAVES = {p: c for p, c in COMMANDS.items() if not hasattr(c, "commands")}
# These start the agent, run jobs or train models: only their --help is fuzzed. `run` runs with
# --dry-run, always given first.
HELP_ONLY = {
    ("submit",),
    ("tune",),
    ("compress",),
    ("agent", "start"),
    ("agent", "stop"),
    ("server",),
    ("login",),
    ("ledger", "witness"),
}
STARTS_WORK = {"run", "start", "stop"} | {name for path in HELP_ONLY for name in path if name != "agent"}
SAFE = sorted(p for p in LEAVES if p not in HELP_ONLY)
NAMES = sorted({name for path in COMMANDS for name in path})
ALL_OPTIONS = sorted(
    {o for c in COMMANDS.values() for p in c.params if p.param_type_name == "option" for o in p.opts}
)

# ---- values -----------------------------------------------------------------------------------------

# What argv can hold: any character but NUL; a byte that is not UTF-8 arrives as U+DC80..U+DCFF.
ARGV_CHAR = st.characters(codec=None, exclude_characters="\x00") | st.characters(
    min_codepoint=0xDC80, max_codepoint=0xDCFF
)
TEXT = st.text(ARGV_CHAR, max_size=12)
WORDS = st.sampled_from(
    ["", " ", "-", "--", "-x", "--x", "=", "true", "false", "none", "all", "auto", "x" * 300, "\udcff",
     "名字", "🚀", "\t", "a\nb", "\x1b[31m", "%s", "{}", "[bold]x[/]", "--help", "-h", "--json"]
)  # fmt: skip
NUMBERS = st.sampled_from(
    ["0", "1", "2", "-1", "7", "7e9", "7B", "70b", "300M", "250k", "1.4T", "1e12", "1e400", "-1e400", "nan",
     "NaN", "inf", "-inf", "1e-400", "0.0", "-0", "9" * 30, "9" * 5000, "1_000", "0x10", "1,5", "1.5.5",
     "½", "١٢٣", "７", "7 B", " 7", "7e9e9", "1/2", "0.5", "100", "1e6", "1e9"]
) | st.integers(min_value=-(2**70), max_value=2**70).map(str) | st.floats().map(str)  # fmt: skip
SUFFIXED = st.tuples(
    st.sampled_from(["0", "1", "2", "8", "-1", "0.5", "1e3", "1e30", "nan", "inf", "9" * 25]),
    st.sampled_from(["", "B", "b", "M", "k", "K", "T", "G", "GB", "GiB", "h", "d", "mo", "y", "s", "m",
                     "min", "w", "%", "x", "+", " ", "x4", "h100"]),
).map("".join)  # fmt: skip
DURATIONS = st.sampled_from(
    ["30d", "12mo", "2h", "90", "0d", "-1d", "1e400d", "P1D", "1y", "3y", "36mo", "0mo", "1mo", "mo", "d"]
)
ACCELERATORS = st.sampled_from(
    ["H100", "A100", "A100-80GB", "A100:8", "L4", "T4", "H1OO", "h100", "tpu-v5p-8", "A100:0", "A100:-1",
     "A100:1e9", "A100,H100", "MI300X", "Gaudi2"]
)  # fmt: skip
POLICY_NAMES = [
    "fifo",
    "backfill",
    "sjf",
    "sjf-oracle",
    "srtf",
    "tiresias",
    "drf",
    "priority",
    "gavel",
    "suanli",
]
POLICIES = st.sampled_from([*POLICY_NAMES, "fifx", "", ","]) | st.lists(
    st.sampled_from([*POLICY_NAMES, "", "x"]), min_size=1, max_size=4
).map(",".join)
CLUSTERS = st.sampled_from(
    ["2x4", "1x1", "1x8", "0x4", "2x0", "-1x4", "2x4xA100", "2x4xH1OO", "8x4,2x8xV100", "x", "2x", "4x",
     "sixteen", "2x4x", "1e3x4", "2.5x4", "2x4,", "@demand.yaml", "@dir", "@not-utf8.yaml"]
)  # fmt: skip
TRACES = st.sampled_from(
    ["synthetic:0", "synthetic:1", "synthetic:20", "synthetic:100", "synthetic:-1", "synthetic:x",
     "synthetic:", "synthetic", "synthetic:1e2", "synthetic:0x10", "@trace.csv", "@trace.csv",
     "@philly.csv", "@not-utf8.yaml", "@dir", "@empty", "@big", "/nonexistent.csv", ""]
)  # fmt: skip
# "@name" is a file in the fuzzing folder (see FILES); the folder is also the current one.
PATHS = st.sampled_from(
    ["@dir", "@not-utf8.yaml", "@utf16.yaml", "@empty", "@valid-job.yaml", "@bad-job.yaml", "@demand.yaml",
     "@trace.csv", "@offers.yaml", "@model.json", "@big", "@link-loop", "@\udcff.yaml", "@bad\njob.yaml",
     "/nonexistent/x",
     "missing.yaml", "/dev/null", "", "-", "@out"]
)  # fmt: skip
OUT_PATHS = st.sampled_from(
    ["@out/plot.png", "@out/plot.svg", "@out/plot.txt", "@out", "@out/new/plot.png", "/nonexistent/x.png",
     "@out/plots", "@dir"]
)  # fmt: skip
JOB_IDS = st.sampled_from(["1", "0", "-1", "2147483648", "99999999999999999999", "x", "1.5", "", "\udcff"])
GENERIC = st.one_of(NUMBERS, SUFFIXED, WORDS, TEXT, PATHS, ACCELERATORS, DURATIONS)

OPTION_VALUES: dict[str, st.SearchStrategy] = {
    "--trace": TRACES,
    "--cluster": CLUSTERS,
    "--policy": POLICIES,
    "--compare": POLICIES,
    "--placement": st.sampled_from(["consolidated", "fewest", "count", "x", ""]),
    "--format": st.sampled_from(["auto", "generic", "tiresias", "philly", "gavel", "x", ""]),
    "--vc": st.sampled_from(["all", "103959", "x", ""]) | TEXT,
    "--limit": st.sampled_from(["0", "1", "5", "-1", "x", "9" * 30]),
    "--seed": st.sampled_from(["0", "1", "-1", "x", "9" * 30, "1e3"]),
    "--plot": OUT_PATHS,
    "--accelerator": ACCELERATORS,
    "--accelerators": ACCELERATORS,
    "--model": PATHS,
    "--offers": PATHS,
    "--demand": PATHS,
    "--throughputs": PATHS,
    "--compressed": PATHS,
    "--python": st.sampled_from(
        ["nonexistent_mod_q:f", "json:loads", "json:JSONDecoder", "math:pi", ":", "json", ".:x", "..x:y", ""]
    ),  # never a module that does something when imported or called
    "--input-shape": st.sampled_from(["8,16", "1", "0", "-1", "8x", "2x3", "x", "", "1e3,2", "4,4,4"]),
    "--input-dtype": st.sampled_from(["auto", "float32", "long", "x", ""]),
    "--deadline": DURATIONS,
    "--duration": DURATIONS,
    "--horizon": DURATIONS,
    "--date": st.sampled_from(["2024-01-01", "2024-13-01", "2024-02-30", "x", "", "9999-12-31"]),
    "--env": st.sampled_from(["A=1", "A", "=", "1A=2", "A=\udcff", "", "PATH=", "A=a=b", "A B=1"]),
    "-e": st.sampled_from(["A=1", "B", "=x"]),
    "--backend": st.sampled_from(["local", "ray", "x", ""]),
    "--ray-address": st.sampled_from(["", "auto", "127.0.0.1:1", "\udcff"]),
    "--user": TEXT,
    "--attempt": JOB_IDS,
    "--db": st.sampled_from(["nonsense", "", "sqlite:///@out/other.db", "sqlite://", "mysql://x"]),
    "--provider": st.sampled_from(["lambda", "aws", "x", "", "lambda,aws"]),
    "--providers": st.sampled_from(["lambda", "aws", "x", "", "lambda,aws"]),
    "--mode": st.sampled_from(["on-demand", "spot", "reserved", "x", ""]),
    "--modes": st.sampled_from(["on-demand", "spot", "reserved,spot", "x", ""]),
    "--objective": st.sampled_from(["cost", "time", "carbon", "size", "latency", "x", ""]),
    "--precision": st.sampled_from(["bf16", "fp16", "fp32", "fp8", "int8", "int4", "x", ""]),
    "--kv-precision": st.sampled_from(["bf16", "fp8", "int8", "x"]),
    "--region": st.sampled_from(["us-east-1", "x", ""]),
    "--regions": st.sampled_from(["us-east-1", "x", ""]),
}
ARGUMENTS: dict[tuple[str, ...], st.SearchStrategy] = {
    ("run",): PATHS,
    ("status",): JOB_IDS,
    ("logs",): JOB_IDS,
    ("cancel",): st.lists(JOB_IDS, min_size=1, max_size=3).map(" ".join),
    ("catalog", "show"): ACCELERATORS | st.sampled_from(["lambda", "aws", "x", ""]) | TEXT,
    ("catalog", "import"): st.tuples(
        st.sampled_from(["skypilot", "yaml", "x", "", "YAML"]),
        st.sampled_from(["@offers.yaml", "@dir", "@skypilot", "@not-utf8.yaml", "/nonexistent"]) | PATHS,
    ).map(" ".join),
    ("plan",): PATHS,
}


VALUES_FOR = {name: OPTION_VALUES.get(name, GENERIC) | GENERIC for name in ALL_OPTIONS}
TOKENS = st.one_of(GENERIC, st.sampled_from(ALL_OPTIONS), st.sampled_from(NAMES))
STRAY = st.lists(GENERIC | st.sampled_from(ALL_OPTIONS), max_size=2)
OPTION_OF = {
    path: st.sampled_from(
        [(name, o.is_flag) for o in c.params if o.param_type_name == "option" and "--json" not in o.opts
         for name in (*o.opts, *o.secondary_opts)]
        or [("--json", True)]
    )
    for path, c in LEAVES.items()
}  # fmt: skip
ONE_IN = {n: st.integers(0, n - 1) for n in (5, 10, 20, 30)}


# Commands as the README runs them: mutated a little, they reach the work past the checks (plan on H100
# offers only: on all 406 it takes 150 ms).
BASES: list[tuple[str, ...]] = [
    ("estimate", "train", "--params", "7e9", "--tokens", "1e12", "--accelerator", "H100", "--count", "64"),
    ("estimate", "infer", "--model", "@model.json", "--accelerator", "L4", "--batch", "8"),
    ("plan", "--params", "7e9", "--tokens", "1e12", "--deadline", "30d", "--accelerators", "H100"),
    ("plan", "--horizon", "12mo", "--demand", "@demand.yaml"),
    ("catalog", "list", "--accelerator", "H100"),
    ("catalog", "show", "H100"),
    ("catalog", "import", "yaml", "@offers.yaml"),
    ("simulate", "--trace", "synthetic:50", "--cluster", "2x4", "--compare", "fifo,tiresias,suanli"),
    ("simulate", "--trace", "@trace.csv", "--cluster", "1x4", "--policy", "srtf"),
    ("run", "--dry-run", "@valid-job.yaml"),
    ("status", "--all"),
    ("queue",),
    ("nodes",),
]
BASE_PATHS = {b: next(p for p in sorted(LEAVES, key=len, reverse=True) if b[: len(p)] == p) for b in BASES}


@dataclass(frozen=True)
class Argv:
    args: tuple[str, ...]
    json: bool  # --json given where it can only be the flag


@st.composite
def argv(draw: st.DrawFn) -> Argv:
    kind = draw(ONE_IN[20])
    root: list[str] = ["--db", draw(OPTION_VALUES["--db"])] if draw(ONE_IN[20]) == 0 else []
    if kind == 0:  # anything at the root, but never the name of a command that starts work
        args = [f"--{a}" if a in STARTS_WORK else a for a in draw(st.lists(TOKENS, max_size=4))]
        return Argv((*root, *args), False)
    if kind == 1:  # --help right after a command (so nothing can take it as a value), then anything
        path = draw(st.sampled_from(sorted(COMMANDS)))
        return Argv((*root, *path, "--help", *draw(st.lists(TOKENS, max_size=3))), False)
    if kind == 2:  # a group alone or with stray tokens
        path = draw(st.sampled_from(GROUPS))
        return Argv((*root, *path, *[a for a in draw(STRAY) if a not in NAMES]), False)
    if kind == 3:  # a command as the README runs it, a value or two replaced or an option added
        base = draw(st.sampled_from(BASES))
        path = BASE_PATHS[base]
        args = list(base)
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.integers(len(path), len(args)))
            if at < len(args) and args[at - 1].startswith("--") and at - 1 >= len(path):
                args[at] = draw(VALUES_FOR.get(args[at - 1], GENERIC))
            else:
                name, is_flag = draw(OPTION_OF[path])
                args[at:at] = [name] if is_flag else [name, draw(VALUES_FOR[name])]
        if path == ("run",):
            args[1:1] = [] if args[1] == "--dry-run" else ["--dry-run"]
        return Argv((*root, *args), False)
    path = draw(st.sampled_from(SAFE))
    head = [*path, "--dry-run"] if path == ("run",) else list(path)
    has_json = any("--json" in p.opts for p in LEAVES[path].params)
    as_json = has_json and draw(st.booleans())
    if as_json:
        head.append("--json")
    items: list[list[str]] = []
    if path in ARGUMENTS and draw(ONE_IN[5]):
        items.append(draw(ARGUMENTS[path]).split(" ") if path in {("cancel",), ("catalog", "import")}
                     else [draw(ARGUMENTS[path])])  # fmt: skip
    for _ in range(draw(st.integers(0, 5))):
        pick = draw(ONE_IN[10])
        if pick <= 6:
            name, is_flag = draw(OPTION_OF[path])
            if is_flag:
                items.append([name])
            else:
                value = draw(VALUES_FOR[name])
                items.append([f"{name}={value}"] if draw(ONE_IN[5]) == 0 else [name, value])
        elif pick == 7:
            items.append([draw(GENERIC)])
        else:  # an option of another command, with a value
            items.append([draw(st.sampled_from(ALL_OPTIONS)), draw(GENERIC)])
    if draw(ONE_IN[30]) == 0:
        items.append(["--help"])
    order = draw(st.permutations(range(len(items)))) if len(items) > 1 else range(len(items))
    args = (*root, *head, *(a for i in order for a in items[i]))
    return Argv(args, as_json and "--help" not in args and "-h" not in args)


# ---- the fuzzing folder -----------------------------------------------------------------------------

PHILLY = REPO.parent / "shared" / "data" / "traces" / "pollux" / "philly.csv"
FILES: dict[str, bytes] = {
    "not-utf8.yaml": b"run: '\xff\xfe'\nname: x\n",
    "utf16.yaml": "run: 'true'\n".encode("utf-16"),
    "empty": b"",
    "valid-job.yaml": b"run: 'true'\nresources: {cpus: 0.01}\nworkload: {params: 7e9, tokens: 1e9}\n",
    "bad-job.yaml": b"run: [\n",
    "bad\njob.yaml": b"run: [\n",
    "\udcff.yaml": b"run: 'true'\n",
    "demand.yaml": (REPO / "examples" / "plan" / "demand.yaml").read_bytes(),
    "offers.yaml": (REPO / "examples" / "plan" / "offers.yaml").read_bytes(),
    "model.json": (REPO / "examples" / "configs" / "llama-2-7b.json").read_bytes(),
    "trace.csv": b"job_id,submit_time_s,num_gpus,duration_s,user\nA,0,2,10,ann\nB,1,4,5,bob\nC,2,1,3,ann\n",
    "philly.csv": b"".join(PHILLY.open("rb").readlines()[:30]) if PHILLY.exists() else b"",
    "big": b"a" * (2 << 20),
}


class CallTimeout(Exception):
    pass


@dataclass
class Folder:
    base: Path
    runner: typer.testing.CliRunner


@contextlib.contextmanager
def bench_context(base: Path) -> Iterator[Folder]:
    """The fuzzing folder (current folder while fuzzing), its own SUANLI_HOME, a fresh CLI client, and
    the Click app built once (typer's CliRunner rebuilds it on every call otherwise: 20 ms)."""
    base.mkdir(parents=True, exist_ok=True)
    for name in ("dir", "out", "skypilot/v7/aws"):
        (base / name).mkdir(parents=True, exist_ok=True)
    (base / "skypilot/v7/aws/vms.csv").write_text("InstanceType,AcceleratorName,AcceleratorCount,Price\n")
    with contextlib.suppress(FileExistsError):
        (base / "link-loop").symlink_to(base / "link-loop")
    saved_env = {k: os.environ.get(k) for k in ("SUANLI_HOME", "SUANLI_DB_URL", "SUANLI_POLICY")}
    saved_client, saved_cwd = list(state._client), os.getcwd()
    saved_get_command = typer.testing._get_command
    os.environ.update({"SUANLI_HOME": str(base / "home"), "SUANLI_POLICY": "fifo"})
    os.environ.pop("SUANLI_DB_URL", None)
    state._client.clear()
    typer.testing._get_command = lambda _app: ROOT  # type: ignore[attr-defined]
    os.chdir(base)
    try:
        yield Folder(base, typer.testing.CliRunner())
    finally:
        os.chdir(saved_cwd)
        typer.testing._get_command = saved_get_command  # type: ignore[attr-defined]
        state._client[:] = saved_client
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bench_after(_folder: Folder) -> str:
    return ""


def _restore(folder: Folder) -> None:
    """Put back the files a command may have replaced (a plot written over a job file, say)."""
    for name, data in FILES.items():
        path = folder.base / name
        if not path.is_file() or path.stat().st_size != len(data):
            with contextlib.suppress(IsADirectoryError):
                if path.is_dir():
                    shutil.rmtree(path)
                path.write_bytes(data)


def _timeout(_signum: int, _frame: object) -> None:
    raise CallTimeout(f"the command ran longer than {CALL_TIMEOUT_S} s")


# ---- the property -----------------------------------------------------------------------------------


def check_argv(folder: Folder, example: Argv) -> None:
    _restore(folder)
    args = [str(folder.base / a[1:]) if a.startswith("@") else a for a in example.args]
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
    try:
        result = folder.runner.invoke(app, args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    shown = " ".join(repr(a) if not a.isprintable() or " " in a or not a else a for a in example.args)
    words = example.args[2:] if example.args[:1] == ("--db",) else example.args
    command = " ".join(["suanli", *itertools.takewhile(lambda a: a in NAMES, words)])
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit | SuanliError):
        tb = "".join(traceback.format_exception(exc)).strip().splitlines()
        raise AssertionError(f"traceback in `{command}`: suanli {shown}: {' | '.join(tb[-4:])}") from exc
    assert result.exit_code in (0, 1, 2), f"exit code {result.exit_code} from `{command}`: suanli {shown}"
    stderr = result.stderr
    shown_help = "rror: " not in stderr and "Usage:" in result.stdout[:300] + stderr[:300]
    if result.exit_code != 0 and not shown_help:  # `suanli estimate` alone shows its help, exit 2
        lines = stderr.rstrip("\n").split("\n")
        errors = [line for line in lines if line.startswith("error: ")]
        if not (len(errors) == 1 and lines[-1] == errors[0] and "\r" not in errors[0]):
            what = "not one error line"
            if any("\n" in a or "\r" in a for a in example.args):
                what = "an error line echoes a raw newline of an argument"
            raise AssertionError(
                f"{what} from `{command}`: exit {result.exit_code}, suanli {shown}, stderr {stderr[-600:]!r}"
            )
    if example.json and result.exit_code == 0:
        try:
            json.loads(result.stdout, parse_constant=_not_json)
        except ValueError as e:
            raise AssertionError(f"--json output of `{command}` is not JSON: suanli {shown} ({e})") from None


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


ARGVS = argv()

# name -> (strategy, check, share of the entry point's examples); benchmarks/bench_fuzz.py runs these too
PROPERTIES = {"argv": (ARGVS, check_argv, 1.0)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Folder]:
    with bench_context(tmp_path_factory.mktemp("fuzz-cli")) as f:
        yield f


# Inputs that broke a property once (property, example); each runs as a test.
REGRESSIONS: dict[str, tuple[str, Argv]] = {
    "a job id beyond 64 bits": ("argv", Argv(("status", "99999999999999999999"), False)),
    "a user that is not UTF-8": ("argv", Argv(("status", "--user", "\udcff"), False)),
    "an offers file with a 2 MiB line": ("argv", Argv(("catalog", "list", "--offers", "@big"), False)),
    "a newline in a number": ("argv", Argv(("simulate", "--preemption-cost", "a\nb"), False)),
    "a newline in a name": ("argv", Argv(("catalog", "show", "a\nb"), False)),
    "a newline in a job file's path": ("argv", Argv(("run", "--dry-run", "a\rb"), False)),
    "a job file that is not UTF-8": ("argv", Argv(("run", "--dry-run", "@not-utf8.yaml"), False)),
    "a newline in a bad job file's name": ("argv", Argv(("run", "--dry-run", "@bad\njob.yaml"), False)),
    "a job file named in bytes that are not UTF-8": (
        "argv",
        Argv(("run", "--dry-run", "--json", "@\udcff.yaml"), True),
    ),
}
KNOWN: dict[str, Known] = {}  # open bugs found by fuzzing: none (each found one is a regression test)


@FUZZ
@given(example=ARGVS)
def test_every_argv_ends_in_an_exit_code_and_at_most_one_error_line(folder, example, monkeypatch):
    monkeypatch.setenv("SUANLI_HOME", str(folder.base / "home"))
    tolerating(KNOWN, check_argv)(folder, example)


@pytest.mark.parametrize(("prop", "example"), regressions(REGRESSIONS, KNOWN))
def test_regression(folder, prop, example, monkeypatch):
    monkeypatch.setenv("SUANLI_HOME", str(folder.base / "home"))
    PROPERTIES[prop][1](folder, example)
