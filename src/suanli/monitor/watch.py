"""The monitor the agent runs: turns readings of running attempts into stored samples and usage totals,
evaluates the alert rules on them, and says which jobs a rule's action stops.

A rule about a window holds once every sample interval of the last `window` seconds was below its
threshold (a run of consecutive quiet intervals at least `window` long). Utilisation is measured over
each interval from cumulative counters, so a job that alternates work with pauses shorter than the
window is never flagged, and one that stops working is flagged within the window plus one interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from suanli.monitor.collect import Reading
from suanli.monitor.cost import hourly_usd
from suanli.monitor.report import group_report
from suanli.monitor.rules import MonitorConfig, Rule
from suanli.store.identity import period_start
from suanli.store.monitoring import AlertUpdate, MonitorStore
from suanli.store.records import AttemptRecord, JobRecord, attempt_slices
from suanli.store.store import Store

log = logging.getLogger("suanli.monitor")
COMPACT_EVERY_S = 60.0
PROJECT_COST_EVERY_S = 60.0


@dataclass
class _Node:
    at: float
    cpu_seconds: float
    read_bytes: int = 0
    write_bytes: int = 0
    gpu_energy_j: float | None = None
    gpu_energy_first: float | None = None


@dataclass
class _Attempt:
    """What the monitor keeps of one running attempt between samples."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    quiet_since: dict[str, float | None] = field(default_factory=dict)  # rule name -> start of the run
    log_bytes: int = 0
    metric_points: int = 0
    last_util: float | None = None
    rss_bytes: int = 0
    gpu_memory_bytes: int | None = None
    cpu_cores: float = 0.0
    gpu_util: float | None = None
    energy0: float | None = None  # the devices' energy counter when first read


@dataclass(frozen=True)
class Action:
    """A rule's action on a job: `cancel` or `requeue` it, with the reason recorded."""

    job_id: int
    attempt: int
    action: str
    reason: str
    alert_id: int


def utilisation(job: JobRecord, cpu_cores: float, gpu_util: float | None) -> float:
    """The share 0-1 of what the job holds that it uses: its GPUs where it holds any and they are
    read, else its CPU cores."""
    if job.gpus and gpu_util is not None:
        return gpu_util
    return cpu_cores / max(job.cpus, 1e-9) if job.cpus else cpu_cores


def job_cost_usd(job: JobRecord, now: float) -> float:
    """What the job's attempts have held so far, at the price of what they hold."""
    total = 0.0
    for a in job.attempts:
        end = a.ended_at if a.ended_at is not None else now
        for s in attempt_slices(job, a):
            total += hourly_usd(s.gpus, job.accelerator, s.cpus) * max(0.0, end - a.started_at) / 3600
    return total


