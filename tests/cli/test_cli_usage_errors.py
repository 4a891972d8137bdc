"""Usage errors Click finds while parsing (unknown option or command, missing or bad value) are one line
on stderr in suanli's style, exit code 2, for every command and subcommand: no usage block, no box."""

from __future__ import annotations

import pytest

from jobhelpers import cli, invoke

CASES = [
    (
        ("plan", "--params", "7e9", "--tokens", "1e12", "--budgt", "5"),
        "error: --budgt: no such option (did you mean --budget?)",
    ),
    (("estimate", "train", "--param", "7B"), "error: --param: no such option (did you mean --params?)"),
    (
        ("catalog", "list", "--acelerator", "H100"),
        "error: --acelerator: no such option (did you mean --accelerator?)",
    ),
    (("status", "--bogus"), "error: --bogus: no such option (see `suanli status --help`)"),
    (("estimate", "trian"), "error: trian: no such command (did you mean train?)"),
    (("agent", "strat"), "error: strat: no such command (did you mean start"),
    (("xyzzy",), "error: xyzzy: no such command (known: run, submit"),
    (("simulate", "--trace", "t.csv"), "error: --cluster: is required (see `suanli simulate --help`)"),
    (("catalog", "show"), "error: NAME: is required (see `suanli catalog show --help`)"),
    (("tune",), "error: TUNE_FILE: is required"),
    (("compress", "m.py:f", "--task", "classification"), "error: --eval: is required"),
    (
        ("plan", "--max-gpus", "abc"),
        "error: --max-gpus=abc: must be a whole number (see `suanli plan --help`)",
    ),
    (("estimate", "train", "--pue", "high"), "error: --pue=high: must be a number"),
    (("plan", "--objective"), "error: --objective: requires an argument (see `suanli plan --help`)"),
    (("plan", "--spot=3"), "error: --spot: does not take a value"),
    (("plan", "a.yaml", "b.yaml"), "error: b.yaml: unexpected extra argument (see `suanli plan --help`)"),
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_usage_errors_are_one_line_exit_2(args, expected):
    r = invoke(*args)
    assert r.exit_code == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(expected), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_installed_entry_point_prints_one_line_too():
    proc = cli("plan", "--params", "7e9", "--tokens", "1e12", "--budgt", "250k")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: --budgt: no such option (did you mean --budget?)\n"


def test_help_still_works_and_exits_0():
    r = invoke("plan", "--help")
    assert r.exit_code == 0 and "--budget" in r.stdout
