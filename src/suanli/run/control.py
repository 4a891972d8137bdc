"""Finding, starting, stopping and talking to the local agent. Standard library (and psutil) only, so
`suanli submit` answers in a fraction of a second: the agent, which has the heavy libraries loaded,
validates and stores the job.

The agent publishes SUANLI_HOME/agent.json (pid, start time, database) and listens on a Unix socket
for requests, one JSON line each way (at most MAX_REQUEST_BYTES). The socket lies in a folder only its
user can enter, and both ends check the other's uid (SO_PEERCRED): whoever can connect can run jobs as
us, and whoever answers could capture a submission's secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from suanli.core.errors import BadInput, SuanliError
from suanli.core.files import open_private
from suanli.store.paths import home

MAX_REQUEST_BYTES = 1 << 20  # a job file travels by path: a request is small unless its envs are huge
MAX_ANSWER_BYTES = 16 << 20


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
    pool: str = "local"  # "local" (this machine) or "ray ADDRESS"
    metrics_address: str | None = None  # HOST:PORT of its Prometheus endpoint, if it serves one

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
    """SUANLI_HOME/agent.sock, or one in a private folder of the runtime or temporary directory when
    that path is too long for a socket."""
    path = str(home() / "agent.sock")
    if len(path.encode()) < 100:
        return path
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    private = checked_private_folder(Path(base) / f"suanli-{os.getuid()}")
    return str(private / (hashlib.sha1(str(home()).encode()).hexdigest()[:16] + ".sock"))


def checked_private_folder(path: Path) -> Path:
    """`path`, created 0700 if missing; refused if it is a link, not ours, or open to others (in a
    shared folder such as /tmp another user may have made it first to capture our socket)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a folder (a link or a file)"
    elif st.st_uid != os.getuid():
        problem = f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    elif st.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(st.st_mode):o}; it must be 700"
    if problem:
        raise SuanliError(
            f"socket folder {path} {problem}: refusing to use it (remove it, or set SUANLI_HOME to a "
            "shorter path so the socket lives there)"
        )
    return path


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def read_agent_info() -> AgentInfo | None:
    try:
        data = json.loads(info_path().read_text())
        return AgentInfo(
            data["pid"], data["started_at"], data["db_url"], data["node"], data["socket"],
            data.get("pool", "local"), data.get("metrics_address"),
        )  # fmt: skip
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


def ensure_agent(
    db_url: str, timeout_s: float = 30.0, ray_address: str | None = None, metrics_address: str | None = None
) -> AgentInfo:
    """The running agent for `db_url`, starting one in the background if none runs. Its pool is the
    Ray cluster at `ray_address` when given (a running agent with another pool is refused), else
    the configured one (pool.yaml, RAY_ADDRESS; this machine by default). With `metrics_address`
    (HOST:PORT) it serves Prometheus metrics there (a running agent that does not is refused)."""
    from suanli.monitor.rules import load_monitor_config
    from suanli.run.pool import check_reachable, load_pool_config

    socket_path()  # a socket folder that cannot be trusted is refused here, in one line, not in agent.log
    info = running_agent()
    if info is not None:
        if info.db_url != db_url:
            raise SuanliError(
                f"an agent for another database is running (pid {info.pid}, db {info.db_url}); "
                "stop it with `suanli agent stop` first"
            )
        if ray_address and info.pool != f"ray {ray_address}":
            raise BadInput("ray_address", ray_address, f"the running agent's pool is {info.pool}",
                           hint="one agent per pool: `suanli agent stop` first to change it")  # fmt: skip
        if metrics_address and not _same_address(info.metrics_address, metrics_address):
            raise BadInput("--metrics-address", metrics_address,
                           f"the running agent serves metrics at {info.metrics_address or 'no address'}",
                           hint="`suanli agent stop` first to change it")  # fmt: skip
        return info
    pool = load_pool_config(ray_address)
    load_monitor_config()  # a broken alerts.yaml is named here, in one line, not in agent.log
    args = []
    if pool.ray:
        check_reachable(pool.ray, "--ray-address" if ray_address else "pool.ray")
        args = ["--ray-address", pool.ray]
    if metrics_address:
        args += ["--metrics-address", metrics_address]
    with open_private(home() / "agent.log") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "suanli.run.agent", "--db", db_url, *args],
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


def _same_address(serving: str | None, asked: str) -> bool:
    """Whether an agent listening at `serving` answers `asked` (port 0 asks for any port)."""
    if serving is None:
        return False
    host, _, port = asked.rpartition(":")
    return serving == asked or (port == "0" and serving.rpartition(":")[0] == host)


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


class NoAnswer(SuanliError):
    """The request may have reached the agent, but no answer came back (a time-out, a crash)."""


def call(info: AgentInfo, request: dict, timeout_s: float = 60.0) -> dict:
    """Send one request to the agent and return its answer; AgentError if it reports one."""
    where = f"the agent (pid {info.pid}) at {info.socket}"
    payload = json.dumps(request).encode() + b"\n"
    if len(payload) > MAX_REQUEST_BYTES:
        raise BadInput(
            "request", f"{len(payload) / 2**20:.1f} MiB", f"must be at most {MAX_REQUEST_BYTES // 2**20} MiB "
            "(large envs belong in a file the job reads)",
        )  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(info.socket)
        except OSError as e:
            raise SuanliError(f"could not reach {where}: {e}") from None
        if peer_uid(sock) != os.getuid():
            raise SuanliError(f"{info.socket} is served by another user's process: refusing to talk to it")
        data = b""
        try:
            sock.sendall(payload)
            while not data.endswith(b"\n") and len(data) < MAX_ANSWER_BYTES:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            raise NoAnswer(f"no answer from {where}: {e or 'timed out'}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise NoAnswer(f"no answer from {where} (it may have stopped; see {home() / 'agent.log'})") from None
    if not isinstance(answer, dict):
        raise NoAnswer(f"a malformed answer from {where}")
    if "error" in answer:
        raise AgentError(str(answer["error"]), int(answer.get("exit_code", 1)))
    return answer


def submit(
    path: str | Path,
    env: dict[str, str],
    db_url: str,
    overrides: dict | None = None,
    *,
    key: str | None = None,
) -> int:
    """Submit a job file through the agent (starting it if needed); returns the job id.

    The request carries an idempotency key: if the answer is lost (a time-out, the agent crashing
    after storing), the store says whether the job was stored, and the request is sent once more
    under the same key if it was not, so the job is stored exactly once."""
    key = key or uuid.uuid4().hex
    request = {
        "op": "submit", "path": str(Path(path).resolve()), "env": env,
        "overrides": overrides or {}, "key": key,
    }  # fmt: skip
    for tries_left in (1, 0):
        info = ensure_agent(db_url, ray_address=(overrides or {}).get("ray_address"))
        try:
            return int(call(info, request)["id"])
        except NoAnswer as e:
            from suanli.store.store import Store

            stored = Store(db_url).find_submission(key)
            if stored:
                return stored[0]
            if not tries_left:
                raise SuanliError(f"{e}; the job was NOT stored, so submitting again is safe") from None


def sync(info: AgentInfo, timeout_s: float = 60.0) -> None:
    """Return once the agent has finished a whole pass after this call (its view of running jobs is
    then up to date)."""
    call(info, {"op": "sync"}, timeout_s)