class Monitor:
    def __init__(self, store: Store, config: MonitorConfig | None = None) -> None:
        self.store = store
        self.db = MonitorStore(store)
        self.config = config or MonitorConfig()
        self._attempts: dict[tuple[int, int], _Attempt] = {}
        self._last_sample = 0.0
        self._last_compact = 0.0
        self._last_project_cost = 0.0
        self._acted: set[int] = set()
        self._open: set[tuple[str, str]] | None = None  # (rule, subject) of the open alerts

    @property
    def interval(self) -> float:
        return self.config.sample_interval_s

    def due(self, now: float) -> bool:
        return self.interval > 0 and now - self._last_sample >= self.interval

    # ---- samples --------------------------------------------------------------------------------

    def observe(
        self,
        running: Iterable[tuple[JobRecord, AttemptRecord]],
        readings: dict[tuple[int, int], dict[str, Reading]],
        progress: dict[tuple[int, int], tuple[int, int]],
        now: float | None = None,
    ) -> list[Action]:
        """Store a sample per node of each running attempt, evaluate the rules, and return the
        actions due. `progress`: (log bytes, metric points) per attempt."""
        now = time.time() if now is None else now
        self._last_sample = now
        running = list(running)
        keys = {(j.id, a.number) for j, a in running}
        for key in set(self._attempts) - keys:
            del self._attempts[key]
        fresh = [(j, a) for j, a in running if (j.id, a.number) not in self._attempts]
        if fresh:
            self._load(fresh, now)
        samples, usage = [], []
        for job, attempt in running:
            key = (job.id, attempt.number)
            state = self._attempts[key]
            log_bytes, points = progress.get(key, (state.log_bytes, state.metric_points))
            moved = log_bytes != state.log_bytes or points != state.metric_points
            state.log_bytes, state.metric_points = log_bytes, points
            rows = self._samples(job, attempt, state, readings.get(key, {}), now)
            samples.extend(rows)
            if rows:
                usage.append(state.usage)
                start = min(r["at"] - r["span_s"] for r in rows)
                self._quiet(job, state, start, state.cpu_cores, state.gpu_util, moved)
        self.db.record(samples, usage)
        actions = self._evaluate(running, now)
        if now - self._last_compact > COMPACT_EVERY_S:
            self._last_compact = now
            self.db.compact(now)
        return actions

    def _load(self, fresh: list[tuple[JobRecord, AttemptRecord]], now: float) -> None:
        """An attempt first seen (a new one, or one this agent adopted after a restart): its totals,
        the last sample of each node, and the quiet runs its recent samples show, so counters and
        windows go on from where they were (an open alert is not closed and opened again)."""
        keys = {(j.id, a.number) for j, a in fresh}
        usage = self.db.usage({j for j, _ in keys})
        last = self.db.last_samples(keys)
        longest = max((r.window_s for r in self.config.active()), default=0.0)
        for job, attempt in fresh:
            key = (job.id, attempt.number)
            state = self._attempts[key] = _Attempt()
            state.usage = usage.get(key) or {}
            if not state.usage:
                continue  # a new attempt: nothing stored yet
            for (j, a, node), row in last.items():
                if (j, a) == key:
                    state.nodes[node] = _Node(
                        row["at"],
                        row["cpu_seconds"],
                        row["read_bytes"],
                        row["write_bytes"],
                        row["gpu_energy_j"],
                    )
                    state.log_bytes, state.metric_points = row["log_bytes"], row["metric_points"]
            by_time: dict[float, list[dict]] = {}
            for row in self.db.samples(job.id, attempt.number, since=now - longest - 2 * self.interval):
                by_time.setdefault(row["at"], []).append(row)
            progress = None
            for rows in by_time.values():
                utils = [r["gpu_util"] for r in rows if r["gpu_util"] is not None]
                mark = (sum(r["log_bytes"] for r in rows), sum(r["metric_points"] for r in rows))
                self._quiet(
                    job,
                    state,
                    min(r["at"] - r["span_s"] for r in rows),
                    sum(r["cpu_cores"] for r in rows),
                    sum(utils) / len(utils) if utils else None,
                    progress is not None and mark != progress,
                )
                progress = mark

    def _samples(
        self,
        job: JobRecord,
        attempt: AttemptRecord,
        state: _Attempt,
        readings: dict[str, Reading],
        now: float,
    ) -> list[dict]:
        rows = []
        for node, r in readings.items():
            prev = state.nodes.get(node)
            start = prev.at if prev else attempt.started_at
            span = max(r.at - start, 1e-3)
            cpu = max(r.cpu_seconds, prev.cpu_seconds if prev else 0.0)
            cores = max(0.0, cpu - (prev.cpu_seconds if prev else 0.0)) / span
            read = max(r.read_bytes, prev.read_bytes if prev else 0)
            write = max(r.write_bytes, prev.write_bytes if prev else 0)
            state.nodes[node] = _Node(r.at, cpu, read, write, r.gpu_energy_j)
            rows.append(
                {
                    "job_id": job.id,
                    "attempt": attempt.number,
                    "node": node,
                    "at": r.at,
                    "span_s": span,
                    "level": 0,
                    "cpu_seconds": cpu,
                    "cpu_cores": cores,
                    "rss_bytes": r.rss_bytes,
                    "rss_peak_bytes": r.rss_bytes,
                    "gpu_util": r.gpu_util,
                    "gpu_memory_bytes": r.gpu_memory_bytes,
                    "read_bytes": read,
                    "write_bytes": write,
                    "net_bytes": r.net_bytes,
                    "log_bytes": state.log_bytes,
                    "metric_points": state.metric_points,
                    "gpu_energy_j": r.gpu_energy_j,
                }
            )
        if not rows:
            return rows
        # The attempt as a whole: sums over its nodes.
        state.cpu_cores = sum(r["cpu_cores"] for r in rows)
        utils = [r["gpu_util"] for r in rows if r["gpu_util"] is not None]
        state.gpu_util = sum(utils) / len(utils) if utils else None
        state.rss_bytes = sum(r["rss_bytes"] for r in rows)
        mems = [r["gpu_memory_bytes"] for r in rows if r["gpu_memory_bytes"] is not None]
        state.gpu_memory_bytes = sum(mems) if mems else None
        span = max(r["span_s"] for r in rows)
        u = state.usage
        u.update(
            job_id=job.id,
            attempt=attempt.number,
            first_at=u.get("first_at") or attempt.started_at,
            last_at=now,
            samples=(u.get("samples") or 0) + 1,
            cpu_seconds=max(u.get("cpu_seconds") or 0.0, sum(n.cpu_seconds for n in state.nodes.values())),
            cpu_source=u.get("cpu_source") or "samples",
            rss_peak_bytes=max(u.get("rss_peak_bytes") or 0, state.rss_bytes),
            read_bytes=sum(n.read_bytes for n in state.nodes.values()),
            write_bytes=sum(n.write_bytes for n in state.nodes.values()),
        )
        if state.gpu_util is not None:
            u["gpu_seconds_used"] = (u.get("gpu_seconds_used") or 0.0) + state.gpu_util * job.gpus * span
        if state.gpu_memory_bytes is not None:
            u["gpu_memory_peak_bytes"] = max(u.get("gpu_memory_peak_bytes") or 0, state.gpu_memory_bytes)
        energies = [n.gpu_energy_j for n in state.nodes.values() if n.gpu_energy_j is not None]
        if energies:
            if state.energy0 is None:
                state.energy0 = sum(energies) - (u.get("gpu_energy_j") or 0.0)
            u["gpu_energy_j"] = sum(energies) - state.energy0
        return rows

    def _quiet(
        self,
        job: JobRecord,
        state: _Attempt,
        start: float,
        cpu_cores: float,
        gpu_util: float | None,
        moved: bool,
    ) -> None:
        """Advance each window rule's run of quiet intervals by one interval starting at `start` (None:
        the last interval was not quiet)."""
        util = utilisation(job, cpu_cores, gpu_util)
        for rule in self.config.active():
            if rule.kind == "idle":
                quiet = util < rule.threshold
            elif rule.kind == "stalled":
                gpu_quiet = gpu_util is None or gpu_util < rule.threshold
                quiet = not moved and cpu_cores / max(job.cpus, 1.0) < rule.threshold and gpu_quiet
            else:
                continue
            if not quiet:
                state.quiet_since[rule.name] = None
            elif state.quiet_since.get(rule.name) is None:
                state.quiet_since[rule.name] = start

    # ---- rules ----------------------------------------------------------------------------------

    def _evaluate(self, running: list[tuple[JobRecord, AttemptRecord]], now: float) -> list[Action]:
        updates: list[AlertUpdate] = []
        for job, attempt in running:
            state = self._attempts.get((job.id, attempt.number))
            if state is None:
                continue
            for rule in self.config.active():
                found = self._job_rule(rule, job, attempt, state, now)
                if found is not None:
                    updates.append(_job_update(rule, job, attempt, *found))
        updates.extend(self._node_rules())
        if now - self._last_project_cost > PROJECT_COST_EVERY_S:
            self._last_project_cost = now
            updates.extend(self._project_rules(now))
        self._apply(updates, now)
        return self._actions(running, now)

    def _job_rule(
        self, rule: Rule, job: JobRecord, attempt: AttemptRecord, state: _Attempt, now: float
    ) -> tuple[bool, str, float | None] | None:
        """(holds, message, value) of a rule about one job; None where it does not apply."""
        t = rule.threshold
        if rule.kind in ("idle", "stalled"):
            since = state.quiet_since.get(rule.name)
            holds = since is not None and now - since >= rule.window_s
            if rule.kind == "idle":
                what = "GPU" if job.gpus and state.gpu_util is not None else "CPU"
                util = utilisation(job, state.cpu_cores, state.gpu_util)
                span = _dur(now - (since or now))
                msg = (
                    f"job {job.id} ({job.name}) used {util:.0%} of its {what} for {span}"
                    f" (threshold {t:.0%} over {_dur(rule.window_s)})"
                )
                return holds, msg, util
            msg = (
                f"job {job.id} ({job.name}) made no progress for {_dur(now - (since or now))}: no log line, "
                f"no metric, CPU and GPU near zero"
            )
            return holds, msg, now - (since or now)
        if rule.kind == "memory":
            return self.memory_rule(rule, job, state.rss_bytes)
        if rule.kind == "overdue":
            expected = job.spec.expected_duration_s
            if not expected:
                return None
            ran = now - attempt.started_at
            return (
                ran > t * expected,
                (
                    f"job {job.id} ({job.name}) has run {_dur(ran)}, over {t:g} x its expected_duration "
                    f"{_dur(expected)}"
                ),
                ran / expected,
            )
        if rule.kind == "cost":
            cost = job_cost_usd(job, now)
            return cost > t, f"job {job.id} ({job.name}) has cost ${cost:.2f}, over its budget ${t:.2f}", cost
        return None

    @staticmethod
    def memory_rule(rule: Rule, job: JobRecord, rss_bytes: int) -> tuple[bool, str, float] | None:
        if not job.memory_bytes:
            return None
        share = rss_bytes / job.memory_bytes
        return (
            share >= rule.threshold,
            (
                f"job {job.id} ({job.name}) uses {rss_bytes / 2**30:.2f} GiB, {share:.0%} of the "
                f"{job.memory_bytes / 2**30:.2f} GiB it requested (it is stopped above 100%)"
            ),
            share,
        )

    def check_memory(self, job: JobRecord, attempt: AttemptRecord, rss_bytes: int) -> None:
        """The memory rule between samples (the agent reads memory every second, to stop a job that
        passes its request): the alert comes before the stop."""
        for rule in self.config.active():
            if rule.kind != "memory":
                continue
            found = self.memory_rule(rule, job, rss_bytes)
            if found is not None and found[0]:
                self._apply([_job_update(rule, job, attempt, *found)], time.time())

    def _node_rules(self) -> list[AlertUpdate]:
        rules = [r for r in self.config.active() if r.kind == "node_lost"]
        if not rules:
            return []
        out = []
        for node in self.store.nodes(usage=False):
            for rule in rules:
                lost = node.status == "LOST"
                out.append(
                    AlertUpdate(
                        rule=rule.name,
                        kind="node_lost",
                        subject=f"node {node.name}",
                        holds=lost,
                        message=f"node {node.name} was lost from the pool ({node.pool or 'local'})",
                    )
                )
        return out

    def _project_rules(self, now: float) -> list[AlertUpdate]:
        out = []
        for rule in self.config.active():
            if rule.kind != "project_cost":
                continue
            since = period_start(rule.period, now)
            for project, budget in rule.budgets.items():
                # The report's own sum (one query), not a read of every job of the project.
                report = group_report(self.store, projects=[project], since=since, limit=0, now=now)
                cost = report["totals"]["cost_usd"]
                out.append(
                    AlertUpdate(
                        rule=rule.name,
                        kind="project_cost",
                        subject=f"project {project}",
                        holds=cost > budget,
                        message=f"project {project} has spent ${cost:.2f} this {rule.period}, "
                        f"over its ${budget:.2f}",
                        value=cost,
                        project=project,
                    )
                )
        return out

    def _apply(self, updates: list[AlertUpdate], now: float) -> None:
        """Store what changed: alerts that hold, and those that stopped holding while open (most
        evaluations find nothing, and write nothing)."""
        if self._open is None:
            self._open = {(a["rule"], a["subject"]) for a in self.db.alerts(open_only=True, limit=100_000)}
        updates = [u for u in updates if u.holds or (u.rule, u.subject) in self._open]
        if not updates:
            return
        notifiers = self.config.notifiers
        resolved = [i for i, n in enumerate(notifiers) if n.send_resolved]
        for alert in self.db.apply_alerts(updates, len(notifiers), now, send_closed=resolved):
            log.warning("alert %s: %s", alert["rule"], alert["message"])
        for u in updates:
            (self._open.add if u.holds else self._open.discard)((u.rule, u.subject))

    def _actions(self, running: list[tuple[JobRecord, AttemptRecord]], now: float) -> list[Action]:
        """The cancel/requeue actions whose grace period has passed while their alert still holds."""
        ids = {j.id for j, _ in running}
        rules = {r.name: r for r in self.config.active()}
        if not ids or all(r.action == "notify" for r in rules.values()):
            return []
        out = []
        for alert in self.db.alerts(open_only=True, job_ids=ids):
            rule = rules.get(alert["rule"])
            if rule is None or rule.action == "notify" or alert["acted_at"] or alert["id"] in self._acted:
                continue
            if now - alert["opened_at"] < rule.grace_s:
                continue
            self._acted.add(alert["id"])
            out.append(
                Action(
                    alert["job_id"],
                    alert["attempt"],
                    rule.action,
                    f"{rule.action} by alert rule {rule.name}: {alert['message']}",
                    alert["id"],
                )
            )
        return out

    def ended(self, job_id: int, attempt: int, result: dict | None) -> None:
        """An attempt ended: keep its own final account and close its alerts."""
        self._attempts.pop((job_id, attempt), None)
        if result and (result.get("cpu_seconds") is not None or result.get("max_rss_bytes") is not None):
            self.db.finalize(job_id, attempt, result.get("cpu_seconds"), result.get("max_rss_bytes"))
        self.db.close_alerts(job_id, attempt)
        if self._open is not None:
            self._open = {(rule, subject) for rule, subject in self._open if subject != f"job {job_id}"}


def _job_update(
    rule: Rule, job: JobRecord, attempt: AttemptRecord, holds: bool, message: str, value: float | None
) -> AlertUpdate:
    return AlertUpdate(
        rule=rule.name, kind=rule.kind, subject=f"job {job.id}", holds=holds, message=message, value=value,
        action=rule.action, job_id=job.id, attempt=attempt.number, user=job.user, project=job.project,
    )  # fmt: skip


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
