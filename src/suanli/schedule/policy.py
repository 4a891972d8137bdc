"""The policy interface: a pure function from (pending jobs, cluster state, now) to decisions.

The live scheduler (run/agent.py) and the trace simulator build these same inputs and call the same
policy objects, so a policy proven on a trace is the policy that runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

JobId = int | str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a policy knows about a job. `gpus` and `cpus`/`memory_bytes` are per node when
    `num_nodes` is set (a gang of identical slices); with `num_nodes=None` the GPUs may be split
    over any number of nodes (trace jobs that only say how many GPUs they used)."""

    id: JobId
    submit_time_s: float
    gpus: int = 0
    cpus: float = 0.0
    memory_bytes: int = 0
    num_nodes: int | None = 1
    gpu_type: str | None = None
    user: str = "default"
    priority: int = 0
    estimated_duration_s: float | None = None
    attained_gpu_s: float = 0.0

    @property
    def total_gpus(self) -> int:
        return self.gpus * (self.num_nodes or 1) if self.num_nodes else self.gpus


@dataclass(slots=True)
class NodeState:
    """A node's capacity and what is free on it now."""

    name: str
    gpus: int
    cpus: float
    memory_bytes: int
    gpu_type: str | None = None
    free_gpus: int | None = None
    free_cpus: float | None = None
    free_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.free_gpus is None:
            self.free_gpus = self.gpus
        if self.free_cpus is None:
            self.free_cpus = self.cpus
        if self.free_memory_bytes is None:
            self.free_memory_bytes = self.memory_bytes


@dataclass(frozen=True, slots=True)
class Slice:
    """The part of one node given to a job."""

    node: str
    gpus: int
    cpus: float
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class RunningJob:
    request: JobRequest
    placement: tuple[Slice, ...]
    started_s: float


@dataclass(slots=True)
class ClusterState:
    nodes: list[NodeState]
    running: list[RunningJob] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Start:
    job_id: JobId
    placement: tuple[Slice, ...]


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: JobId
    reason: str


@dataclass(slots=True)
class Decisions:
    """What to do now; `waiting` says, per pending job left waiting, why (shown by `suanli queue`)."""

    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preempt] = field(default_factory=list)
    waiting: dict[JobId, str] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        """Pure: must not mutate its inputs."""
        ...
