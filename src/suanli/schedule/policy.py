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
    # Extensions (all optional): the fair-share group (defaults to `user`), the most nodes a split job
    # may span (topology-aware placement), relative speed per GPU type (heterogeneity awareness;
    # a missing type runs at 1.0), when the job was last stopped by a preemption, and whether
    # `estimated_duration_s` describes this job (stated by its user, like Slurm's --time, or the
    # estimator's answer for its workload) rather than being a guess from other jobs' history, and the
    # nodes it is pinned to.
    team: str | None = None
    max_nodes: int | None = None
    throughput: tuple[tuple[str, float], ...] = ()
    last_preempted_s: float | None = None
    estimate_stated: bool = False
    nodes: frozenset[str] = frozenset()  # only these nodes (empty: any)

    @property
    def total_gpus(self) -> int:
        return self.gpus * (self.num_nodes or 1) if self.num_nodes else self.gpus

    @property
    def group(self) -> str:
        """Who this job counts against for fair share and quotas: the team when set, else the user."""
        return self.team or self.user

    def speed_on(self, gpu_type: str | None) -> float:
        """Relative speed on `gpu_type` (1.0 when unknown): a job's duration is divided by it."""
        for name, value in self.throughput:
            if name == gpu_type:
                return value
        return 1.0

    def attained_s(self) -> float:
        """Wall-clock service so far: attained GPU-seconds over the GPUs the job uses."""
        return self.attained_gpu_s / max(self.total_gpus, 1)


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
    """A job holding resources. `request.attained_gpu_s` is the service it had when it started."""

    request: JobRequest
    placement: tuple[Slice, ...]
    started_s: float

    def attained_gpu_s(self, now_s: float) -> float:
        """Attained GPU-seconds now (what least-attained-service policies rank by)."""
        return self.request.attained_gpu_s + max(now_s - self.started_s, 0.0) * self.request.total_gpus

    def attained_s(self, now_s: float) -> float:
        return self.attained_gpu_s(now_s) / max(self.request.total_gpus, 1)


@dataclass(slots=True)
class ClusterState:
    """Nodes and running jobs. `explain=False` lets the simulator skip building `waiting` reasons,
    which nobody reads there and which cost time with long queues."""

    nodes: list[NodeState]
    running: list[RunningJob] = field(default_factory=list)
    explain: bool = True


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
    """A scheduling policy. Optional attributes the simulator reads: `preemptive` (may return
    preemptions; default False), `clairvoyant` (reads true durations: reference only) and
    `next_wake_s(pending, cluster, now_s)` (the next time the policy wants to be asked again even
    without arrivals or completions, e.g. when a running job crosses a priority threshold), and
    `idle_until_release` ("strict": after starting nothing, the policy starts nothing until GPUs are
    freed or a higher-priority job arrives; "fit": the same, unless an arriving job fits in the free
    GPUs), which lets the simulator skip decisions that cannot change anything."""

    name: str

    def decide(self, pending: Sequence[JobRequest], cluster: ClusterState, now_s: float) -> Decisions:
        """Pure: must not mutate its inputs."""
        ...
