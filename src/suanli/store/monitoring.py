"""The monitor's tables: samples (compacted as they age), per-attempt usage totals, alerts and their
deliveries to notifiers. Written through the store's one writer, each change one transaction."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from suanli.store import models as m
from suanli.store.records import iso
from suanli.store.store import Store

# (level, rows older than this many seconds, merged into buckets of this many seconds)
COMPACTION = ((0, 3600.0, 60.0), (1, 86400.0, 600.0))
SAMPLE_FIELDS = (
    "job_id",
    "attempt",
    "node",
    "at",
    "span_s",
    "level",
    "cpu_seconds",
    "cpu_cores",
    "rss_bytes",
    "rss_peak_bytes",
    "gpu_util",
    "gpu_memory_bytes",
    "read_bytes",
    "write_bytes",
    "net_bytes",
    "log_bytes",
    "metric_points",
    "gpu_energy_j",
)
USAGE_FIELDS = (
    "job_id",
    "attempt",
    "first_at",
    "last_at",
    "samples",
    "cpu_seconds",
    "cpu_source",
    "rss_peak_bytes",
    "gpu_seconds_used",
    "gpu_memory_peak_bytes",
    "read_bytes",
    "write_bytes",
    "gpu_energy_j",
)
ALERT_FIELDS = (
    "id",
    "rule",
    "kind",
    "job_id",
    "attempt",
    "subject",
    "user",
    "project",
    "message",
    "value",
    "action",
    "opened_at",
    "last_at",
    "count",
    "closed_at",
    "acted_at",
    "acted",
)


def _row(obj: object, fields: Sequence[str]) -> dict:
    return {f: getattr(obj, f) for f in fields}


@dataclass(frozen=True)
class AlertUpdate:
    """What an evaluation found for one subject: open (or repeat) an alert, or close it."""

    rule: str
    kind: str
    subject: str
    holds: bool
    message: str = ""
    value: float | None = None
    action: str = "notify"
    job_id: int | None = None
    attempt: int | None = None
    user: str | None = None
    project: str | None = None


def alert_json(a: dict) -> dict:
    out = dict(a)
    for f in ("opened_at", "last_at", "closed_at", "acted_at"):
        out[f] = iso(a[f])
    out["open"] = a["closed_at"] is None
    return out


class MonitorStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- samples and usage ----------------------------------------------------------------------

    def record(self, samples: Iterable[dict], usage: Iterable[dict]) -> None:
        """Samples and the attempts' new totals, in one transaction."""
        samples, usage = list(samples), list(usage)
        if not samples and not usage:
            return
        with self.store._tx() as s:
            if samples:
                s.execute(m.Sample.__table__.insert(), samples)
            if usage:  # the attempts' rows in one read, not one per attempt
                found = s.execute(
                    select(m.AttemptUsage).where(m.AttemptUsage.job_id.in_({u["job_id"] for u in usage}))
                ).scalars()
                rows = {(r.job_id, r.attempt): r for r in found}
                for u in usage:
                    row = rows.get((u["job_id"], u["attempt"]))
                    if row is None:
                        s.add(m.AttemptUsage(**u))
                    else:
                        for k, v in u.items():
                            setattr(row, k, v)

    def samples(self, job_id: int, attempt: int | None = None, since: float | None = None) -> list[dict]:
        q = select(m.Sample).where(m.Sample.job_id == job_id).order_by(m.Sample.at, m.Sample.id)
        if attempt is not None:
            q = q.where(m.Sample.attempt == attempt)
        if since is not None:
            q = q.where(m.Sample.at > since)
        with self.store._read() as s:
            return [_row(r, SAMPLE_FIELDS) for r in s.execute(q).scalars()]

    def last_samples(self, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int, str], dict]:
        """The newest sample of each node of each (job, attempt)."""
        if not keys:
            return {}
        job_ids = sorted({j for j, _ in keys})
        newest = (
            select(func.max(m.Sample.id).label("sid"))
            .where(m.Sample.job_id.in_(job_ids))
            .group_by(m.Sample.job_id, m.Sample.attempt, m.Sample.node)
            .subquery()
        )
        with self.store._read() as s:
            rows = s.execute(select(m.Sample).join(newest, m.Sample.id == newest.c.sid)).scalars()
            return {
                (r.job_id, r.attempt, r.node): _row(r, SAMPLE_FIELDS)
                for r in rows
                if (r.job_id, r.attempt) in keys
            }

    def usage(self, job_ids: Collection[int] | None = None) -> dict[tuple[int, int], dict]:
        q = select(m.AttemptUsage)
        if job_ids is not None:
            q = q.where(m.AttemptUsage.job_id.in_(list(job_ids)))
        with self.store._read() as s:
            return {(r.job_id, r.attempt): _row(r, USAGE_FIELDS) for r in s.execute(q).scalars()}

    def finalize(
        self, job_id: int, attempt: int, cpu_seconds: float | None, rss_peak_bytes: int | None
    ) -> None:
        """The attempt's own account once it ended (the supervisor's getrusage of its children): the
        exact CPU time seff reports, and the largest single process's peak."""
        with self.store._tx() as s:
            row = s.get(m.AttemptUsage, (job_id, attempt))
            now = time.time()
            if row is None:
                row = m.AttemptUsage(
                    job_id=job_id,
                    attempt=attempt,
                    first_at=now,
                    last_at=now,
                    samples=0,
                    cpu_seconds=0.0,
                    rss_peak_bytes=0,
                    read_bytes=0,
                    write_bytes=0,
                )
                s.add(row)
            if cpu_seconds is not None:
                row.cpu_seconds, row.cpu_source = max(cpu_seconds, row.cpu_seconds or 0.0), "rusage"
            if rss_peak_bytes is not None:
                row.rss_peak_bytes = max(row.rss_peak_bytes or 0, rss_peak_bytes)

    def compact(self, now: float | None = None, batch: int = 20_000) -> int:
        """Merge aged samples into coarser buckets; returns how many rows were merged. Each bucket holds
        the span-weighted means of rates, the highest peaks, and the last cumulative counters. A sample
        belongs to the bucket its span ends in: (k - 1) x bucket < at <= k x bucket."""
        now = time.time() if now is None else now
        merged = 0
        for level, age, bucket in COMPACTION:
            cutoff = (now - age) // bucket * bucket
            with self.store._tx() as s:
                rows = list(
                    s.execute(
                        select(m.Sample)
                        .where(m.Sample.level == level, m.Sample.at <= cutoff)
                        .order_by(m.Sample.at)
                        .limit(batch)
                    ).scalars()
                )
                if len(rows) == batch:  # the last bucket may go on past the batch: merge it next time
                    last = math.ceil(rows[-1].at / bucket)
                    rows = [r for r in rows if math.ceil(r.at / bucket) < last] or rows
                if not rows:
                    continue
                groups: dict[tuple, list[m.Sample]] = {}
                for r in rows:
                    groups.setdefault((r.job_id, r.attempt, r.node, math.ceil(r.at / bucket)), []).append(r)
                out = [_merge(g, level + 1) for g in groups.values()]
                s.execute(delete(m.Sample).where(m.Sample.id.in_([r.id for r in rows])))
                s.execute(m.Sample.__table__.insert(), out)
                merged += len(rows)
        return merged

    def history(self, pairs: Collection[tuple[str, str]], runs: int) -> dict[tuple[str, str], list[dict]]:
        """The last `runs` successful runs of each (job name, user) with their measured use, newest
        first: peak memory, CPU time and wall time of the attempt that succeeded."""
        if not pairs:
            return {}
        names, users = {n for n, _ in pairs}, {u for _, u in pairs}
        q = (
            select(
                m.Job.name,
                m.Job.user,
                m.Job.cpus,
                m.Attempt.started_at,
                m.Attempt.ended_at,
                m.AttemptUsage.rss_peak_bytes,
                m.AttemptUsage.cpu_seconds,
            )
            .join(m.Attempt, m.Attempt.job_id == m.Job.id)
            .join(
                m.AttemptUsage,
                (m.AttemptUsage.job_id == m.Attempt.job_id) & (m.AttemptUsage.attempt == m.Attempt.number),
            )
            .where(
                m.Job.name.in_(names),
                m.Job.user.in_(users),
                m.Job.state == "SUCCEEDED",
                m.Attempt.exit_code == 0,
            )
            .order_by(m.Job.id.desc())
        )
        out: dict[tuple[str, str], list[dict]] = {}
        with self.store._read() as s:
            for name, user, cpus, start, end, peak, cpu in s.execute(q):
                found = out.setdefault((name, user), [])
                if (name, user) in pairs and len(found) < runs:
                    wall = max((end or start) - start, 1e-9)
                    found.append(
                        {
                            "rss_peak_bytes": peak,
                            "cpu_seconds": cpu,
                            "wall_seconds": wall,
                            "cores_used": cpu / wall,
                            "cpus": cpus,
                        }
                    )
        return {k: v for k, v in out.items() if k in pairs and v}

    # ---- alerts ---------------------------------------------------------------------------------

    def apply_alerts(
        self,
        updates: Iterable[AlertUpdate],
        notifiers: int,
        now: float | None = None,
        send_closed: Collection[int] = (),
    ) -> list[dict]:
        """Open, repeat or close alerts; a newly opened one is queued for every notifier (a closed one
        for those that asked for it) in the same transaction. Returns the alerts opened."""
        now = time.time() if now is None else now
        opened = []
        with self.store._tx() as s:
            for u in updates:
                row = s.execute(
                    select(m.Alert).where(
                        m.Alert.rule == u.rule, m.Alert.subject == u.subject, m.Alert.closed_at.is_(None)
                    )
                ).scalar_one_or_none()
                if row is not None and u.holds:
                    row.count += 1
                    row.last_at, row.message, row.value = now, u.message, u.value
                elif row is not None:
                    row.closed_at = now
                    s.add_all(
                        m.Delivery(alert_id=row.id, notifier=i, event="closed", created_at=now, next_at=now)
                        for i in send_closed
                    )
                elif u.holds:
                    row = m.Alert(
                        rule=u.rule,
                        kind=u.kind,
                        job_id=u.job_id,
                        attempt=u.attempt,
                        subject=u.subject,
                        user=u.user,
                        project=u.project,
                        message=u.message,
                        value=u.value,
                        action=u.action,
                        opened_at=now,
                        last_at=now,
                        count=1,
                    )
                    s.add(row)
                    s.flush()
                    s.add_all(
                        m.Delivery(alert_id=row.id, notifier=i, event="opened", created_at=now, next_at=now)
                        for i in range(notifiers)
                    )
                    opened.append(_row(row, ALERT_FIELDS))
        return opened

    def close_alerts(self, job_id: int, attempt: int | None = None) -> None:
        """An attempt that ended ends its alerts (without notifying: the job's end says it)."""
        q = update(m.Alert).where(m.Alert.job_id == job_id, m.Alert.closed_at.is_(None))
        if attempt is not None:
            q = q.where(m.Alert.attempt == attempt)
        with self.store._tx() as s:
            s.execute(q.values(closed_at=time.time()))

    def mark_acted(self, alert_id: int, what: str) -> None:
        with self.store._tx() as s:
            s.execute(update(m.Alert).where(m.Alert.id == alert_id).values(acted_at=time.time(), acted=what))

    def alerts(
        self,
        *,
        open_only: bool = False,
        job_ids: Collection[int] | None = None,
        users: Collection[str] | None = None,
        projects: Collection[str] | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        q = select(m.Alert).order_by(m.Alert.id.desc()).limit(limit)
        if open_only:
            q = q.where(m.Alert.closed_at.is_(None))
        if job_ids is not None:
            q = q.where(m.Alert.job_id.in_(list(job_ids)))
        if users is not None:
            q = q.where(m.Alert.user.in_(list(users)))
        if projects is not None:
            q = q.where(m.Alert.project.in_(list(projects)))
        if since is not None:
            q = q.where(m.Alert.last_at >= since)
        with self.store._read() as s:
            return [_row(r, ALERT_FIELDS) for r in s.execute(q).scalars()]

    # ---- deliveries -----------------------------------------------------------------------------

    def due_deliveries(self, now: float | None = None, limit: int = 100) -> list[tuple[dict, dict]]:
        """(delivery, its alert) pairs whose time has come, oldest first."""
        now = time.time() if now is None else now
        q = (
            select(m.Delivery, m.Alert)
            .join(m.Alert, m.Alert.id == m.Delivery.alert_id)
            .where(m.Delivery.delivered_at.is_(None), m.Delivery.next_at <= now)
            .order_by(m.Delivery.id)
            .limit(limit)
        )
        fields = ("id", "alert_id", "notifier", "event", "created_at", "tries", "error")
        with self.store._read() as s:
            return [(_row(d, fields), _row(a, ALERT_FIELDS)) for d, a in s.execute(q).tuples()]

    def delivered(
        self, delivery_id: int, error: str | None, retry_at: float | None = None, *, give_up: bool = False
    ) -> None:
        """Record a try: delivered (no error), failed and due again at `retry_at`, or given up (its
        notifier was removed from the configuration)."""
        now = time.time()
        with self.store._tx() as s:
            d = s.get(m.Delivery, delivery_id)
            if d is None:
                return
            d.tries += 1
            d.error = error
            if error is None or give_up:
                d.delivered_at = now
            else:
                d.next_at = retry_at if retry_at is not None else now

    def deliveries(self, alert_id: int | None = None) -> list[dict]:
        q = select(m.Delivery).order_by(m.Delivery.id)
        if alert_id is not None:
            q = q.where(m.Delivery.alert_id == alert_id)
        fields = (
            "id",
            "alert_id",
            "notifier",
            "event",
            "created_at",
            "next_at",
            "tries",
            "delivered_at",
            "error",
        )
        with self.store._read() as s:
            return [_row(d, fields) for d in s.execute(q).scalars()]


def _merge(rows: list[m.Sample], level: int) -> dict:
    last = max(rows, key=lambda r: (r.at, r.id))
    span = sum(r.span_s for r in rows) or 1e-9

    def weighted(attr: str) -> float | None:
        pairs = [(getattr(r, attr), r.span_s) for r in rows if getattr(r, attr) is not None]
        if not pairs:
            return None
        return sum(v * w for v, w in pairs) / (sum(w for _, w in pairs) or 1e-9)

    def peak(attr: str) -> int | None:
        values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return max(values) if values else None

    out = _row(last, SAMPLE_FIELDS)
    out.update(
        level=level,
        span_s=span,
        cpu_cores=weighted("cpu_cores") or 0.0,
        gpu_util=weighted("gpu_util"),
        rss_peak_bytes=peak("rss_peak_bytes"),
        gpu_memory_bytes=peak("gpu_memory_bytes"),
    )
    return out
