"""What a job's worker processes see and how their end is told, the same for every executor: the
environment (a clean base, suanli's variables, SkyPilot's and the rank variables torchrun-style
launchers read) and the words for an exit code.

The supervisor (shim.py) imports this module, so it imports only the standard library at load time.
"""

from __future__ import annotations

import os
import pwd
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suanli.store.records import JobRecord

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_environment() -> dict[str, str]:
    """What every job's environment starts from: who it runs as, where it lives, and a PATH on which
    `python` is the interpreter suanli runs under (its virtual environment). Never the environment
    of whoever started the agent."""
    from suanli.store.paths import home

    user = pwd.getpwuid(os.getuid())
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + DEFAULT_PATH,
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "SHELL": user.pw_shell or "/bin/sh",
        "LANG": "C.UTF-8",
        "SUANLI_HOME": str(home()),
    }


def checkpoint_dir(job_id: int) -> Path:
    """The job's checkpoint folder: the same for every attempt, so a preempted or retried attempt
    resumes from what the last one saved (suanli.train.checkpoints reads SUANLI_CHECKPOINT_DIR)."""
    from suanli.store.paths import logs_dir

    return logs_dir() / f"job-{job_id}" / "checkpoints"


def job_spool(job_id: int) -> Path:
    """Where a job's processes spool ledger statements (SUANLI_LEDGER_SPOOL), the same for every
    attempt; the agent appends them when an attempt ends (run/provenance.py)."""
    from suanli.store.paths import logs_dir

    return logs_dir() / f"job-{job_id}" / "ledger-spool"


def attempt_environment(
    job: JobRecord,
    attempt_number: int,
    gpu_indices: list[int] | None,
    run_dir: Path | str,
    *,
    node_rank: int = 0,
    node_ips: list[str] | None = None,
    node: str | None = None,
) -> dict[str, str]:
    """The environment of one node's workers, before the rank variables. `gpu_indices` None leaves
    CUDA_VISIBLE_DEVICES to the executor (Ray sets it for the GPUs it assigned)."""
    from suanli.jobs.skypilot import skypilot_env

    spec_env = dict(job.spec.envs)
    train = job.spec.train
    ips = node_ips or ["127.0.0.1"]
    gpus = job.gpus if gpu_indices is None else len(gpu_indices)
    env = {
        **base_environment(),
        # SkyPilot's task variables, so task files that build torchrun lines from them run as they are
        **skypilot_env(job.id, len(ips), node_rank, ips, gpus, user=job.user),
        "SUANLI_JOB_ID": str(job.id),
        "SUANLI_JOB_NAME": job.name,
        "SUANLI_ATTEMPT": str(attempt_number),
        "SUANLI_NODE": node or "",  # the pool node this worker runs on
        "SUANLI_NUM_WORKERS": str(job.num_workers),
        "SUANLI_RUN_DIR": str(run_dir),
        "SUANLI_CHECKPOINT_DIR": str(checkpoint_dir(job.id)),
        "SUANLI_LEDGER_SPOOL": str(job_spool(job.id)),
        **train.env(),
        "PYTHONUNBUFFERED": "1",
    }
    if gpu_indices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_indices)
    if "OMP_NUM_THREADS" not in spec_env:
        env["OMP_NUM_THREADS"] = str(max(1, int(job.cpus // max(1, job.num_workers))))
    env.update(spec_env)
    return env


def rank_environment(
    rank: int, per_node: int, world: int, master_addr: str, master_port: int
) -> dict[str, str]:
    """torch.distributed's variables for worker `rank` of `world`, `per_node` workers per node."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank % per_node),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(per_node),
        "NODE_RANK": str(rank // per_node),
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
    }


def describe_exit(rc: int, who: str = "") -> tuple[int | None, str | None, str]:
    """(exit_code, signal name, words) for a process's return code (-N: killed by signal N);
    `who` ("worker 3", "setup") starts the words."""
    prefix = f"{who} " if who else ""
    if rc < 0:
        name = signal.Signals(-rc).name
        why = f"{prefix}killed by {name}"
        if -rc == signal.SIGKILL:
            why += " (out of memory, or killed by a user or the system)"
        return None, name, why
    if rc > 128 and rc - 128 in signal.valid_signals():
        return rc, None, f"{prefix}exited with code {rc} (128+{signal.Signals(rc - 128).name})"
    return rc, None, f"{prefix}exited with code {rc}"
