"""The live scheduling pass, in one place. The agent acts on `decide_now`'s decisions; `suanli queue`
and `suanli run --dry-run` show the same pass without acting, so what they say is what the agent does.

Stored jobs and the pool's nodes become the policy's inputs here (JobRequest, ClusterState): the same
types the trace simulator builds, so a policy proven on a trace is the policy that runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from suanli.jobs.states import JobState
from suanli.run.quotas import QuotaGate
from suanli.schedule.estimates import HistoryEstimator, workload_seconds
from suanli.schedule.policy import ClusterState, Decisions, JobRequest, NodeState, Policy, RunningJob, Slice
from suanli.store.records import AttemptRecord, JobRecord, NodeRecord, attempt_slices
from suanli.store.store import Store


def run_seconds(job: JobRecord) -> float:
    """Time the job has held its resources, over its ended attempts."""
    return sum((a.ended_at - a.started_at) for a in job.attempts if a.ended_at is not None)


def is_preemption(attempt: AttemptRecord) -> bool:
    return (attempt.reason or "").startswith("preempted")


def job_request(job: JobRecord, history: HistoryEstimator | None = None) -> JobRequest:
    """A stored job as the scheduling policies see it: its service so far counts its ended attempts;
    its runtime estimate is the one its spec states, else the estimator's time for its workload,
    else (not stated) a guess from `history`."""
    preempted = [a.ended_at for a in job.attempts if is_preemption(a)]
    spec = job.spec
    estimate = spec.expected_duration_s or workload_seconds(
        spec.workload, spec.resources.accelerators, job.num_nodes
    )
    stated = estimate is not None
    if not stated and history is not None:
        estimate = history.guess(job.user, max(job.gpus * job.num_nodes, 1))
    return JobRequest(
        id=job.id,
        submit_time_s=job.submitted_at,
        gpus=job.gpus,
        cpus=job.cpus,
        memory_bytes=job.memory_bytes,
        num_nodes=job.num_nodes,
        gpu_type=job.accelerator,
        user=job.user,
        team=job.project or spec.labels.get("team"),
        priority=job.priority,
        estimated_duration_s=estimate,
        estimate_stated=stated,
        attained_gpu_s=run_seconds(job) * max(job.gpus * job.num_nodes, 1),
        last_preempted_s=preempted[-1] if preempted else None,
        nodes=frozenset(spec.nodes),
    )


def job_history(store: Store, limit: int = 500) -> HistoryEstimator:
    """Run times of recently finished jobs, by user and size: where guesses for jobs that state no
    estimate come from."""
    history = HistoryEstimator()
    for j in reversed(
        store.list_jobs([JobState.SUCCEEDED, JobState.FAILED], limit=limit, with_attempts=True)
    ):
        history.learn(j.user, max(j.gpus * j.num_nodes, 1), run_seconds(j))
    return history


def _cached_request(
    job: JobRecord, history: HistoryEstimator | None, cache: dict[tuple[int, int], JobRequest] | None
) -> JobRequest:
    """`job_request`, kept in `cache` until the job's attempts change."""
    if cache is None:
        return job_request(job, history)
    key = (job.id, len(job.attempts))
    request = cache.get(key)
    if request is None:
        request = cache[key] = job_request(job, history)
    return request


def cluster_state(
    nodes: Sequence[NodeRecord],
    running: Sequence[tuple[JobRecord, AttemptRecord]],
    history: HistoryEstimator | None = None,
    cache: dict[tuple[int, int], JobRequest] | None = None,
) -> ClusterState:
    """The pool's usable nodes (UP) with what is free on them, and the jobs running there, each on the
    slices its attempt holds (what is free is worked out from those, not read again)."""
    jobs = [
        RunningJob(
            _cached_request(j, history, cache),
            tuple(Slice(s.node, s.gpus, s.cpus, s.memory_bytes) for s in attempt_slices(j, a)),
            a.started_at,
        )
        for j, a in running
    ]
    used: dict[str, list[float]] = {}
    for r in jobs:
        for s in r.placement:
            u = used.setdefault(s.node, [0, 0.0, 0])
            u[0] += s.gpus
            u[1] += s.cpus
            u[2] += s.memory_bytes
    states = []
    for n in nodes:
        if not n.up:
            continue
        g, c, m = used.get(n.name, (0, 0.0, 0))
        states.append(
            NodeState(
                name=n.name,
                gpus=n.gpus,
                cpus=n.cpus,
                memory_bytes=n.memory_bytes,
                gpu_type=n.accelerator,
                free_gpus=n.gpus - int(g),
                free_cpus=n.cpus - c,
                free_memory_bytes=n.memory_bytes - int(m),
            )
        )
    return ClusterState(states, jobs)


