"""The CLI contract: --json prints one document; bad input is one line, exit code 2, nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobhelpers import REPO, cli, cli_json, write_job
from suanli.store import Store


def stored_jobs(home: Path) -> int:
    db = home / "suanli.db"
    return len(Store(f"sqlite:///{db}").list_jobs()) if db.exists() else 0


BAD_SPECS = [
    ("name: x\nrun: [\n", "job.yaml:3: yaml: not valid YAML"),
    ("run: a\nresorces:\n  cpus: 2\n", "job.yaml:2: resorces="),
    ("run: a\nresources:\n  cpus: -1\n", "job.yaml:3: resources.cpus=-1"),
    ("run: a\nresources:\n  accelerators: H1OO:8\n", "did you mean: H100"),
    ("run: a\nworkdir: missing-dir\n", "job.yaml:2: workdir=missing-dir: must be an existing directory"),
    ("run: a\nresources:\n  cpus: 4096\n", "resources=4096 CPUs"),
    ("run: a\nresources:\n  accelerators: A100:8\n", "is larger than any node in the pool"),
    ("run: a\nnum_nodes: 3\n", "num_nodes=3: 1 node(s) can hold"),
    ("run: a\nnodes: [no-such-node]\n", "nodes[0]=no-such-node: is not a node of the pool that is up"),
    ("run: a\nverify: replicate\n", "verify=replicate: compares the job's artifacts"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SPECS)
@pytest.mark.parametrize("command", ["submit", "run"])
def test_bad_spec_is_one_line_exit_2_nothing_stored(tmp_path, suanli_home, command, text, expected):
    proc = cli(command, str(write_job(tmp_path, text)))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert stored_jobs(suanli_home) == 0


def test_pool_error_says_what_the_pool_has(tmp_path):
    proc = cli("submit", str(write_job(tmp_path, "run: a\nresources:\n  cpus: 4096\n")))
    assert "the pool has 1 node(s)" in proc.stderr and "CPUs" in proc.stderr


@pytest.mark.parametrize(
    "command", [["status", "77"], ["logs", "77"], ["cancel", "77"], ["logs", "77", "-f"]]
)
def test_unknown_job_id(command):
    proc = cli(*command)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: job id=77: no such job (see `suanli status` for job ids)"


def test_bad_env_option(tmp_path):
    job = str(write_job(tmp_path, "run: 'true'\n"))
    proc = cli("submit", job, "--env", "NOT_SET_HERE")
    assert proc.returncode == 2
    assert "--env=NOT_SET_HERE: is not set in your environment; give it as KEY=VALUE" in proc.stderr
    proc = cli("submit", job, "--env", "=x")
    assert proc.returncode == 2 and "--env==x: must be KEY=VALUE, or KEY to pass your value" in proc.stderr


def test_missing_job_file(tmp_path):
    proc = cli("submit", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_dry_run_stores_and_starts_nothing(tmp_path, suanli_home):
    job = write_job(tmp_path, "name: dry\nresources:\n  cpus: 1\nsetup: echo s\nrun: echo r\nenvs:\n  A: b\n")
    doc = cli_json("run", str(job), "--dry-run")
    assert doc["dry_run"] is True and doc["would_start_now"] is True
    assert doc["launch"]["run"] == "echo r" and doc["launch"]["env"]["A"] == "b"
    assert doc["policy"]
    assert stored_jobs(suanli_home) == 0
    assert not (suanli_home / "agent.json").exists()
    human = cli("run", str(job), "--dry-run", check=True).stdout
    assert "would start now" in human and "nothing was stored or started" in human


def test_run_json_prints_the_same_as_status_json(tmp_path):
    proc = cli("run", str(write_job(tmp_path, "name: j\nrun: echo hello\n")), "--json", check=True)
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert doc["status"] == "SUCCEEDED"
    assert "hello" in proc.stderr  # the log goes to stderr in --json mode
    assert cli_json("status", str(doc["id"])) == doc


def test_run_exit_code_follows_the_job(tmp_path):
    proc = cli("run", str(write_job(tmp_path, "run: exit 5\n")))
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout and "exited with code 5" in proc.stdout


@pytest.mark.parametrize(
    "args", [["status"], ["nodes"], ["agent", "status"], ["status", "--all"]], ids=lambda a: " ".join(a)
)
def test_every_listing_command_has_json(args):
    proc = cli(*args, "--json", check=True)
    json.loads(proc.stdout)
    assert proc.stdout.strip().startswith("{")


def test_nodes_show_this_machine():
    (node,) = cli_json("nodes")["nodes"]
    assert node["cpus"] >= 1 and node["memory_bytes"] > 2**28 and node["status"] == "UP"


def test_the_cli_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from suanli.cli.main import app\n"
        "import suanli.api, suanli.flow\n"
        "mods = ('torch', 'numpy', 'pandas', 'matplotlib', 'scipy', 'ray')\n"
        "heavy = sorted(m for m in mods if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_digits_example_reaches_95_percent():
    # How long it takes is measured in benchmarks/bench_foundation.py, not here.
    proc = cli("run", "examples/digits/job.yaml", "--json", check=True, timeout=300)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "SUCCEEDED"
    assert doc["metrics"]["test_accuracy"] >= 0.95
    human_final = cli("status", str(doc["id"]), check=True).stdout
    assert "test_accuracy=" in human_final


def test_every_command_and_option_is_documented():
    from suanli.cli.docs import reference

    docs = (REPO / "docs" / "cli.md").read_text()
    assert docs == reference(), "docs/cli.md is stale: python -m suanli.cli.docs > docs/cli.md"
    for name in ("run", "submit", "status", "logs", "cancel", "nodes", "agent start", "agent stop"):
        assert f"## `suanli {name}" in docs
    assert "`--dry-run`" in docs and "`--follow`" in docs


def test_every_command_has_json():
    import typer.main

    from suanli.cli.docs import _walk
    from suanli.cli.main import app

    missing = [
        path
        for path, command in _walk(typer.main.get_command(app), "suanli")
        if not any("--json" in p.opts for p in command.params)
    ]
    assert not missing, f"commands without --json: {missing}"
