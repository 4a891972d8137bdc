"""Event-driven trace replay that drives the same policy objects as the live scheduler.

Model (the assumptions published simulators make, plus a preemption cost):
* a job runs for `duration_s / speed` once started, where speed is its relative throughput on the GPU
  type it got (1.0 without a throughput table); GPUs are exclusive, there is no interference;
* the policy is asked at every arrival and completion (events at one instant are handled together),
  and at the times it asks for (`next_wake_s`), e.g. when a job crosses a priority threshold;
* a preempted job keeps its progress (checkpointed) and goes back to pending; when it starts again it
  first spends `preemption_cost_s` restoring (GPUs held, no progress);
* estimates for non-clairvoyant policies are the user's own (`estimate_s`, like Slurm's --time; a
  *stated* estimate, which the default policy ranks by) or else come from history: the mean
  duration of the same user's last 20 finished jobs of the same size (else of any size), unknown
  before that. Clairvoyant (oracle) policies get the true duration.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from suanli.core.errors import BadInput, SuanliError
from suanli.schedule.estimates import HistoryEstimator
from suanli.schedule.placement import FreeSpace
from suanli.schedule.policy import ClusterState, JobRequest, NodeState, Policy, RunningJob
from suanli.schedule.simulate.traces import TraceJob

PLACEMENTS = ("consolidated", "fewest", "count")
_FINISH, _ARRIVE, _WAKE = 0, 1, 2


class SimulationError(SuanliError):
    """The policy broke a rule the simulator checks (over capacity, unknown job)."""


@dataclass(slots=True)
class JobOutcome:
    id: str
    user: str
    gpus: int
    submit_s: float
    first_start_s: float
    finish_s: float
    duration_s: float
    run_s: float
    preemptions: int

    @property
    def jct_s(self) -> float:
        return self.finish_s - self.submit_s

    @property
    def queue_s(self) -> float:
        """Time spent not running (waiting, including after preemptions)."""
        return max(self.jct_s - self.run_s, 0.0)


@dataclass(slots=True)
class SimResult:
    policy: str
    capacity_gpus: int
    outcomes: list[JobOutcome]
    busy: list[tuple[float, int]] = field(default_factory=list)  # (time, GPUs busy from then on)
    preemptions: int = 0
    decisions: int = 0
    skipped: list[str] = field(default_factory=list)


def job_requests(
    jobs: list[TraceJob], nodes: list[NodeState], placement: str
) -> tuple[list[JobRequest], list[str]]:
    """Trace jobs as policy requests, and why the jobs that could never fit this cluster are left out
    ("line N: job ID asks for ...")."""
    if placement not in PLACEMENTS:
        raise BadInput("placement", placement, f"must be one of {', '.join(PLACEMENTS)}")
    biggest: dict[str | None, int] = {}
    for n in nodes:
        biggest[n.gpu_type] = max(biggest.get(n.gpu_type, 0), n.gpus)
    empty = FreeSpace(nodes, full=True)
    out, bad = [], []
    cache: dict[tuple, bool] = {}
    for j in jobs:
        if j.gpu_type is not None and j.gpu_type not in biggest:
            bad.append(f"line {j.line}: job {j.id} needs {j.gpu_type} GPUs; the cluster has none")
            continue
        max_nodes = None
        if placement == "consolidated":
            size = biggest[j.gpu_type] if j.gpu_type else max(biggest.values())
            max_nodes = max(1, math.ceil(j.gpus / max(size, 1)))
        req = JobRequest(
            id=j.id,
            submit_time_s=j.submit_s,
            gpus=j.gpus,
            num_nodes=None,
            gpu_type=j.gpu_type,
            user=j.user,
            priority=j.priority,
            max_nodes=max_nodes,
            throughput=j.throughput,
        )
        key = (j.gpus, j.gpu_type, max_nodes)
        if key not in cache:
            cache[key] = empty.place(req, consolidate=placement != "count") is not None
        if not cache[key]:
            where = f"any {j.gpu_type} node group" if j.gpu_type else "any node group"
            bad.append(f"line {j.line}: job {j.id} asks for {j.gpus} GPUs, more than {where} can hold")
            continue
        out.append(req)
    return out, bad


def invalid_jobs(bad: list[str], source: str = "trace") -> BadInput:
    """One clear error for a trace with invalid jobs, naming the first few by line."""
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return BadInput(
        "trace",
        source,
        f"{len(bad)} invalid job(s): " + "; ".join(bad[:3]) + more,
        hint="fix them, or pass --skip-invalid to list and skip them",
    )


def simulate(
    jobs: list[TraceJob],
    nodes: list[NodeState],
    policy: Policy,
    *,
    preemption_cost_s: float = 0.0,
    placement: str = "consolidated",
    skip_invalid: bool = False,
    progress: Callable[[int, int], None] | None = None,
    estimate_window: int = 20,
    estimate: str = "mean",
) -> SimResult:
    """Replay `jobs` on `nodes` under `policy`; every job finishes exactly once."""
    if preemption_cost_s < 0:
        raise BadInput("preemption_cost", preemption_cost_s, "must be >= 0 seconds")
    requests, bad = job_requests(jobs, nodes, placement)
    if bad and not skip_invalid:
        raise invalid_jobs(bad)
    by_id = {j.id: j for j in jobs}
    if len(by_id) != len(jobs):
        raise BadInput("trace", "job_id", "job ids must be unique")
    nodes = [NodeState(n.name, n.gpus, n.cpus, n.memory_bytes, n.gpu_type) for n in nodes]
    node_of = {n.name: n for n in nodes}
    capacity = sum(n.gpus for n in nodes)
    clairvoyant = bool(getattr(policy, "clairvoyant", False))
    preemptive = bool(getattr(policy, "preemptive", False))
    waker = getattr(policy, "next_wake_s", None)
    estimator = HistoryEstimator(estimate_window, estimate)

    remaining: dict[str, float] = {}  # reference seconds of work left
    speed: dict[str, float] = {}
    restore: dict[str, float] = {}  # restore time owed at the next start
    rj_restore: dict[str, float] = {}  # restore time owed by the current run
    attained: dict[str, float] = {}
    first_start: dict[str, float] = {}
    run_s: dict[str, float] = defaultdict(float)
    preempts: dict[str, int] = defaultdict(int)
    version: dict[str, int] = defaultdict(int)
    pending: dict[str, JobRequest] = {}
    running: dict[str, RunningJob] = {}
    outcomes: list[JobOutcome] = []
    busy: list[tuple[float, int]] = [(requests[0].submit_time_s if requests else 0.0, 0)]
    busy_now = 0
    free_total = capacity

    events: list[tuple[float, int, int, str, int]] = []
    seq = 0
    for r in requests:
        events.append((r.submit_time_s, _ARRIVE, seq, r.id, 0))
        seq += 1
    heapq.heapify(events)
    wake_at, wake_ver = math.inf, 0
    # A non-preemptive policy that started nothing stays idle until GPUs are freed, unless an arrival
    # could change that: one that outranks the waiting jobs, or ("fit" policies) one that fits now.
    idle_mode = None if preemptive else getattr(policy, "idle_until_release", None)
    stalled, stall_priority, stall_space = False, 0, None
    result = SimResult(getattr(policy, "name", type(policy).__name__), capacity, outcomes, busy, skipped=bad)
    arrivals = {r.id: r for r in requests}
    total = len(requests)

    def cluster_now() -> ClusterState:
        return ClusterState(nodes, list(running.values()), explain=False)

    def note_busy(t: float) -> None:
        if busy[-1][0] == t:
            busy[-1] = (t, busy_now)
        elif busy[-1][1] != busy_now:
            busy.append((t, busy_now))

    while events:
        now = events[0][0]
        changed = False
        while events and events[0][0] <= now:
            _, kind, _, jid, ver = heapq.heappop(events)
            if kind == _FINISH:
                if ver != version[jid] or jid not in running:
                    continue
                rj = running.pop(jid)
                stalled = False
                for s in rj.placement:
                    node_of[s.node].free_gpus += s.gpus
                busy_now -= rj.request.total_gpus
                free_total += rj.request.total_gpus
                run_s[jid] += now - rj.started_s
                tj = by_id[jid]
                outcomes.append(
                    JobOutcome(
                        jid,
                        tj.user,
                        tj.gpus,
                        tj.submit_s,
                        first_start[jid],
                        now,
                        tj.duration_s,
                        run_s[jid],
                        preempts[jid],
                    )
                )
                estimator.learn(tj.user, tj.gpus, tj.duration_s)
                changed = True
                if progress is not None and len(outcomes) % 1000 == 0:
                    progress(len(outcomes), total)
            elif kind == _ARRIVE:
                req = arrivals.pop(jid)
                tj = by_id[jid]
                if clairvoyant:
                    req = _replace(req, estimated_duration_s=tj.duration_s)
                elif tj.estimate_s is not None:
                    req = _replace(req, estimated_duration_s=tj.estimate_s, estimate_stated=True)
                elif (guess := estimator.guess(tj.user, tj.gpus)) is not None:
                    req = _replace(req, estimated_duration_s=guess)
                pending[jid] = req
                remaining[jid] = tj.duration_s
                attained[jid] = 0.0
                if stalled and (
                    req.priority > stall_priority
                    or (idle_mode == "fit" and stall_space is not None and stall_space.place(req) is not None)
                ):
                    stalled = False
                changed = True
            else:
                if ver != wake_ver:
                    continue  # superseded: a later answer of `next_wake_s` replaced it
                wake_at = math.inf
                stalled = False
                changed = True
        if not changed or not pending or stalled or (free_total <= 0 and not preemptive):
            note_busy(now)
            continue
        cluster = cluster_now()
        decisions = policy.decide(list(pending.values()), cluster, now)
        result.decisions += 1
        if idle_mode and not decisions.starts and not decisions.preemptions:
            stalled = True
            stall_priority = max(r.priority for r in pending.values())
            stall_space = FreeSpace(nodes) if idle_mode == "fit" else None
        for p in decisions.preemptions:
            rj = running.pop(p.job_id, None)
            if rj is None:
                raise SimulationError(
                    f"policy {result.policy} preempted job {p.job_id}, which is not running"
                )
            jid = rj.request.id
            elapsed = now - rj.started_s
            owed = rj_restore.pop(jid, 0.0)
            remaining[jid] = max(remaining[jid] - max(elapsed - owed, 0.0) * speed[jid], 0.0)
            run_s[jid] += elapsed
            attained[jid] += elapsed * rj.request.total_gpus
            restore[jid] = preemption_cost_s
            preempts[jid] += 1
            result.preemptions += 1
            version[jid] += 1
            for s in rj.placement:
                node_of[s.node].free_gpus += s.gpus
            busy_now -= rj.request.total_gpus
            free_total += rj.request.total_gpus
            pending[jid] = _replace(rj.request, attained_gpu_s=attained[jid], last_preempted_s=now)
        for st in decisions.starts:
            req = pending.pop(st.job_id, None)
            if req is None:
                raise SimulationError(f"policy {result.policy} started job {st.job_id}, which is not pending")
            got = sum(s.gpus for s in st.placement)
            if got != req.total_gpus:
                raise SimulationError(f"job {st.job_id} needs {req.total_gpus} GPUs, was given {got}")
            types = set()
            for s in st.placement:
                node = node_of[s.node]
                if node.free_gpus < s.gpus:
                    raise SimulationError(f"policy {result.policy} over-filled node {s.node} at t={now:g}")
                node.free_gpus -= s.gpus
                types.add(node.gpu_type)
            jid = req.id
            speed[jid] = min(req.speed_on(t) for t in types) or 1.0
            owed = restore.pop(jid, 0.0)
            rj_restore[jid] = owed
            first_start.setdefault(jid, now)
            running[jid] = RunningJob(_replace(req, attained_gpu_s=attained[jid]), st.placement, now)
            busy_now += req.total_gpus
            free_total -= req.total_gpus
            finish = now + owed + remaining[jid] / speed[jid]
            heapq.heappush(events, (finish, _FINISH, seq, jid, version[jid]))
            seq += 1
        note_busy(now)
        if waker is not None and (pending or running):
            w = waker(list(pending.values()), cluster_now(), now)
            w = w if w is not None and w > now else math.inf
            if w != wake_at:  # the latest answer replaces the earlier one, as the policy's state moved on
                wake_at = w
                wake_ver += 1
                if w < math.inf:
                    heapq.heappush(events, (w, _WAKE, seq, "", wake_ver))
                    seq += 1
    if pending or running or arrivals:
        raise SimulationError(
            f"policy {result.policy} left {len(pending) + len(running) + len(arrivals)} jobs unfinished"
        )
    if progress is not None:
        progress(len(outcomes), total)
    return result


def _replace(req: JobRequest, **changes: object) -> JobRequest:
    return replace(req, **changes)


def replay_policy(name: str, placement: str = "consolidated", preemption_cost_s: float = 0.0):  # type: ignore[no-untyped-def]
    """The policy `name` set up for a replay with this placement and preemption cost."""
    import inspect

    from suanli.schedule.policies import POLICIES

    cls = POLICIES[name]
    params = inspect.signature(cls).parameters
    options: dict[str, object] = {"consolidate": placement != "count"}
    if "preemption_cost_s" in params:
        options["preemption_cost_s"] = preemption_cost_s
    return cls(**{k: v for k, v in options.items() if k in params})
