"""Plain read-only views of stored state, with the JSON shapes the CLI and API print."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from suanli.jobs.spec import JobSpec, stored_spec


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def from_iso(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class NodeSlice:
    """The part of one node an attempt holds."""

    node: str
    gpus: int
    cpus: float
    memory_bytes: int


@dataclass(frozen=True)
class AttemptRecord:
    number: int
    node: str
    pid: int | None
    pid_started_at: float | None
    gpu_indices: list[int]
    run_dir: str
    started_at: float
    ended_at: float | None
    exit_code: int | None
    signal: str | None
    reason: str | None
    log_tail: str | None
    placement: list[NodeSlice] = field(default_factory=list)

    @property
    def log_path(self) -> str:
        return f"{self.run_dir}/output.log"

    @property
    def nodes(self) -> list[str]:
        return list(dict.fromkeys(s.node for s in self.placement)) or [self.node]

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "node": self.node,
            "pid": self.pid,
            "nodes": self.nodes,
            "gpu_indices": self.gpu_indices,
            "start": iso(self.started_at),
            "end": iso(self.ended_at),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
            "log_tail": self.log_tail,
            "log_path": self.log_path,
            "placement": [vars(s) for s in self.placement],
        }

    @classmethod
    def from_json(cls, doc: dict) -> AttemptRecord:
        """The record a server sent (its `to_json`), for the same display as a local one."""
        return cls(
            number=doc["number"], node=doc["node"], pid=doc["pid"], pid_started_at=None,
            gpu_indices=doc["gpu_indices"], run_dir=doc["log_path"].rsplit("/", 1)[0],
            started_at=from_iso(doc["start"]) or 0.0, ended_at=from_iso(doc["end"]),
            exit_code=doc["exit_code"], signal=doc["signal"], reason=doc["reason"], log_tail=doc["log_tail"],
            placement=[NodeSlice(**s) for s in doc.get("placement") or ()],
        )  # fmt: skip


@dataclass(frozen=True)
class JobRecord:
    id: int
    name: str
    user: str
    state: str
    priority: int
    spec_data: dict  # the spec as stored (JSON); `spec` is it as a JobSpec
    cpus: float
    memory_bytes: int
    accelerator: str | None
    gpus: int
    num_nodes: int
    num_workers: int
    retries: int
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    cancel_requested: bool
    reason: str | None
    attempts: list[AttemptRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    project: str | None = None
    # The document a server sent, when this record came from one: printed as it came (`to_json`).
    sent: dict | None = field(default=None, compare=False, repr=False)

    @cached_property
    def spec(self) -> JobSpec:
        """The job's spec, typed; built on first use (a queue of 10,000 jobs is read without it)."""
        return stored_spec(self.spec_data)

    @property
    def is_terminal(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")

    @property
    def wall_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or datetime.now(UTC).timestamp()) - self.started_at

    @property
    def last_attempt(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    def preemption_cost(self) -> dict:
        """What preemptions cost this job: how many, the GPU-seconds its preempted attempts held (work
        that is lost unless it checkpointed) and the time it then waited to run again."""
        count, held, waited = 0, 0.0, 0.0
        for i, a in enumerate(self.attempts):
            after = self.attempts[i + 1] if i + 1 < len(self.attempts) else None
            if a.ended_at is None or not (a.reason or "").startswith("preempted"):
                continue
            count += 1
            held += (a.ended_at - a.started_at) * max(self.gpus * self.num_nodes, 1)
            waited += (after.started_at if after else datetime.now(UTC).timestamp()) - a.ended_at
        return {"preemptions": count, "preempted_gpu_seconds": round(held, 3),
                "requeued_seconds": round(waited, 3)}  # fmt: skip

    def to_json(self) -> dict:
        if self.sent is not None:
            return self.sent
        wall = self.wall_seconds
        last = self.last_attempt
        return {
            "id": self.id,
            "name": self.name,
            "user": self.user,
            "project": self.project,
            "status": self.state,
            "priority": self.priority,
            "resources": {
                "cpus": self.cpus,
                "memory_bytes": self.memory_bytes,
                "accelerators": {self.accelerator: self.gpus} if self.accelerator else {},
            },
            "num_nodes": self.num_nodes,
            "num_workers": self.num_workers,
            "retries": self.retries,
            "submitted_at": iso(self.submitted_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "wall_seconds": None if wall is None else round(wall, 3),
            "reason": self.reason,
            **self.preemption_cost(),
            "attempts": [a.to_json() for a in self.attempts],
            "metrics": self.metrics,
            "log_path": last.log_path if last else None,
        }

    @classmethod
    def from_json(cls, doc: dict) -> JobRecord:
        """The record a server sent (its `to_json`); the spec itself is not sent (`spec_data` is empty)."""
        res = doc["resources"]
        accel, gpus = next(iter(res["accelerators"].items()), (None, 0))
        return cls(
            id=doc["id"], name=doc["name"], user=doc["user"], state=doc["status"], priority=doc["priority"],
            spec_data={}, cpus=res["cpus"], memory_bytes=res["memory_bytes"], accelerator=accel, gpus=gpus,
            num_nodes=doc["num_nodes"], num_workers=doc["num_workers"], retries=doc["retries"],
            submitted_at=from_iso(doc["submitted_at"]) or 0.0, started_at=from_iso(doc["started_at"]),
            ended_at=from_iso(doc["ended_at"]), cancel_requested=False, reason=doc["reason"],
            attempts=[AttemptRecord.from_json(a) for a in doc["attempts"]], metrics=doc["metrics"],
            project=doc.get("project"), sent=doc,
        )  # fmt: skip


@dataclass(frozen=True)
class NodeRecord:
    name: str
    cpus: float
    memory_bytes: int
    accelerator: str | None
    gpus: int
    status: str
    heartbeat_at: float
    used_cpus: float = 0.0
    used_memory_bytes: int = 0
    used_gpus: int = 0
    running_jobs: int = 0
    pool: str = "local"
    jobs: list[tuple[int, NodeSlice]] = field(default_factory=list)  # (job id, what it holds here)
    owner: str | None = None  # the project that brings it to the pool

    @property
    def up(self) -> bool:
        return self.status == "UP"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "pool": self.pool,
            "owner": self.owner,
            "status": self.status,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
            "accelerators": {self.accelerator: self.gpus} if self.accelerator else {},
            "used_cpus": self.used_cpus,
            "used_memory_bytes": self.used_memory_bytes,
            "used_gpus": self.used_gpus,
            "running_jobs": self.running_jobs,
            "jobs": [
                {"job_id": job_id, "gpus": sl.gpus, "cpus": sl.cpus, "memory_bytes": sl.memory_bytes}
                for job_id, sl in self.jobs
            ],
            "heartbeat_at": iso(self.heartbeat_at),
        }

    @classmethod
    def from_json(cls, doc: dict) -> NodeRecord:
        accel, gpus = next(iter(doc["accelerators"].items()), (None, 0))
        return cls(
            name=doc["name"], cpus=doc["cpus"], memory_bytes=doc["memory_bytes"], accelerator=accel,
            gpus=gpus, status=doc["status"], heartbeat_at=from_iso(doc["heartbeat_at"]) or 0.0,
            used_cpus=doc["used_cpus"], used_memory_bytes=doc["used_memory_bytes"],
            used_gpus=doc["used_gpus"], running_jobs=doc["running_jobs"], pool=doc["pool"],
            owner=doc.get("owner"),
            jobs=[(j["job_id"], NodeSlice(doc["name"], j["gpus"], j["cpus"], j["memory_bytes"]))
                  for j in doc["jobs"]],
        )  # fmt: skip


@dataclass(frozen=True)
class EventRecord:
    job_id: int
    at: float
    from_state: str | None
    to_state: str
    reason: str | None

    def to_json(self) -> dict:
        return {
            "job_id": self.job_id,
            "at": iso(self.at),
            "from": self.from_state,
            "to": self.to_state,
            "reason": self.reason,
        }


def attempt_slices(job: JobRecord, attempt: AttemptRecord) -> list[NodeSlice]:
    """What the attempt holds on each node: its stored placement, or (attempts stored before
    placements were) the job's whole request on the attempt's one node."""
    if attempt.placement:
        return list(attempt.placement)
    return [NodeSlice(attempt.node, job.gpus, job.cpus, job.memory_bytes)]
