"""Helpers for tests that drive suanli as a user would (importable as `jobhelpers`: pytest puts tests/ on
the path). Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = False,
    input_text: str | None = None,
):  # fmt: skip
    """Run `python -m suanli ARGS` as a user would (`input_text` on stdin); returns the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "suanli", *args],
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"suanli {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_json(*args: str, **kwargs) -> dict:
    proc = cli(*args, "--json", check=True, **kwargs)
    return json.loads(proc.stdout)


def write_job(directory: Path, text: str, name: str = "job.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, which nothing has reaped yet, has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, timeout: float = 180.0, interval: float = 0.05):
    """Wait for an event; the timeout is only a safety net for a hung test (a loaded machine is slow)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass(frozen=True)
class Invoked:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def invoke(*args: str) -> Invoked:
    """`suanli ARGS` in this process (fast, no subprocess), with suanli's errors turned into what
    `suanli.cli.main.main` prints: `error: <message>` on stderr and the error's exit code."""
    from typer.testing import CliRunner

    from suanli.cli.main import app
    from suanli.core.errors import SuanliError

    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SuanliError):
        return Invoked(
            result.exception.exit_code, result.stdout, result.stderr + f"error: {result.exception}"
        )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Invoked(result.exit_code, result.stdout, result.stderr)


def cleanup_home(home: Path) -> None:
    """Kill the agent and the job process groups a test left running under `home`."""
    info = home / "agent.json"
    if info.exists():
        with contextlib.suppress(ProcessLookupError, ValueError, KeyError):
            os.kill(json.loads(info.read_text())["pid"], signal.SIGKILL)
    for pid_file in home.glob("logs/job-*/attempt-*/shim.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
