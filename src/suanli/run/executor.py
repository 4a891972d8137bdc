"""The executor interface: how an attempt's processes are started, watched, stopped and read.

`local` (this module's neighbour local.py) runs them on this machine; the Ray backend implements the
same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from suanli.store.records import AttemptRecord, JobRecord


@dataclass(frozen=True)
class Handle:
    pid: int
    started_at: float


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. `requeue`: it never ran (its nodes could not take it after all); the job
    goes back to the queue without using one of its retries. `lost_nodes`: nodes found gone."""

    exit_code: int | None
    signal: str | None
    reason: str
    requeue: bool = False
    lost_nodes: tuple[str, ...] = ()
    usage: dict | None = None  # the attempt's own account where one was kept (cpu_seconds, max_rss_bytes)


class Executor(Protocol):
    name: str

    def dry_run(self, job: JobRecord, gpu_indices: list[int]) -> dict:
        """The exact launch request, without starting anything."""
        ...

    def launch(self, job: JobRecord, attempt: AttemptRecord, secrets: dict[str, str] | None = None) -> Handle:
        """Start the attempt; `secrets` reach its processes' environment and nothing else."""
        ...

    def poll(self, job: JobRecord, attempt: AttemptRecord) -> Outcome | None:
        """None while the attempt runs; its Outcome once it has ended (or vanished)."""
        ...

    def cancel(self, attempt: AttemptRecord, *, force: bool = False) -> None: ...

    def log_path(self, attempt: AttemptRecord) -> Path: ...