class JobsView:
    """The PENDING and RUNNING jobs, kept current from the append-only event log: each refresh reads
    again only the jobs whose state changed since the last one, so a queue of 10,000 jobs is not read
    every pass. On PostgreSQL an event with a lower id can commit after a higher one, so the last
    OVERLAP events are read again there; the whole set is read again every REFRESH_S as a safety net.
    A cancel request changes no state, so the RUNNING jobs asked to stop are asked for each time."""

    OVERLAP = 100
    REFRESH_S = 60.0

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs: dict[int, JobRecord] = {}
        self._last_event = -1
        self._full_at = 0.0
        self._touched: set[int] = set()
        self._overlap = 0 if store.is_sqlite else self.OVERLAP  # SQLite commits in id order

    def touch(self, job_id: int) -> None:
        """Read this job again at the next refresh (it changed without a new state: a process id)."""
        self._touched.add(job_id)

    def refresh(self) -> None:
        live = (JobState.PENDING, JobState.RUNNING)
        if self._last_event < 0 or time.monotonic() - self._full_at > self.REFRESH_S:
            last = self.store.last_event_id()  # first: what changes while we read is read next time
            self.jobs = {j.id: j for j in self.store.list_jobs(live, with_attempts=True)}
            self._last_event, self._full_at, self._touched = last, time.monotonic(), set()
            return
        changed, last = self.store.changed_since(max(self._last_event - self._overlap, 0))
        changed |= self._touched
        self._touched = set()
        for job_id in changed:
            self.jobs.pop(job_id, None)
        if changed:
            self.jobs.update((j.id, j) for j in self.store.list_jobs(live, ids=changed, with_attempts=True))
        self._last_event = last

    def pending(self) -> list[JobRecord]:
        return sorted((j for j in self.jobs.values() if j.state == JobState.PENDING), key=lambda j: j.id)

    def running(self) -> list[tuple[JobRecord, AttemptRecord]]:
        """RUNNING jobs with their open attempt, as `Store.running()` gives them."""
        stopping = self.store.cancel_requested()
        out = []
        for job in sorted((j for j in self.jobs.values() if j.state == JobState.RUNNING), key=lambda j: j.id):
            attempt = job.attempts[-1] if job.attempts else None
            if attempt is None or attempt.ended_at is not None:
                continue
            if job.id in stopping and not job.cancel_requested:
                job = replace(job, cancel_requested=True)
            out.append((job, attempt))
        return out


@dataclass
class Pass:
    """One scheduling pass: what the policy decided and the inputs it decided on."""

    policy: str
    decisions: Decisions
    requests: dict[int, JobRequest]
    jobs: dict[int, JobRecord]
    cluster: ClusterState

    def order(self) -> list[tuple[int, str]]:
        """Pending jobs in the order the policy would start them, each with why it waits."""
        rows = [(s.job_id, "starts now: it fits") for s in self.decisions.starts]
        rows += list(self.decisions.waiting.items())
        seen = {job_id for job_id, _ in rows}
        rows += [(job_id, "waiting") for job_id in sorted(self.jobs) if job_id not in seen]
        return rows


def decide_now(
    store: Store,
    policy: Policy,
    nodes: Sequence[NodeRecord],
    *,
    running: Sequence[tuple[JobRecord, AttemptRecord]] | None = None,
    pending: Sequence[JobRecord] | None = None,
    extra: Sequence[JobRecord] = (),
    history: HistoryEstimator | None = None,
    now: float | None = None,
    cache: dict[tuple[int, int], JobRequest] | None = None,
) -> Pass:
    """Ask `policy` what to do now about every PENDING job (plus `extra`, jobs not stored yet, e.g. a
    dry run's) on the UP nodes of `nodes`. Pure: it stores and starts nothing. `cache` keeps the
    policy's view of each waiting job between passes (a job's view changes only with its attempts;
    clear it when `history` changes)."""
    history = history if history is not None else job_history(store)
    if running is None:
        names = {n.name for n in nodes}
        running = [(j, a) for j, a in store.running() if a.node in names]
    if pending is None:
        pending = store.list_jobs([JobState.PENDING], with_attempts=True)
    jobs = {j.id: j for j in [*pending, *extra]}
    now = time.time() if now is None else now
    gate = QuotaGate.load(store, now)
    if getattr(policy, "shares_from_quotas", False):
        policy.use_shares(gate.shares)  # type: ignore[attr-defined]
    if getattr(policy, "weights_from", None) == "contribution":
        from suanli.monitor.owners import cached_contribution_weights

        policy.weights = cached_contribution_weights(store, now)  # type: ignore[attr-defined]
    held = {job_id: why for job_id, j in jobs.items() if gate.quotas and (why := gate.why_waits(j))}
    requests = {job_id: _cached_request(j, history, cache) for job_id, j in jobs.items()}
    cluster = cluster_state(nodes, running, history, cache)
    if cache is not None and len(cache) > 2 * (len(jobs) + len(running)) + 1000:  # forget ended jobs
        live = set(jobs) | {j.id for j, _ in running}
        for key in [k for k in cache if k[0] not in live]:
            del cache[key]
    decisions = policy.decide([r for r in requests.values() if r.id not in held], cluster, now)
    if gate.quotas:  # starts in one pass count against concurrent-GPU quotas one after another
        starts = []
        for start in decisions.starts:
            why = gate.why_waits(jobs[start.job_id])
            if why:
                held[start.job_id] = why
            else:
                gate.take(jobs[start.job_id])
                starts.append(start)
        decisions.starts = starts
        decisions.waiting.update(held)
    return Pass(policy.name, decisions, requests, jobs, cluster)
