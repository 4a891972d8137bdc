"""Finding, starting, stopping and talking to the local agent. Standard library (and psutil) only, so
`suanli submit` answers in a fraction of a second: the agent, which has the heavy libraries loaded,
validates and stores the job.

The agent publishes SUANLI_HOME/agent.json (pid, start time, database) and listens on a Unix socket
(owner-only permissions) for requests, one JSON line each way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from suanli.core.errors import SuanliError
from suanli.store.paths import home


class AgentError(SuanliError):
    """An error the agent reported for a request; carries the agent's exit code (2 for bad input)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class AgentInfo:
    pid: int
    started_at: float
    db_url: str
    node: str
    socket: str

    def alive(self) -> bool:
        return process_alive(self.pid, self.started_at)


def process_alive(pid: int | None, started_at: float | None) -> bool:
    """True when `pid` runs and is the process we started (not a reused pid, not a zombie)."""
    if pid is None:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if started_at is not None and abs(proc.create_time() - started_at) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def info_path() -> Path:
    return home() / "agent.json"


def socket_path() -> str:
    """SUANLI_HOME/agent.sock, or a private temporary one when that path is too long for a socket."""
    path = str(home() / "agent.sock")
    if len(path.encode()) < 100:
        return path
    private = Path(tempfile.gettempdir()) / f"suanli-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    return str(private / (hashlib.sha1(str(home()).encode()).hexdigest()[:16] + ".sock"))


def read_agent_info() -> AgentInfo | None:
    try:
        data = json.loads(info_path().read_text())
        return AgentInfo(data["pid"], data["started_at"], data["db_url"], data["node"], data["socket"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def running_agent() -> AgentInfo | None:
    info = read_agent_info()
    return info if info is not None and info.alive() else None


def nudge(info: AgentInfo | None = None) -> None:
    """Wake the agent so it acts on new state now rather than at its next tick."""
    info = info or running_agent()
    if info is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGUSR1)


def ensure_agent(db_url: str, timeout_s: float = 30.0) -> AgentInfo:
    """The running agent for `db_url`, starting one in the background if none runs."""
    info = running_agent()
    if info is not None:
        if info.db_url != db_url:
            raise SuanliError(
                f"an agent for another database is running (pid {info.pid}, db {info.db_url}); "
                "stop it with `suanli agent stop` first"
            )
        return info
    with (home() / "agent.log").open("ab") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "suanli.run.agent", "--db", db_url],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        info = running_agent()
        if info is not None:
            return info
        if proc.poll() is not None:
            info = running_agent()  # lost a start race to another agent, which is fine
            if info is not None:
                return info
            raise SuanliError(f"the agent exited with code {proc.returncode}; see {home() / 'agent.log'}")
        time.sleep(0.02)
    raise SuanliError(f"the agent did not start within {timeout_s:.0f} s; see {home() / 'agent.log'}")


def stop_agent(timeout_s: float = 15.0) -> AgentInfo | None:
    """Stop the agent (jobs keep running; the next agent adopts them). None if none ran."""
    info = running_agent()
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.time() + timeout_s
    while time.time() < deadline and info.alive():
        time.sleep(0.02)
    if info.alive():
        os.kill(info.pid, signal.SIGKILL)
    return info


def call(info: AgentInfo, request: dict, timeout_s: float = 60.0) -> dict:
    """Send one request to the agent and return its answer; AgentError if it reports one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(info.socket)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            raise SuanliError(f"could not reach the agent (pid {info.pid}) at {info.socket}: {e}") from None
    answer = json.loads(data or b"{}")
    if "error" in answer:
        raise AgentError(answer["error"], int(answer.get("exit_code", 1)))
    return answer


def submit(path: str | Path, env: dict[str, str], db_url: str, overrides: dict | None = None) -> int:
    """Submit a job file through the agent (starting it if needed); returns the job id."""
    info = ensure_agent(db_url)
    request = {"op": "submit", "path": str(Path(path).resolve()), "env": env, "overrides": overrides or {}}
    return int(call(info, request)["id"])
