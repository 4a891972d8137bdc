"""Runs attempts on this machine, each under its supervisor (shim.py), which stops every process of the
attempt when it ends (procs.py). Jobs get a clean environment: a few login variables, the spec's envs
and secrets, and suanli's own variables; never the environment of whoever started the agent."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets as random_tokens
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from suanli.core.files import open_private, private_dir, write_private
from suanli.jobs.skypilot import prepare_mounts
from suanli.run import procs
from suanli.run.control import process_alive
from suanli.run.executor import Handle, Outcome
from suanli.run.shim import RESULT_UNWRITTEN_FAILED, RESULT_UNWRITTEN_OK
from suanli.run.worker_env import attempt_environment
from suanli.store.paths import logs_dir
from suanli.store.records import AttemptRecord, JobRecord


def run_dir_for(job_id: int, attempt: int) -> Path:
    return logs_dir() / f"job-{job_id}" / f"attempt-{attempt}"


def _free_port() -> int:
    """A free port for the workers' rendezvous, below Linux's ephemeral range (32768+): a port the
    kernel hands out for outgoing connections can be taken again before rank 0 binds it."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalExecutor:
    name = "local"

    def __init__(self, job_umask: int = 0o022) -> None:
        self._children: dict[tuple[int, int], subprocess.Popen] = {}
        self.job_umask = job_umask  # the umask of whoever started the agent, for the job's own files

    def dry_run(self, job: JobRecord, gpu_indices: list[int]) -> dict:
        return self._request(job, 1, gpu_indices, run_dir_for(job.id, 1), None)

    def _request(
        self, job: JobRecord, attempt_number: int, gpu_indices: list[int], run_dir: Path, node: str | None
    ) -> dict:
        """What the supervisor is asked to run (launch.json), less the per-launch fields."""
        return {
            "executor": self.name,
            "workdir": job.spec.workdir,
            "setup": job.spec.setup,
            "run": job.spec.run,
            "num_workers": job.num_workers,
            "env": attempt_environment(job, attempt_number, gpu_indices, run_dir, node=node),
        }

    def launch(self, job: JobRecord, attempt: AttemptRecord, secrets: dict[str, str] | None = None) -> Handle:
        import psutil

        root = Path(attempt.run_dir)
        private_dir(root, "attempt folder")
        token = random_tokens.token_hex(16)
        launch = self._request(job, attempt.number, attempt.gpu_indices, root, attempt.node)
        launch["env"].update(prepare_mounts(job.spec, root))  # local file_mounts: links the job finds
        launch |= {
            "master_port": _free_port() if job.num_workers > 1 else None,
            "token": token,
            "umask": self.job_umask,
            "grace_s": job.spec.grace_period_s,
        }
        if secrets:  # in their own file, which the supervisor deletes once it has read it
            write_private(root / "secrets.json", json.dumps(secrets))
        write_private(root / "launch.json", json.dumps(launch))
        with open_private(root / "output.log") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "suanli.run.shim", str(root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env={**os.environ, procs.TOKEN_VAR: token},  # the token marks the supervisor too
            )
        self._children[(job.id, attempt.number)] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            started = time.time()
        return Handle(proc.pid, started)

    def poll(self, job: JobRecord, attempt: AttemptRecord) -> Outcome | None:
        """None while any process of the attempt lives; how it ended once none does. An attempt whose
        supervisor died is not over until what it left is stopped: only then may a retry start."""
        root = Path(attempt.run_dir)
        child = self._children.get((job.id, attempt.number))
        pid, started = attempt.pid, attempt.pid_started_at
        if pid is None:  # the agent stopped between recording the attempt and the pid
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid, started = int((root / "shim.pid").read_text()), None
        rc = None
        if child is not None:
            if child.poll() is None:
                return None
            rc = child.returncode
        elif pid is not None and process_alive(pid, started):
            return None
        try:
            result = json.loads((root / "result.json").read_text())
        except (FileNotFoundError, ValueError):
            result = None
        if result is None and self._kill_leftovers(attempt):
            return None  # poll again once they are gone
        self._children.pop((job.id, attempt.number), None)
        if result is not None:
            kept = ("cpu_seconds", "max_rss_bytes")
            usage = {k: result[k] for k in kept if isinstance(result.get(k), int | float)}
            return Outcome(result.get("exit_code"), result.get("signal"), result.get("reason") or "ended",
                           usage=usage or None)  # fmt: skip
        return _lost(rc, pid, root)

    def _kill_leftovers(self, attempt: AttemptRecord) -> bool:
        """SIGKILL the processes an attempt left when its supervisor died; True if any were found."""
        left = procs.attempt_processes(_token(attempt))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return bool(left)

    def cancel(self, attempt: AttemptRecord, *, force: bool = False) -> None:
        """SIGTERM the supervisor's process group (the supervisor then stops everything the attempt
        started); with `force`, SIGKILL it and every process carrying the attempt's token."""
        pid = attempt.pid
        if pid is None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid = int((Path(attempt.run_dir) / "shim.pid").read_text())
        if pid is not None and (attempt.pid is None or process_alive(pid, attempt.pid_started_at)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)
        if force:
            self._kill_leftovers(attempt)

    def log_path(self, attempt: AttemptRecord) -> Path:
        return Path(attempt.run_dir) / "output.log"

    def memory_bytes(self, attempt: AttemptRecord) -> int:
        """Resident memory of the attempt's process tree, less its supervisor (whose use is not the job's)."""
        import psutil

        if attempt.pid is None:
            return 0
        try:
            procs = psutil.Process(attempt.pid).children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total


def _token(attempt: AttemptRecord) -> str | None:
    try:
        return json.loads((Path(attempt.run_dir) / "launch.json").read_text()).get("token")
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def _lost(rc: int | None, pid: int | None, root: Path) -> Outcome:
    """How an attempt ended whose supervisor left no result.json, in words that say what is known."""
    if pid is None and not (root / "launch.json").exists():
        return Outcome(None, None, "the agent stopped before the job's process started")
    if rc == RESULT_UNWRITTEN_OK:
        return Outcome(0, None, "exited with code 0 (its result file could not be written: disk full?)")
    if rc == RESULT_UNWRITTEN_FAILED:
        return Outcome(None, None, "failed; its result file could not be written (disk full?)")
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        return Outcome(None, name, f"the job's supervisor was killed by {name}")
    if rc is not None:
        return Outcome(
            None, None, f"the job's supervisor exited with code {rc} without a result; see the log"
        )
    return Outcome(None, None, "the job's supervisor ended without a result while no agent watched it")
