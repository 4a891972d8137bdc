"""Efficiency reports, like Slurm's `seff`, for one job or a group of them (a user, a project, a window of
time), while the jobs run and after; what `suanli top` shows of the running ones; the plots.

Formulas (docs/monitoring.md):

- CPU efficiency = CPU time / (wall time x cores held), 0-1: seff's (Slurm contribs/seff: `cpu_eff =
  tot_cpu_sec / (walltime * ncpus)`). CPU time is the kernel's rusage of the attempt's processes once it
  ended (`cpu_source: rusage`), else the sum of the sampled process trees (`samples`).
- Memory efficiency = the highest resident memory sampled / the memory requested.
- GPU-hours held = GPUs x wall time; GPU-hours used = the sum over samples of the GPUs' utilisation x
  GPUs x interval (NVML); GPU utilisation = used / held; wasted = held - used.
- Cost = the price of what each attempt held (monitor/cost.py: the planner's owned-hardware rate where
  the catalog has an owned offer for the accelerator, else its cheapest on-demand price; CPU-only jobs at
  a CPU core-hour price) x its wall time.
- Energy = the GPUs' energy counter (NVML) where it was read; else unknown, bounded by GPU-hours x the
  accelerator's board power (TDP).

A group report reads one row per attempt (jobs, attempts and their usage totals in one query) and never
the samples, so a project with 10,000 finished jobs is reported in well under a second.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from suanli.core.errors import BadInput
from suanli.core.units import parse_duration
from suanli.monitor.advice import cpu_advice, gib, memory_advice
from suanli.monitor.cost import CPU_PRICE_SOURCE, gpu_price_usd_per_hour, gpu_tdp_w, hourly_usd
from suanli.store import models as m
from suanli.store.monitoring import MonitorStore, alert_json
from suanli.store.records import iso
from suanli.store.store import Store, storable

HOUR = 3600.0
WORST = 10  # jobs listed as the worst by waste
LOW_GPU_UTIL = 0.5  # a GPU job below this utilisation gets a note
LOW_CPU_EFFICIENCY = 0.25  # a CPU-only job below this efficiency gets a note
PLOT_SUFFIXES = (".png", ".svg", ".pdf")

# ---- input --------------------------------------------------------------------------------------------


def parse_since(value: str | float | None, now: float | None = None, field: str = "since") -> float | None:
    """A start time from "7d", "36h", "90m" (that long ago), a date or ISO time, or a Unix time; between
    1970 and now."""
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    allowed = 'must be a duration such as "7d" or "12h", or a date such as 2026-01-31, from 1970 to now'
    at: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = float(value)
    else:
        text = str(value).strip()
        try:
            at = now - parse_duration(text, field)
        except (BadInput, OverflowError):
            try:
                at = datetime.fromisoformat(text).timestamp()
            except (ValueError, OverflowError, OSError):
                raise BadInput(field, value, allowed) from None
    if not (math.isfinite(at) and 0 <= at <= now):
        raise BadInput(field, value, allowed)
    return at


def check_known(
    store: Store,
    *,
    users: Collection[str] | None = None,
    projects: Collection[str] | None = None,
    scope: Collection[str] | None = None,
) -> None:
    """BadInput naming the field for a user or project that has no jobs (in `scope`, the projects the
    caller may read; None: all) and is no known identity there."""
    for field, names in (("user", users), ("project", projects)):
        for name in names or ():
            if not isinstance(name, str) or not name or not storable(name) or len(name) > 255:
                raise BadInput(field, name, f"no such {field}")
    with store._read() as s:
        if users:
            q = select(m.Job.user).where(m.Job.user.in_(list(users)))
            if scope is not None:
                q = q.where(m.Job.project.in_(list(scope)))
            found = set(s.execute(q.distinct()).scalars())
            if scope is None:
                found |= set(s.execute(select(m.User.name).where(m.User.name.in_(list(users)))).scalars())
            else:
                found |= set(
                    s.execute(
                        select(m.Membership.user).where(
                            m.Membership.user.in_(list(users)), m.Membership.project.in_(list(scope))
                        )
                    ).scalars()
                )
            for name in users:
                if name not in found:
                    raise BadInput("user", name, "no such user: no jobs and no account of that name")
        if projects:
            found = set(s.execute(select(m.Project.name).where(m.Project.name.in_(list(projects)))).scalars())
            found |= set(
                s.execute(select(m.Job.project).where(m.Job.project.in_(list(projects))).distinct()).scalars()
            )
            for name in projects:
                if name not in found:
                    raise BadInput("project", name, "no such project: no jobs and no project of that name")


# ---- per attempt, per job -----------------------------------------------------------------------------


def _rows(
    store: Store,
    *,
    job_ids: Collection[int] | None = None,
    users: Collection[str] | None = None,
    projects: Collection[str] | None = None,
    since: float | None = None,
) -> list[Any]:
    """Every attempt of the chosen jobs with its usage totals, in one query, as plain columns rather than
    ORM objects: the fields a report needs and nothing else (not the job's spec), five times quicker at
    10,000 jobs than ORM rows."""
    J, A, U = m.Job, m.Attempt, m.AttemptUsage
    q = (
        select(
            J.id,
            J.name,
            J.user,
            J.project,
            J.state,
            J.cpus,
            J.memory_bytes,
            J.accelerator,
            J.gpus,
            J.num_nodes,
            A.number,
            A.node,
            A.started_at.label("a_started"),
            A.ended_at.label("a_ended"),
            A.placement,
            A.reason,
            U.attempt.label("u_attempt"),
            U.samples,
            U.cpu_seconds,
            U.cpu_source,
            U.rss_peak_bytes,
            U.gpu_seconds_used,
            U.gpu_memory_peak_bytes,
            U.gpu_energy_j,
            U.read_bytes,
            U.write_bytes,
            U.last_at.label("u_last"),
        )
        .join(A, A.job_id == J.id)
        .outerjoin(U, (U.job_id == A.job_id) & (U.attempt == A.number))
        .order_by(J.id, A.number)
    )
    if job_ids is not None:
        q = q.where(J.id.in_(list(job_ids)))
    if users is not None:
        q = q.where(J.user.in_(list(users)))
    if projects is not None:
        q = q.where(J.project.in_(list(projects)))
    if since is not None:
        q = q.where(A.ended_at.is_(None) | (A.ended_at >= since))
    with store._read() as s:
        return list(s.execute(q))


def _held(job: Any, placement: list | None) -> list[tuple[int, float, int]]:
    """(GPUs, CPUs, memory bytes) an attempt holds on each node: its placement, or (attempts stored
    before placements were) the job's request on each of its nodes."""
    if placement:
        return [
            (int(sl.get("gpus") or 0), float(sl.get("cpus") or 0.0), int(sl.get("memory_bytes") or 0))
            for sl in placement
        ]
    return [(job.gpus or 0, job.cpus or 0.0, job.memory_bytes or 0)] * max(1, job.num_nodes or 1)


class _Job:
    """Sums over the attempts of one job; `doc()` is its report row."""

    __slots__ = (
        "attempts",
        "by_attempt",
        "core_s",
        "cost",
        "cpu_core_s",
        "cpu_s",
        "cpus",
        "energy_j",
        "first_start",
        "gpu_held_measured_s",
        "gpu_mem_peak",
        "gpu_s",
        "gpu_used_s",
        "gpus",
        "job",
        "last_end",
        "measured",
        "mem_peak",
        "memory",
        "read",
        "running",
        "samples",
        "sources",
        "wall",
        "write",
    )

    def __init__(self, job: Any) -> None:
        self.job = job  # a row of _rows, or a JobRecord (a job with no attempt yet): the same names
        self.attempts = self.measured = self.samples = self.read = self.write = 0
        self.wall = self.core_s = self.gpu_s = self.cost = 0.0
        nodes = max(1, job.num_nodes or 1)  # until an attempt says what it holds: the request
        self.cpus = (job.cpus or 0.0) * nodes
        self.gpus = (job.gpus or 0) * nodes
        self.memory = (job.memory_bytes or 0) * nodes
        self.mem_peak: int | None = None
        self.cpu_s: float | None = None
        self.cpu_core_s = 0.0  # core-seconds held by the attempts whose CPU time is known
        self.sources: set[str] = set()
        self.gpu_used_s: float | None = None
        self.gpu_held_measured_s = 0.0  # GPU-seconds held by the attempts whose GPUs were read
        self.gpu_mem_peak: int | None = None
        self.energy_j: float | None = None
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.running = False
        self.by_attempt: list[dict] | None = None

    def add(self, r: Any, now: float, detail: bool = False) -> None:
        """One attempt: a row of _rows (unpacked: quicker than its attributes, 10,000 times over)."""
        (
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            accel,
            _,
            _,
            number,
            node,
            started,
            ended,
            placement,
            reason,
            u_attempt,
            samples,
            cpu_seconds,
            cpu_source,
            rss_peak,
            gpu_used,
            gpu_mem_peak,
            energy,
            read,
            write,
            u_last,
        ) = r
        self.attempts += 1
        running = ended is None
        end = now if running else ended
        self.running = self.running or running
        wall = max(0.0, end - started)
        if placement and len(placement) == 1:  # the common case, quickly
            sl = placement[0]
            gpus, cpus, memory = sl.get("gpus") or 0, sl.get("cpus") or 0.0, sl.get("memory_bytes") or 0
            rate = hourly_usd(gpus, accel, cpus)
        else:
            held = _held(self.job, placement)
            gpus, cpus, memory = sum(h[0] for h in held), sum(h[1] for h in held), sum(h[2] for h in held)
            rate = sum(hourly_usd(g, accel, c) for g, c, _ in held)
        self.cpus, self.gpus, self.memory = cpus, gpus, memory
        cost = rate * wall / HOUR
        self.wall += wall
        self.core_s += cpus * wall
        self.gpu_s += gpus * wall
        self.cost += cost
        if self.first_start is None or started < self.first_start:
            self.first_start = started
        if self.last_end is None or end > self.last_end:
            self.last_end = end
        measured = u_attempt is not None
        # A running attempt's figures are those of its last sample: its efficiency is over the time to
        # that sample, not to now (else it reads low by up to one interval).
        sampled = max(0.0, min(end, u_last) - started) if running and u_last else wall
        if measured:
            self.measured += 1
            self.samples += samples or 0
            self.cpu_s = (self.cpu_s or 0.0) + (cpu_seconds or 0.0)
            self.cpu_core_s += cpus * sampled
            self.sources.add(cpu_source or "samples")
            if rss_peak and (self.mem_peak is None or rss_peak > self.mem_peak):
                self.mem_peak = rss_peak
            if gpu_used is not None and gpus:
                self.gpu_used_s = (self.gpu_used_s or 0.0) + gpu_used
                self.gpu_held_measured_s += gpus * sampled
            if gpu_mem_peak is not None and (self.gpu_mem_peak is None or gpu_mem_peak > self.gpu_mem_peak):
                self.gpu_mem_peak = gpu_mem_peak
            if energy is not None:
                self.energy_j = (self.energy_j or 0.0) + energy
            self.read += read or 0
            self.write += write or 0
        if detail:
            self.by_attempt = self.by_attempt or []
            cpu = cpu_seconds if measured else None
            used = gpu_used if measured else None
            self.by_attempt.append(
                {
                    "number": number,
                    "node": node,
                    "started_at": iso(started),
                    "ended_at": iso(ended),
                    "wall_seconds": round(wall, 3),
                    "cpus": cpus,
                    "gpus": gpus,
                    "cpu_seconds": cpu,
                    "cpu_source": cpu_source if measured else None,
                    "cpu_efficiency": _ratio(cpu, cpus * sampled),
                    "memory_peak_bytes": rss_peak if measured else None,
                    "gpu_hours_used": None if used is None else used / HOUR,
                    "cost_usd": round(cost, 6),
                    "reason": reason,
                }
            )

    def cpu_efficiency(self) -> float | None:
        return _ratio(self.cpu_s, self.cpu_core_s)

    def gpu_utilization(self) -> float | None:
        return _ratio(self.gpu_used_s, self.gpu_held_measured_s)

    def wasted_usd(self) -> float | None:
        """What was paid for and not used, by the resource the job is priced for (GPUs, else CPUs)."""
        use = self.gpu_utilization() if self.gpus else self.cpu_efficiency()
        return None if use is None else self.cost * max(0.0, 1.0 - min(use, 1.0))

    def doc(self) -> dict:
        j = self.job
        gpu_used = None if self.gpu_used_s is None else self.gpu_used_s / HOUR
        gpu_wasted = None if gpu_used is None else max(0.0, self.gpu_held_measured_s / HOUR - gpu_used)
        wasted = self.wasted_usd()
        measured_wall = self.cpu_core_s / self.cpus if self.cpus else 0.0
        return {
            "id": j.id,
            "name": j.name,
            "user": j.user,
            "project": j.project,
            "state": str(j.state),
            "attempts": self.attempts,
            "started_at": iso(self.first_start),
            "ended_at": None if self.running else iso(self.last_end),
            "wall_seconds": round(self.wall, 3),
            "cpus": self.cpus,
            "core_hours_held": self.core_s / HOUR,
            "cpu_seconds": None if self.cpu_s is None else round(self.cpu_s, 3),
            "cpu_efficiency": self.cpu_efficiency(),
            "cpu_cores_used": _ratio(self.cpu_s, measured_wall),
            "cpu_source": _source(self.sources),
            "memory_requested_bytes": self.memory,
            "memory_peak_bytes": self.mem_peak,
            "memory_efficiency": _ratio(self.mem_peak, self.memory),
            "gpus": self.gpus,
            "accelerator": j.accelerator,
            "gpu_hours_held": self.gpu_s / HOUR,
            "gpu_hours_used": gpu_used,
            "gpu_utilization": self.gpu_utilization(),
            "gpu_hours_wasted": gpu_wasted,
            "gpu_memory_peak_bytes": self.gpu_mem_peak,
            "cost_usd": round(self.cost, 6),
            "wasted_usd": None if wasted is None else round(wasted, 6),
            "energy_kwh": None if self.energy_j is None else self.energy_j / 3.6e6,
            "read_bytes": self.read,
            "write_bytes": self.write,
            "samples": self.samples,
            "measured_attempts": self.measured,
        }


def amount(x: float | None) -> str:
    """An amount (hours, kWh) for people: 3 significant digits; whole from 100 (1,234, not 1.23e+03)."""
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a report builds its many small objects (100,000 for
    10,000 jobs: each collection would scan them all, a third of the time); reference counting still
    frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def _source(sources: set[str]) -> str | None:
    if not sources:
        return None
    return "rusage" if sources == {"rusage"} else "samples"


def _jobs(rows: Iterable[Any], now: float, detail: bool = False) -> list[_Job]:
    """Rows of _rows, ordered by job, folded into one _Job per job."""
    out: list[_Job] = []
    cur: _Job | None = None
    for r in rows:
        if cur is None or cur.job[0] != r[0]:
            cur = _Job(r)
            out.append(cur)
        cur.add(r, now, detail)
    return out


# ---- one job ------------------------------------------------------------------------------------------


def job_report(store: Store, job_id: int, *, now: float | None = None) -> dict:
    """One job's efficiency report, seff's figures and more, with notes that say what to change. The
    caller checks who may read it (api.Client.report)."""
    now = time.time() if now is None else now
    record = store.get(job_id)  # NotFound for an unknown id
    found = _jobs(_rows(store, job_ids=[job_id]), now, detail=True)
    acc = found[0] if found else _Job(record)
    doc = acc.doc()
    doc["by_attempt"] = acc.by_attempt or []
    doc["notes"] = job_notes(doc)
    doc["assumptions"] = assumptions([doc])
    doc["alerts"] = [alert_json(a) for a in MonitorStore(store).alerts(job_ids=[job_id], limit=100)]
    doc["generated_at"] = iso(now)
    return doc


def job_notes(doc: dict) -> list[str]:
    """What to change, in words: the memory and CPU advice (monitor/advice.py) from this job's own
    peaks, idle GPUs, a job that mostly waited."""
    notes = []
    if doc["memory_peak_bytes"]:
        advice = memory_advice(doc["memory_requested_bytes"], [doc["memory_peak_bytes"]])
        if advice is not None:
            notes.append(advice.message)
    cores = doc["cpu_cores_used"]
    advice = cpu_advice(doc["cpus"], [cores]) if cores is not None else None
    if advice is not None:
        notes.append(advice.message)
    elif not doc["gpus"] and doc["cpu_efficiency"] is not None and doc["cpu_efficiency"] < LOW_CPU_EFFICIENCY:
        notes.append(
            f"CPU efficiency {doc['cpu_efficiency']:.0%}: the job mostly waited (on I/O, the network, a lock "
            f"or a sleep); more CPUs would not make it faster"
        )
    if doc["gpus"]:
        util = doc["gpu_utilization"]
        if util is None:
            notes.append(
                f"no GPU readings (no NVML on the node?): how much of its {amount(doc['gpu_hours_held'])} "
                "GPU-hours the job used is unknown"
            )
        elif util < LOW_GPU_UTIL:
            wasted = doc["gpu_hours_wasted"] or 0.0
            notes.append(
                f"held {amount(doc['gpu_hours_held'])} GPU-hours at {util:.0%} utilisation ({amount(wasted)} "
                f"GPU-hours, ${(doc['wasted_usd'] or 0):.2f} unused): ask for fewer GPUs, or keep them busy "
                "(faster data loading, larger batches)"
            )
    return notes


def assumptions(docs: Sequence[dict], interval_s: float | None = None) -> list[str]:
    """How the figures were made, and what they cannot say, for these jobs."""
    out = ["wall time: the sum of the attempts' run times; cores and GPUs: what the attempts held"]
    sources = {d["cpu_source"] for d in docs}
    if "samples" in sources:
        out.append(
            "CPU time of running attempts is sampled (processes that end between samples are counted once "
            "the attempt ends, from the kernel's rusage)"
        )
    if any(d["measured_attempts"] < d["attempts"] for d in docs):
        out.append("some attempts have no usage readings (run before monitoring, or ended before a sample)")
    accels = sorted({d["accelerator"] for d in docs if d["gpus"] and d["accelerator"]})
    for a in accels:
        price = gpu_price_usd_per_hour(a)
        out.append(
            f"cost: ${price:.2f} per {a} GPU-hour (the planner's owned-hardware rate where the catalog has "
            f"an owned {a}, else its cheapest on-demand price)"
            if price
            else f"cost: no price for {a} in the catalog (counted as $0)"
        )
    if any(not d["gpus"] for d in docs):
        out.append(f"cost of CPU-only jobs: per core-hour, {CPU_PRICE_SOURCE}")
    unmeasured = [d for d in docs if d["gpus"] and d["energy_kwh"] is None]
    if unmeasured:
        bound = sum(d["gpu_hours_held"] * (gpu_tdp_w(d["accelerator"]) or 0.0) for d in unmeasured) / 1000
        text = "energy: not measured for GPU jobs without an NVML energy counter"
        out.append(text + (f" (at most {amount(bound)} kWh at the GPUs' board power)" if bound else ""))
    if any(not d["gpus"] for d in docs):
        out.append("energy: not measured for CPU-only jobs")
    return out


# ---- a group ------------------------------------------------------------------------------------------


def group_report(
    store: Store,
    *,
    users: Collection[str] | None = None,
    projects: Collection[str] | None = None,
    since: float | None = None,
    limit: int | None = None,
    now: float | None = None,
) -> dict:
    """Totals, a per-user breakdown, the worst jobs by waste and a row per job, newest first (the
    first `limit` rows when given; all are counted), of the jobs of `users` in `projects` with an
    attempt running or ended after `since`. One query; samples are never read."""
    now = time.time() if now is None else now
    with _gc_paused():
        return _group_report(store, users, projects, since, limit, now)


def _group_report(
    store: Store,
    users: Collection[str] | None,
    projects: Collection[str] | None,
    since: float | None,
    limit: int | None,
    now: float,
) -> dict:
    accs = _jobs(_rows(store, users=users, projects=projects, since=since), now)
    total, by_user, wasteful = _Sum(), {}, []
    for a in accs:
        wasted = a.wasted_usd()
        total.add(a, wasted)
        user = by_user.get(a.job.user)
        if user is None:
            user = by_user[a.job.user] = _Sum()
        user.add(a, wasted)
        if wasted:
            wasteful.append((wasted, a))
    users_out = [{"user": u, **t.doc()} for u, t in by_user.items()]
    users_out.sort(key=lambda r: (-r["cost_usd"], r["user"]))
    worst = [a.doc() for _, a in sorted(wasteful, key=lambda p: -p[0])[:WORST]]
    shown = accs[::-1] if limit is None else accs[: -limit - 1 : -1] if limit else []
    docs = [a.doc() for a in shown]
    open_alerts = _open_alerts(MonitorStore(store), users, projects) if accs else {}
    for d in docs + worst:
        d["alerts_open"] = open_alerts.get(d["id"], 0)
    totals = total.doc()
    return {
        "filters": {
            "users": None if users is None else sorted(users),
            "projects": None if projects is None else sorted(projects),
            "since": iso(since),
        },
        "generated_at": iso(now),
        "totals": totals,
        "by_user": users_out,
        "worst": worst,
        "jobs": docs,
        "jobs_total": len(accs),
        "notes": group_notes(totals, users_out, accs),
        "assumptions": assumptions(_summary(accs)) if accs else [],
    }


def _summary(accs: list[_Job]) -> list[dict]:
    """What `assumptions` reads of each job, without making every job's row: one per kind of job."""
    kinds: dict[tuple, dict] = {}
    for a in accs:
        key = (_source(a.sources), a.measured < a.attempts, a.gpus > 0, a.job.accelerator, a.energy_j is None)
        k = kinds.get(key)
        if k is None:
            k = kinds[key] = {
                "cpu_source": key[0],
                "measured_attempts": a.measured,
                "attempts": a.attempts,
                "gpus": a.gpus,
                "accelerator": a.job.accelerator,
                "energy_kwh": None if a.energy_j is None else 0.0,
                "gpu_hours_held": 0.0,
            }
        k["gpu_hours_held"] += a.gpu_s / HOUR
    return list(kinds.values())


class _Sum:
    """Totals over jobs (a group, or one user's jobs), added one job at a time."""

    def __init__(self) -> None:
        self.jobs = self.attempts = self.running = self.measured = 0
        self.wall = self.core_s = self.cpu_s = self.cpu_core_s = self.gpu_s = self.gpu_used_s = 0.0
        self.gpu_measured_s = self.cost = self.mem_peak = self.mem_req = 0.0
        self.wasted: float | None = None
        self.energy_j: float | None = None

    def add(self, a: _Job, wasted: float | None) -> None:
        self.jobs += 1
        self.attempts += a.attempts
        self.running += a.running
        self.measured += a.measured > 0
        self.wall += a.wall
        self.core_s += a.core_s
        self.cpu_s += a.cpu_s or 0.0
        self.cpu_core_s += a.cpu_core_s
        self.gpu_s += a.gpu_s
        self.gpu_used_s += a.gpu_used_s or 0.0
        self.gpu_measured_s += a.gpu_held_measured_s
        self.cost += a.cost
        if a.mem_peak and a.memory:
            self.mem_peak += a.mem_peak
            self.mem_req += a.memory
        if wasted is not None:
            self.wasted = (self.wasted or 0.0) + wasted
        if a.energy_j is not None:
            self.energy_j = (self.energy_j or 0.0) + a.energy_j

    def doc(self) -> dict:
        measured = self.gpu_measured_s
        return {
            "jobs": self.jobs,
            "attempts": self.attempts,
            "running": self.running,
            "measured_jobs": self.measured,
            "wall_hours": self.wall / HOUR,
            "core_hours_held": self.core_s / HOUR,
            "cpu_hours_used": self.cpu_s / HOUR,
            "cpu_efficiency": _ratio(self.cpu_s, self.cpu_core_s),
            "memory_efficiency": _ratio(self.mem_peak, self.mem_req),
            "gpu_hours_held": self.gpu_s / HOUR,
            "gpu_hours_used": self.gpu_used_s / HOUR if measured else None,
            "gpu_utilization": _ratio(self.gpu_used_s, measured),
            "gpu_hours_wasted": max(0.0, measured - self.gpu_used_s) / HOUR if measured else None,
            "cost_usd": round(self.cost, 6),
            "wasted_usd": None if self.wasted is None else round(self.wasted, 6),
            "energy_kwh": None if self.energy_j is None else self.energy_j / 3.6e6,
        }


def group_notes(totals: dict, users: list[dict], accs: list[_Job]) -> list[str]:
    notes = []
    if totals["gpu_utilization"] is not None and totals["gpu_utilization"] < LOW_GPU_UTIL:
        notes.append(
            f"GPUs held {amount(totals['gpu_hours_held'])} GPU-hours at {totals['gpu_utilization']:.0%} "
            f"utilisation: {amount(totals['gpu_hours_wasted'])} GPU-hours unused"
        )
    for u in users:
        util = u["gpu_utilization"]
        if util is not None and util < LOW_GPU_UTIL and u["gpu_hours_held"] >= 1:
            notes.append(
                f"{u['user']}: {u['jobs']} jobs held {amount(u['gpu_hours_held'])} GPU-hours at {util:.0%} "
                "utilisation"
            )
    over = sum(1 for a in accs if a.mem_peak and a.memory and a.mem_peak < a.memory / 4)
    if over:
        notes.append(
            f"{over} of {len(accs)} jobs used less than a quarter of the memory they asked for "
            "(`suanli report JOB` says how much to ask for)"
        )
    return notes[:20]


def _open_alerts(
    db: MonitorStore, users: Collection[str] | None, projects: Collection[str] | None
) -> dict[int, int]:
    counts: dict[int, int] = {}
    for a in db.alerts(open_only=True, users=users, projects=projects, limit=10_000):
        if a["job_id"] is not None:
            counts[a["job_id"]] = counts.get(a["job_id"], 0) + 1
    return counts


# ---- running jobs (`suanli top`) ------------------------------------------------------------------------

MARKS = {"idle": "idle", "stalled": "stalled", "memory": "memory", "overdue": "overdue", "cost": "cost"}


def top_report(
    store: Store, *, readable: Callable[[str | None], bool] | None = None, now: float | None = None
) -> dict:
    """The running jobs (those the caller may read) with what they use now (the latest sample of each
    node), their cost so far and marks for their open alerts; and the open alerts."""
    now = time.time() if now is None else now
    db = MonitorStore(store)
    running = [(j, a) for j, a in store.running() if readable is None or readable(j.project)]
    ids = [j.id for j, _ in running]
    accs = {a.job.id: a for a in _jobs(_rows(store, job_ids=ids), now)} if ids else {}
    last = db.last_samples({(j.id, a.number) for j, a in running})
    alerts = [a for a in db.alerts(open_only=True, limit=1000) if _alert_readable(a, readable)]
    marks: dict[int, list[str]] = {}
    for a in alerts:
        if a["job_id"] is not None:
            marks.setdefault(a["job_id"], []).append(MARKS.get(a["kind"], a["kind"]))
    jobs = []
    for job, attempt in running:
        nodes = [s for (jid, n, _node), s in last.items() if (jid, n) == (job.id, attempt.number)]
        acc = accs.get(job.id)
        doc = acc.doc() if acc is not None else _Job(job).doc()
        utils = [s["gpu_util"] for s in nodes if s["gpu_util"] is not None]
        gmem = [s["gpu_memory_bytes"] for s in nodes if s["gpu_memory_bytes"] is not None]
        at = max((s["at"] for s in nodes), default=None)
        jobs.append(
            {
                "id": job.id,
                "name": job.name,
                "user": job.user,
                "project": job.project,
                "attempt": attempt.number,
                "nodes": attempt.nodes,
                "started_at": iso(attempt.started_at),
                "elapsed_seconds": round(max(0.0, now - attempt.started_at), 3),
                "cpus": doc["cpus"],
                "cpu_cores": sum(s["cpu_cores"] for s in nodes) if nodes else None,
                "cpu_efficiency": doc["cpu_efficiency"],
                "memory_requested_bytes": doc["memory_requested_bytes"],
                "rss_bytes": sum(s["rss_bytes"] for s in nodes) if nodes else None,
                "memory_peak_bytes": doc["memory_peak_bytes"],
                "gpus": doc["gpus"],
                "accelerator": job.accelerator,
                "gpu_util": sum(utils) / len(utils) if utils else None,
                "gpu_memory_bytes": sum(gmem) if gmem else None,
                "cost_usd": doc["cost_usd"],
                "sampled_at": iso(at),
                "sample_age_seconds": None if at is None else round(now - at, 3),
                "marks": sorted(set(marks.get(job.id, []))),
            }
        )
    return {"at": iso(now), "jobs": jobs, "alerts": [alert_json(a) for a in alerts]}


def _alert_readable(alert: dict, readable: Callable[[str | None], bool] | None) -> bool:
    """Alerts about a job or a project: to whoever may read that project; about a node: to everyone
    (the nodes are everyone's to see)."""
    if readable is None:
        return True
    if alert["job_id"] is None and alert["project"] is None:
        return True
    return readable(alert["project"])


def alerts_report(
    store: Store,
    *,
    open_only: bool = True,
    job_ids: Collection[int] | None = None,
    since: float | None = None,
    limit: int = 200,
    readable: Callable[[str | None], bool] | None = None,
) -> list[dict]:
    """Alerts newest first (the open ones, or all), of `job_ids` when given, that `readable` allows."""
    db = MonitorStore(store)
    found = db.alerts(
        open_only=open_only, job_ids=job_ids, since=since, limit=limit * 4 if readable else limit
    )
    return [alert_json(a) for a in found if _alert_readable(a, readable)][:limit]


# ---- series and plots -----------------------------------------------------------------------------------


def usage_series(samples: Sequence[dict]) -> list[dict]:
    """One point per sampling pass: the nodes of an attempt sampled together summed (CPU cores, memory,
    GPU memory) or averaged (GPU utilisation)."""
    points: list[dict] = []
    cur: dict | None = None
    for s in sorted(samples, key=lambda s: (s["at"], s["node"])):
        near = cur is not None and s["attempt"] == cur["attempt"] and s["node"] not in cur["_nodes"]
        if near and cur is not None and s["at"] - cur["at"] < max(0.5 * min(s["span_s"], 60.0), 0.05):
            cur["_nodes"].add(s["node"])
            cur["cpu_cores"] += s["cpu_cores"] or 0.0
            cur["rss_bytes"] += s["rss_peak_bytes"] or s["rss_bytes"] or 0
            if s["gpu_util"] is not None:
                cur["_utils"].append(s["gpu_util"])
            if s["gpu_memory_bytes"] is not None:
                cur["gpu_memory_bytes"] = (cur["gpu_memory_bytes"] or 0) + s["gpu_memory_bytes"]
            continue
        cur = {
            "at": s["at"],
            "span_s": s["span_s"],
            "attempt": s["attempt"],
            "_nodes": {s["node"]},
            "cpu_cores": s["cpu_cores"] or 0.0,
            "rss_bytes": s["rss_peak_bytes"] or s["rss_bytes"] or 0,
            "gpu_memory_bytes": s["gpu_memory_bytes"],
            "_utils": [] if s["gpu_util"] is None else [s["gpu_util"]],
        }
        points.append(cur)
    for p in points:
        nodes, utils = p.pop("_nodes"), p.pop("_utils")
        p["nodes"] = len(nodes)
        p["gpu_util"] = sum(utils) / len(utils) if utils else None
    return points


def plot_target(path: Path | str) -> Path:
    """`path` checked before any work is done: a .png, .svg or .pdf file in an existing folder."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise BadInput("plot", str(path), "must end in " + ", ".join(PLOT_SUFFIXES))
    if p.is_dir():
        raise BadInput("plot", str(path), "is a directory; give a file name such as report.png")
    if not p.parent.is_dir():
        raise BadInput("plot", str(path), f"its folder {p.parent} does not exist")
    return p


_TIME_UNITS = (("seconds", 1.0, 600.0), ("minutes", 60.0, 36000.0), ("hours", 3600.0, math.inf))


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write the figure to a temporary name beside `path`, then rename: a reader never sees half."""
    plt = _plt()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format=path.suffix.lower().lstrip("."))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def plot_job(report: dict, samples: Sequence[dict], path: Path | str) -> Path:
    """Utilisation over time: CPU cores used against those requested, memory against the request, and
    GPU utilisation where the job holds GPUs."""
    out = plot_target(path)
    plt = _plt()
    points = usage_series(samples)
    gpu = bool(report["gpus"]) or any(p["gpu_util"] is not None for p in points)
    fig, axes = plt.subplots(3 if gpu else 2, 1, figsize=(8, 7 if gpu else 5.2), sharex=True)
    # Each point is a mean over the interval that ends at it: drawn as a step over that interval.
    start = min((p["at"] - p["span_s"] for p in points), default=0.0)
    end = max((p["at"] for p in points), default=60.0)
    unit, scale = next((u, k) for u, k, upto in _TIME_UNITS if end - start <= upto)
    xs = [(p["at"] - start) / scale for p in points]
    if points:
        xs.insert(0, (points[0]["at"] - points[0]["span_s"] - start) / scale)
        points = [points[0], *points]

    def step(ax: Any, ys: list, **kw: Any) -> None:
        ax.plot(xs, ys, drawstyle="steps-pre", lw=1.4, **kw)

    ax = axes[0]
    step(ax, [p["cpu_cores"] for p in points], color="#2f6db5", label="cores used")
    ax.axhline(report["cpus"], color="grey", ls="--", lw=1, label=f"requested ({report['cpus']:g})")
    ax.set_ylabel("CPU cores")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    eff = report["cpu_efficiency"]
    ax.set_title(
        f"job {report['id']} ({report['name']}): CPU efficiency {'-' if eff is None else f'{eff:.0%}'}",
        fontsize=10,
    )
    ax = axes[1]
    step(ax, [p["rss_bytes"] / 2**30 for p in points], color="#d2691e", label="memory used (peak)")
    if report["memory_requested_bytes"]:
        ax.axhline(
            report["memory_requested_bytes"] / 2**30,
            color="grey",
            ls="--",
            lw=1,
            label=f"requested ({gib(report['memory_requested_bytes'])})",
        )
    ax.set_ylabel("memory (GiB)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    if gpu:
        ax = axes[2]
        utils = [math.nan if p["gpu_util"] is None else 100 * p["gpu_util"] for p in points]
        step(ax, utils, color="#2e8b57", label="GPU utilisation")
        ax.set_ylabel("GPU util (%)")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel(f"{unit} since the attempt started")
    for a in axes:
        a.grid(True, alpha=0.25)
    if not points:
        axes[0].text(0.5, 0.5, "no samples", transform=axes[0].transAxes, ha="center", color="grey")
    fig.tight_layout()
    return _save(fig, out)


def plot_group(report: dict, path: Path | str) -> Path:
    """Efficiency per user (CPU efficiency and GPU utilisation, bars), or per job for one user."""
    out = plot_target(path)
    plt = _plt()
    per_user = len(report["by_user"]) > 1
    if per_user:
        rows = report["by_user"][:30]
        labels = [r["user"] for r in rows]
    else:
        rows = sorted(report["jobs"], key=lambda d: -(d["cost_usd"] or 0))[:40]
        labels = [f"{d['id']}" for d in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 2), 4.5))
    xs = list(range(len(rows)))
    cpu = [100 * (r["cpu_efficiency"] or 0) for r in rows]
    mem = [100 * (r["memory_efficiency"] or 0) for r in rows]
    gpu = [100 * (r["gpu_utilization"] or 0) for r in rows]
    w = 0.27
    ax.bar([x - w for x in xs], cpu, w, label="CPU efficiency", color="#2f6db5")
    ax.bar(xs, mem, w, label="memory efficiency", color="#d2691e")
    ax.bar([x + w for x in xs], gpu, w, label="GPU utilisation", color="#2e8b57")
    ax.set_xticks(xs)
    ax.set_xticklabels(
        labels, rotation=60 if len(rows) > 8 else 0, ha="right" if len(rows) > 8 else "center", fontsize=8
    )
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_xlabel("user" if per_user else "job (the most costly)")
    t = report["totals"]
    eff = t["cpu_efficiency"]
    ax.set_title(
        f"{t['jobs']} jobs, ${t['cost_usd']:.2f}: CPU efficiency {'-' if eff is None else f'{eff:.0%}'}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.25)
    if not rows:
        ax.text(0.5, 0.5, "no jobs", transform=ax.transAxes, ha="center", color="grey")
    fig.tight_layout()
    return _save(fig, out)
