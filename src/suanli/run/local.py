"""Runs attempts as process groups on this machine, through the supervisor in shim.py."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from suanli.jobs.spec import TrainSpec
from suanli.run.control import process_alive
from suanli.run.executor import Handle, Outcome
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

    def __init__(self) -> None:
        self._children: dict[tuple[int, int], subprocess.Popen] = {}

    def _environment(
        self, job: JobRecord, attempt_number: int, gpu_indices: list[int], run_dir: Path | str
    ) -> dict[str, str]:
        spec_env = dict(job.spec.get("envs") or {})
        train = TrainSpec.model_validate(job.spec.get("train") or {})
        env = {
            "SUANLI_JOB_ID": str(job.id),
            "SUANLI_JOB_NAME": job.name,
            "SUANLI_ATTEMPT": str(attempt_number),
            "SUANLI_NUM_WORKERS": str(job.num_workers),
            "SUANLI_RUN_DIR": str(run_dir),
            "SUANLI_CHECKPOINT_DIR": str(logs_dir() / f"job-{job.id}" / "checkpoints"),
            **train.env(),
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpu_indices),
            "PYTHONUNBUFFERED": "1",
            # `python` in a job means the interpreter suanli runs under (its virtual environment).
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
        if "OMP_NUM_THREADS" not in spec_env:
            env["OMP_NUM_THREADS"] = str(max(1, int(job.cpus // max(1, job.num_workers))))
        env.update(spec_env)
        return env

    def dry_run(self, job: JobRecord, gpu_indices: list[int]) -> dict:
        return {
            "executor": self.name,
            "workdir": job.spec.get("workdir"),
            "setup": job.spec.get("setup"),
            "run": job.spec.get("run"),
            "num_workers": job.num_workers,
            "env": self._environment(job, 1, gpu_indices, run_dir_for(job.id, 1)),
        }

    def launch(self, job: JobRecord, attempt: AttemptRecord) -> Handle:
        import psutil

        root = Path(attempt.run_dir)
        root.mkdir(parents=True, exist_ok=True)
        launch = {
            **self.dry_run(job, attempt.gpu_indices),
            "env": self._environment(job, attempt.number, attempt.gpu_indices, root),
            "master_port": _free_port() if job.num_workers > 1 else None,
        }
        tmp = root / "launch.json.tmp"
        tmp.write_text(json.dumps(launch))
        os.replace(tmp, root / "launch.json")
        with (root / "output.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "suanli.run.shim", str(root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._children[(job.id, attempt.number)] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            started = time.time()
        return Handle(proc.pid, started)

    def poll(self, job: JobRecord, attempt: AttemptRecord) -> Outcome | None:
        root = Path(attempt.run_dir)
        child = self._children.get((job.id, attempt.number))
        pid, started = attempt.pid, attempt.pid_started_at
        if pid is None:  # the agent stopped between recording the attempt and the pid
            try:
                pid, started = int((root / "shim.pid").read_text()), None
            except (FileNotFoundError, ValueError):
                if time.time() - attempt.started_at < 5.0:
                    return None
                return Outcome(None, None, "the agent stopped before the job's process started")
        if child is not None:
            if child.poll() is None:
                return None
            self._children.pop((job.id, attempt.number), None)
        elif process_alive(pid, started):
            return None
        try:
            result = json.loads((root / "result.json").read_text())
        except (FileNotFoundError, ValueError):
            if child is not None and child.returncode is not None and child.returncode < 0:
                name = signal.Signals(-child.returncode).name
                return Outcome(None, name, f"the job's supervisor was killed by {name}")
            return Outcome(None, None, "the job's processes vanished while the agent was not watching")
        return Outcome(result.get("exit_code"), result.get("signal"), result.get("reason") or "ended")

    def cancel(self, attempt: AttemptRecord, *, force: bool = False) -> None:
        pid = attempt.pid
        if pid is None:
            try:
                pid = int((Path(attempt.run_dir) / "shim.pid").read_text())
            except (FileNotFoundError, ValueError):
                return
        if attempt.pid is not None and not process_alive(pid, attempt.pid_started_at):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)

    def log_path(self, attempt: AttemptRecord) -> Path:
        return Path(attempt.run_dir) / "output.log"

    def memory_bytes(self, attempt: AttemptRecord) -> int:
        """Resident memory of the attempt's whole process tree."""
        import psutil

        if attempt.pid is None:
            return 0
        try:
            root = psutil.Process(attempt.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total
