"""The main flow in one place: a job goes through these stages, in order.

    ESTIMATE  when the spec has a `workload:` block and names its accelerators: time, device-hours,
              memory per device and energy for that hardware (suanli estimate); `suanli plan` answers
              where to get the hardware instead
    SCHEDULE  validate the job against the pool and queue it (the agent's policy places it)
    RUN       the agent starts it; we wait for it to start and stream its log
    RECORD    wait for the end and return the stored record: status, attempts, metrics

`dry_run=True` stops before RUN and stores nothing: it returns the estimate, what the scheduler would
decide now and the exact launch request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from suanli.api import Client
from suanli.core.workload import workload_from_dict
from suanli.jobs.spec import JobSpec
from suanli.run.local import LocalExecutor
from suanli.run.pool import choose_fitting, load_pool_config
from suanli.run.ray_executor import RayExecutor
from suanli.run.ray_pool import RayPool
from suanli.run.schedconfig import make_policy
from suanli.run.scheduling import decide_now
from suanli.schedule.estimates import workload_estimate
from suanli.store.records import JobRecord
from suanli.store.store import Store


class Stage(Enum):
    ESTIMATE = 0
    SCHEDULE = 1
    RUN = 2
    RECORD = 3


@dataclass
class FlowResult:
    job_id: int | None = None
    estimate: dict[str, Any] | None = None
    record: JobRecord | None = None
    dry_run: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)


ESTIMATE_FIELDS = ("wall_hours", "device_hours", "device_hours_low", "device_hours_high",
                   "memory_per_device_bytes", "mfu", "energy_kwh", "co2_kg", "layout")  # fmt: skip


def estimate(spec: JobSpec) -> dict[str, Any] | None:
    """The estimator's answer for the job's own hardware, or None when the spec has no training
    workload or names no accelerator (CPU jobs are not modelled)."""
    if not spec.workload or not spec.resources.accelerators:
        return None
    workload_from_dict(spec.workload.to_dict())  # a block `suanli plan` would complete is named here
    est = workload_estimate(spec.workload, spec.resources.accelerators, spec.num_nodes)
    if est is None:
        return None
    doc = est.to_json()
    return {k: doc[k] for k in ESTIMATE_FIELDS if k in doc} | {
        "accelerator": next(iter(spec.resources.accelerators))
    }


def _dry_run(client: Client, spec: JobSpec) -> dict[str, Any]:
    """What SCHEDULE and RUN would do now, without storing or starting anything: the pass the agent
    would make (run/scheduling.py) with this job added to the queue."""
    nodes = client.pool(spec.ray_address)
    spec = choose_fitting(spec, nodes)
    job = Store.preview(spec)
    decided = decide_now(client.store, make_policy(), nodes, extra=[job])
    start = next((s for s in decided.decisions.starts if s.job_id == job.id), None)
    placement = [s.node for s in start.placement] if start else []
    pool = load_pool_config(spec.ray_address)
    if pool.ray or spec.backend == "ray":  # a Ray pool's cluster, or a local Ray on demand
        launch = RayExecutor(RayPool(pool) if pool.ray else None).dry_run(job, [], placement)
    else:
        launch = LocalExecutor().dry_run(job, list(range(job.gpus)))
    return {
        "dry_run": True,
        "estimate": estimate(spec),
        "job": {k: v for k, v in job.to_json().items() if k not in ("id", "status", "attempts", "metrics")},
        "notes": spec.notes,  # what of the file does not apply to a pool (SkyPilot's cloud fields)
        "policy": decided.policy,
        "would_start_now": start is not None,
        "placement": placement,
        "waiting_reason": decided.decisions.waiting.get(job.id),
        "queued_ahead": len(decided.jobs) - 1,
        "launch": launch,
    }


def run(
    spec: JobSpec,
    *,
    client: Client | None = None,
    dry_run: bool = False,
    on_event: Callable[[str, JobRecord], None] | None = None,
    on_log: Callable[[str], None] | None = None,
) -> FlowResult:
    """Run `spec` through the stages; callbacks see state changes and log text as they happen."""
    client = client or Client()
    result = FlowResult()
    if dry_run:
        result.dry_run = _dry_run(client, spec)
        result.stages += [Stage.ESTIMATE, Stage.SCHEDULE]
        return result
    result.estimate = estimate(spec)
    result.stages.append(Stage.ESTIMATE)

    result.job_id = job_id = client.submit(spec)
    result.stages.append(Stage.SCHEDULE)
    if on_event:
        on_event("queued", client.get(job_id))

    seen_attempts = 0

    def report_progress() -> JobRecord:
        nonlocal seen_attempts
        record = client.get(job_id)
        for a in record.attempts[seen_attempts:]:
            if on_event:
                on_event(f"started attempt {a.number}", record)
        seen_attempts = len(record.attempts)
        return record

    for chunk in client.follow(job_id):
        report_progress()
        if on_log:
            on_log(chunk)
    result.stages.append(Stage.RUN)
    result.record = client.wait(job_id)
    report_progress()
    result.stages.append(Stage.RECORD)
    return result
