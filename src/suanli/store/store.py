"""The one module that writes suanli's state. Every change is one transaction; job state changes go
through `_transition`, which checks legality (jobs/states.py) and appends to the event log.

SQLite (the default) runs in WAL mode with `BEGIN IMMEDIATE` for writes, so concurrent writers queue
on the lock instead of failing; PostgreSQL rows are locked with SELECT ... FOR UPDATE.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text, update
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from suanli.core.errors import BadInput, NotFound, SuanliError
from suanli.jobs.spec import JobSpec
from suanli.jobs.states import JobState, check_transition
from suanli.store import models as m
from suanli.store import secrets as sealed
from suanli.store.paths import default_db_url, normalize_db_url, prepare_sqlite, sqlite_path
from suanli.store.records import AttemptRecord, EventRecord, JobRecord, NodeRecord, NodeSlice, attempt_slices


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    step: int | None
    at: float


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _check_id(job_id: int) -> None:
    if not 0 < job_id < 2**63:
        raise NotFound("job id", job_id, "no such job", hint="see `suanli status` for job ids")


def storable(text: str) -> bool:
    """Text every database here can hold: valid UTF-8 (no lone surrogates) and no NUL (PostgreSQL)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _held_gpus(placement: list | None, whole_job: int) -> int:
    return sum(sl["gpus"] for sl in placement) if placement else whole_job


class StoreUnavailable(SuanliError):
    """The database cannot be used (a full disk, a corrupt or unreadable file, a server down): one line
    naming it, never a traceback."""


def _plain_errors(engine: Engine, where: str) -> None:
    """Turn the database's own failures into StoreUnavailable naming `where` (conflicts and bad SQL,
    which are ours to handle or fix, pass through)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx) -> None:  # type: ignore[no-untyped-def]
        err = ctx.sqlalchemy_exception
        if isinstance(err, OperationalError) or type(err) is DatabaseError:
            detail = " ".join(str(ctx.original_exception).split())[:200]
            raise StoreUnavailable(f"database {where}: {detail}") from None


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, auth = head.partition("://")
    return f"{scheme}://{auth.split(':', 1)[0]}:***@{tail}"


def _validate_url(url: str) -> None:
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise BadInput("db", url, "must be a sqlite:/// or postgresql:// URL")


class Store:
    """suanli's state: nodes, jobs, attempts, metrics, events."""

    def __init__(self, url: str | None = None) -> None:
        self.url = normalize_db_url(url or default_db_url())
        _validate_url(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.path = sqlite_path(self.url)
        if self.is_sqlite:
            prepare_sqlite(self.url)
            self._write_engine = _sqlite_engine(self.url, immediate=True)
            self._read_engine = _sqlite_engine(self.url, immediate=False)
        else:
            self._write_engine = self._read_engine = create_engine(self.url, pool_pre_ping=True)
        where = str(self.path) if self.path else _redacted(self.url)
        for engine in {self._write_engine, self._read_engine}:
            _plain_errors(engine, where)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)
        m.Base.metadata.create_all(self._write_engine)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns newer versions added to a database an older version created."""
        inspector = inspect(self._write_engine)
        for table in (m.Job.__table__, m.Attempt.__table__, m.Node.__table__, m.LedgerHead.__table__):
            have = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c for c in table.columns if c.name not in have]
            if not missing:
                continue
            with self._write_engine.begin() as conn:
                for col in missing:
                    kind = col.type.compile(dialect=self._write_engine.dialect)
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {kind}"))
            for index in table.indexes:
                index.create(self._write_engine, checkfirst=True)

    def file_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the SQLite database file; None if it is gone (or not SQLite). The agent
        compares it with the one it opened, to notice a database removed or replaced under it."""
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def close(self) -> None:
        self._write_engine.dispose()
        self._read_engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    # ---- jobs ---------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> int:
        return self.submit_many([spec])[0]

    def submit_many(
        self, specs: Sequence[JobSpec], key: str | None = None, audit: dict | None = None
    ) -> list[int]:
        """Store jobs as PENDING in one transaction; returns their ids in order. With an idempotency
        `key`, a submission already stored under it returns the ids stored then, and stores nothing.
        `audit` (actor, action, address) is written to the audit log in the same transaction."""
        keys = [None] * len(specs) if key is None else [f"{key}/{i}" for i in range(len(specs))]
        for _ in range(3):
            try:
                return self._submit(specs, keys, audit)
            except IntegrityError:  # a concurrent submit with the same key won (PostgreSQL)
                continue
        return self._submit(specs, keys, audit)

    def _submit(self, specs: Sequence[JobSpec], keys: list[str | None], audit: dict | None) -> list[int]:
        now = time.time()
        with self._tx() as s:
            if keys[0] is not None:
                q = select(m.Job.idempotency_key, m.Job.id).where(m.Job.idempotency_key.in_(keys))
                found = {key: job_id for key, job_id in s.execute(q)}
                if found:
                    return [found[k] for k in keys if k in found]
            rows = [self._job_row(spec, now, key=k) for spec, k in zip(specs, keys, strict=True)]
            s.add_all(rows)
            s.flush()
            s.add_all(
                m.Event(job_id=r.id, at=now, from_state=None, to_state=JobState.PENDING, reason="submitted")
                for r in rows
            )
            if audit is not None:
                ids = ",".join(str(r.id) for r in rows)
                s.add(m.Audit(at=now, target=f"jobs {ids}"[:255], ok=True, detail="", **audit))
            return [r.id for r in rows]

    def find_submission(self, key: str) -> list[int]:
        """Ids of the jobs stored by the submission with idempotency `key` (none if it was not stored)."""
        with self._read() as s:
            rows = s.execute(
                select(m.Job.id)  # keys are KEY/0, KEY/1, ...; "0" sorts right after "/"
                .where(m.Job.idempotency_key >= f"{key}/", m.Job.idempotency_key < f"{key}0")
                .order_by(m.Job.id)
            )
            return [r for (r,) in rows]

    def secrets(self, job_id: int) -> dict[str, str]:
        """The job's secrets in clear, for its processes only."""
        with self._read() as s:
            return sealed.unseal(s.execute(select(m.Job.secrets).where(m.Job.id == job_id)).scalar())

    @classmethod
    def preview(cls, spec: JobSpec) -> JobRecord:
        """The record `submit` would store for `spec` (id 0), without storing it: for dry runs."""
        row = cls._job_row(spec, time.time(), seal=False)
        row.id = 0
        return cls._record(row)

    @staticmethod
    def _job_row(spec: JobSpec, now: float, *, key: str | None = None, seal: bool = True) -> m.Job:
        res = spec.resources
        accel = next(iter(res.accelerators.items()), (None, 0))
        doc = spec.model_dump(mode="json", by_alias=True)
        secrets = doc.get("secrets") or {}
        if secrets:  # the stored spec names them; their values are sealed in their own column
            doc["secrets"] = dict.fromkeys(secrets, "***")
        return m.Job(
            name=spec.name,
            user=spec.user,
            project=spec.project,
            priority=spec.priority,
            state=JobState.PENDING,
            spec=doc,
            idempotency_key=key,
            secrets=sealed.seal(secrets) if seal else None,
            cpus=res.cpus,
            memory_bytes=res.memory_bytes,
            accelerator=accel[0],
            gpus=accel[1],
            num_nodes=spec.num_nodes,
            num_workers=spec.num_workers,
            retries=spec.retries,
            submitted_at=now,
            cancel_requested=False,
        )

    def _lock_job(self, s: Session, job_id: int) -> m.Job:
        _check_id(job_id)
        job = s.execute(select(m.Job).where(m.Job.id == job_id).with_for_update()).scalar_one_or_none()
        if job is None:
            raise NotFound("job id", job_id, "no such job", hint="see `suanli status` for job ids")
        return job

    def _transition(self, s: Session, job: m.Job, new: JobState, reason: str | None, now: float) -> None:
        old = JobState(job.state)
        check_transition(job.id, old, new)
        job.state = new
        job.reason = reason
        if new is JobState.RUNNING and job.started_at is None:
            job.started_at = now
        if new.is_terminal:
            job.ended_at = now
        s.add(m.Event(job_id=job.id, at=now, from_state=old, to_state=new, reason=reason))

    def get(self, job_id: int) -> JobRecord:
        _check_id(job_id)
        with self._read() as s:
            job = s.get(m.Job, job_id)
            if job is None:
                raise NotFound("job id", job_id, "no such job", hint="see `suanli status` for job ids")
            attempts = s.execute(
                select(m.Attempt).where(m.Attempt.job_id == job_id).order_by(m.Attempt.number)
            ).scalars()
            metrics = self._latest_metrics(s, [job_id]).get(job_id)
            return self._record(job, [self._attempt(a) for a in attempts], metrics)

    def list_jobs(
        self,
        states: Iterable[JobState] | None = None,
        *,
        user: str | None = None,
        limit: int | None = None,
        with_attempts: bool = False,
        ids: Collection[int] | None = None,
        projects: Collection[str] | None = None,
        before_id: int | None = None,
        name: str | None = None,
    ) -> list[JobRecord]:
        """Jobs, newest first (only those with `ids`, in `projects`, older than `before_id` (the next
        page), or whose name contains `name`, when given)."""
        q = select(m.Job).order_by(m.Job.id.desc())
        if ids is not None:
            q = q.where(m.Job.id.in_(list(ids)))
        if projects is not None:
            q = q.where(m.Job.project.in_(list(projects)))
        if before_id is not None:
            q = q.where(m.Job.id < before_id)
        if name:
            q = q.where(m.Job.name.contains(name, autoescape=True))
        if states is not None:
            q = q.where(m.Job.state.in_([str(x) for x in states]))
        if user is not None:
            if not storable(user):
                return []  # no stored user has a name that cannot be stored
            q = q.where(m.Job.user == user)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as s:
            jobs = list(s.execute(q).scalars())
            attempts: dict[int, list[AttemptRecord]] = {}
            if with_attempts and jobs:
                rows = s.execute(
                    select(m.Attempt)
                    .where(m.Attempt.job_id.in_([j.id for j in jobs]))
                    .order_by(m.Attempt.number)
                ).scalars()
                for a in rows:
                    attempts.setdefault(a.job_id, []).append(self._attempt(a))
            metrics = self._latest_metrics(s, [j.id for j in jobs]) if jobs else {}
            return [self._record(j, attempts.get(j.id, []), metrics.get(j.id)) for j in jobs]

    def usage_rows(
        self, since: float, *, users: Collection[str] | None = None, projects: Collection[str] | None = None
    ) -> list[tuple[str, str | None, str | None, int, float, float | None]]:
        """(user, project, accelerator, GPUs held, start, end) of every attempt that ran after `since` (of
        `users` or `projects` only, when either is given): what quotas and usage reports count."""
        q = (
            select(m.Job.user, m.Job.project, m.Job.accelerator, m.Job.gpus, m.Job.num_nodes)
            .add_columns(m.Attempt.placement, m.Attempt.started_at, m.Attempt.ended_at)
            .join(m.Attempt, m.Attempt.job_id == m.Job.id)
            .where((m.Attempt.ended_at.is_(None)) | (m.Attempt.ended_at > since))
        )
        if users is not None or projects is not None:
            q = q.where(m.Job.user.in_(list(users or ())) | m.Job.project.in_(list(projects or ())))
        with self._read() as s:
            rows = s.execute(q).all()
        return [
            (r.user, r.project, r.accelerator, held, r.started_at, r.ended_at)
            for r in rows
            for held in [_held_gpus(r.placement, r.gpus * r.num_nodes)]
        ]

    def running(self, node: str | None = None) -> list[tuple[JobRecord, AttemptRecord]]:
        """RUNNING jobs with their current attempt (optionally only those on `node`)."""
        with self._read() as s:
            q = (
                select(m.Job, m.Attempt)
                .join(m.Attempt, m.Attempt.job_id == m.Job.id)
                .where(m.Job.state == JobState.RUNNING, m.Attempt.ended_at.is_(None))
                .order_by(m.Job.id)
            )
            if node is not None:
                q = q.where(m.Attempt.node == node)
            return [(self._record(j), self._attempt(a)) for j, a in s.execute(q)]

    def start_attempt(
        self,
        job_id: int,
        node: str,
        gpu_indices: list[int],
        run_dir_for: callable,
        placement: Sequence[NodeSlice] = (),
    ) -> AttemptRecord:
        """PENDING -> RUNNING and a new attempt row, before any process exists, so a crash between
        here and the process start is seen by reconciliation rather than lost. `placement` is the
        slice of each node the scheduler gave it (`node` is the first)."""
        now = time.time()
        with self._tx() as s:
            job = self._lock_job(s, job_id)
            number = s.execute(select(func.count()).where(m.Attempt.job_id == job_id)).scalar_one() + 1
            where = ", ".join(dict.fromkeys(sl.node for sl in placement)) or node
            self._transition(s, job, JobState.RUNNING, f"attempt {number} started on {where}", now)
            row = m.Attempt(
                job_id=job_id,
                number=number,
                node=node,
                gpu_indices=gpu_indices,
                run_dir=str(run_dir_for(job_id, number)),
                started_at=now,
                placement=[asdict(sl) for sl in placement] or None,
            )
            s.add(row)
            s.flush()
            return self._attempt(row)

    def set_attempt_process(self, job_id: int, number: int, pid: int, pid_started_at: float) -> None:
        with self._tx() as s:
            s.execute(
                update(m.Attempt)
                .where(m.Attempt.job_id == job_id, m.Attempt.number == number)
                .values(pid=pid, pid_started_at=pid_started_at)
            )

    def finish_attempt(
        self,
        job_id: int,
        number: int,
        *,
        exit_code: int | None,
        signal: str | None,
        reason: str,
        log_tail: str | None = None,
        preempted: bool = False,
        cancelled_by: str | None = None,
    ) -> JobState:
        """Close an attempt and move the job on: CANCELLED when a cancel was requested, SUCCEEDED on exit
        0 (also when a preemption came too late to stop it), PENDING when preempted, PENDING again
        while retries are left, FAILED otherwise."""
        now = time.time()
        with self._tx() as s:
            job = self._lock_job(s, job_id)
            attempt = s.execute(
                select(m.Attempt).where(m.Attempt.job_id == job_id, m.Attempt.number == number)
            ).scalar_one()
            if attempt.ended_at is not None:
                return JobState(job.state)
            attempt.ended_at = now
            attempt.exit_code = exit_code
            attempt.signal = signal
            attempt.reason = reason
            attempt.log_tail = log_tail
            if job.cancel_requested:
                new, why = JobState.CANCELLED, cancelled_by or "cancelled by user"
            elif exit_code == 0 and signal is None:  # it finished before a preemption could stop it
                new, why = JobState.SUCCEEDED, reason
            elif preempted:
                new, why = JobState.PENDING, reason
            elif number <= job.retries:
                used = f"{number} of {job.retries + 1} attempts used"
                new, why = JobState.PENDING, f"retrying ({used}): {reason}"
            else:
                new, why = JobState.FAILED, reason
            self._transition(s, job, new, why, now)
            return new

    def request_cancel(self, job_id: int) -> JobState:
        """PENDING jobs are cancelled at once; RUNNING ones are flagged for the agent to stop."""
        now = time.time()
        with self._tx() as s:
            job = self._lock_job(s, job_id)
            state = JobState(job.state)
            if state is JobState.PENDING:
                self._transition(s, job, JobState.CANCELLED, "cancelled by user", now)
                return JobState.CANCELLED
            if state is JobState.RUNNING:
                job.cancel_requested = True
            return state

    def changed_since(self, event_id: int) -> tuple[set[int], int]:
        """Ids of the jobs whose state changed after event `event_id`, and the newest event's id: how
        a reader keeps a view of the queue current without reading every job again."""
        with self._read() as s:
            rows = s.execute(select(m.Event.id, m.Event.job_id).where(m.Event.id > event_id)).all()
        return {job_id for _, job_id in rows}, max((i for i, _ in rows), default=event_id)

    def cancel_requested(self) -> set[int]:
        """Ids of the RUNNING jobs a user asked to cancel (the agent stops them)."""
        with self._read() as s:
            q = select(m.Job.id).where(m.Job.state == JobState.RUNNING, m.Job.cancel_requested.is_(True))
            return set(s.execute(q).scalars())

    def last_event_id(self) -> int:
        with self._read() as s:
            return s.execute(select(func.max(m.Event.id))).scalar_one() or 0

    def events(self, job_id: int | None = None) -> list[EventRecord]:
        q = select(m.Event).order_by(m.Event.id)
        if job_id is not None:
            q = q.where(m.Event.job_id == job_id)
        with self._read() as s:
            return [
                EventRecord(e.job_id, e.at, e.from_state, e.to_state, e.reason)
                for e in s.execute(q).scalars()
            ]

    # ---- metrics ------------------------------------------------------------------------------

    def add_metrics(self, job_id: int, attempt: int, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        with self._tx() as s:
            s.add_all(
                m.Metric(job_id=job_id, attempt=attempt, name=p.name, value=p.value, step=p.step, at=p.at)
                for p in points
            )

    def metric_history(self, job_id: int) -> list[dict]:
        with self._read() as s:
            rows = s.execute(
                select(m.Metric).where(m.Metric.job_id == job_id).order_by(m.Metric.id)
            ).scalars()
            return [
                {"attempt": r.attempt, "name": r.name, "value": r.value, "step": r.step, "at": r.at}
                for r in rows
            ]

    @staticmethod
    def _latest_metrics(s: Session, job_ids: list[int]) -> dict[int, dict[str, float]]:
        """The last value of each metric, per job."""
        latest = (
            select(func.max(m.Metric.id).label("mid"))
            .where(m.Metric.job_id.in_(job_ids))
            .group_by(m.Metric.job_id, m.Metric.name)
            .subquery()
        )
        rows = s.execute(
            select(m.Metric.job_id, m.Metric.name, m.Metric.value)
            .join(latest, m.Metric.id == latest.c.mid)
            .order_by(m.Metric.name)
        )
        out: dict[int, dict[str, float]] = {}
        for job_id, name, value in rows:
            out.setdefault(job_id, {})[name] = value
        return out

    # ---- nodes --------------------------------------------------------------------------------

    def register_node(
        self, name: str, cpus: float, memory_bytes: int, accelerator: str | None, gpus: int,
        owner: str | None = None,
    ) -> None:  # fmt: skip
        self.register_nodes([(name, cpus, memory_bytes, accelerator, gpus)], owners={name: owner})

    def register_nodes(
        self,
        nodes: Sequence[tuple[str, float, int, str | None, int]],
        lost: Sequence[str] = (),
        pool: str = "local",
        owners: Mapping[str, str | None] | None = None,
        now: float | None = None,
    ) -> None:
        """Record nodes (name, CPUs, memory, accelerator, GPUs) of `pool` as UP with that capacity and
        owner, and `lost` ones as LOST, in one transaction (a pool of hundreds of nodes is one write).
        Each node's offered period goes on, or a new one starts when its owner or capacity changed."""
        now = time.time() if now is None else now
        owners = owners or {}
        with self._tx() as s:
            for name, cpus, memory_bytes, accelerator, gpus in nodes:
                node = s.get(m.Node, name, with_for_update=True)
                if node is None:
                    node = m.Node(name=name, registered_at=now)
                    s.add(node)
                node.cpus, node.memory_bytes = cpus, memory_bytes
                node.accelerator, node.gpus = accelerator, gpus
                node.status, node.heartbeat_at, node.pool = "UP", now, pool
                node.owner = owners.get(name)
                self._offer(s, name, node.owner, cpus, gpus, accelerator, now)
            if lost:
                s.execute(update(m.Node).where(m.Node.name.in_(list(lost))).values(status="LOST"))
                self._close_periods(s, list(lost))

    @staticmethod
    def _offer(
        s: Session, name: str, owner: str | None, cpus: float, gpus: int, accelerator: str | None, now: float
    ) -> None:
        P = m.NodePeriod
        open_ = s.execute(select(P).where(P.node == name, P.closed.is_(False))).scalars().all()
        same = [
            p for p in open_ if (p.owner, p.cpus, p.gpus, p.accelerator) == (owner, cpus, gpus, accelerator)
        ]
        for p in open_:
            if p not in same[:1]:
                p.closed = True
        if same:
            same[0].last_seen_at = now
        else:
            s.add(P(node=name, owner=owner, cpus=cpus, gpus=gpus, accelerator=accelerator, started_at=now,
                    last_seen_at=now))  # fmt: skip

    @staticmethod
    def _close_periods(s: Session, names: list[str]) -> None:
        P = m.NodePeriod
        s.execute(update(P).where(P.node.in_(names), P.closed.is_(False)).values(closed=True))

    def heartbeat(
        self, name: str, status: str = "UP", also: Sequence[str] = (), now: float | None = None
    ) -> None:
        """The node is alive (its offered period, and those of `also`, the other nodes of its pool, go on
        until now); a status other than UP ends its period."""
        now = time.time() if now is None else now
        names = [name, *also]
        with self._tx() as s:
            s.execute(update(m.Node).where(m.Node.name == name).values(heartbeat_at=now, status=status))
            P = m.NodePeriod
            if status == "UP":
                s.execute(update(P).where(P.node.in_(names), P.closed.is_(False)).values(last_seen_at=now))
            else:
                self._close_periods(s, [name])

    def node_periods(self, since: float | None = None, until: float | None = None) -> list[tuple]:
        """(node, owner, cpus, gpus, accelerator, started_at, last_seen_at, closed) of every period that
        may overlap [since, until] (an open one goes on past its last heartbeat)."""
        P = m.NodePeriod
        q = select(P.node, P.owner, P.cpus, P.gpus, P.accelerator, P.started_at, P.last_seen_at, P.closed)
        if since is not None:
            q = q.where((P.last_seen_at >= since) | P.closed.is_(False))
        if until is not None:
            q = q.where(P.started_at <= until)
        with self._read() as s:
            return [tuple(r) for r in s.execute(q.order_by(P.started_at))]

    def nodes(self, *, usage: bool = True) -> list[NodeRecord]:
        """Nodes with what their running jobs use (without `usage`: capacity and status only)."""
        with self._read() as s:
            held: dict[str, list[tuple[int, NodeSlice]]] = {}
            q = (
                select(m.Job, m.Attempt)
                .join(m.Job, m.Job.id == m.Attempt.job_id)
                .where(m.Job.state == JobState.RUNNING, m.Attempt.ended_at.is_(None))
            )
            for job, attempt in s.execute(q) if usage else ():
                for sl in attempt_slices(self._record(job), self._attempt(attempt)):
                    held.setdefault(sl.node, []).append((job.id, sl))
            out = []
            for n in s.execute(select(m.Node).order_by(m.Node.name)).scalars():
                jobs = held.get(n.name, [])
                out.append(
                    NodeRecord(
                        n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus, n.status, n.heartbeat_at,
                        pool=n.pool or "local", owner=n.owner,
                        used_cpus=sum(sl.cpus for _, sl in jobs),
                        used_memory_bytes=sum(sl.memory_bytes for _, sl in jobs),
                        used_gpus=sum(sl.gpus for _, sl in jobs),
                        running_jobs=len(jobs),
                        jobs=jobs,
                    )
                )  # fmt: skip
            return out

    # ---- conversion ---------------------------------------------------------------------------

    @staticmethod
    def _attempt(a: m.Attempt) -> AttemptRecord:
        return AttemptRecord(
            number=a.number,
            node=a.node,
            pid=a.pid,
            pid_started_at=a.pid_started_at,
            gpu_indices=list(a.gpu_indices or []),
            run_dir=a.run_dir,
            started_at=a.started_at,
            ended_at=a.ended_at,
            exit_code=a.exit_code,
            signal=a.signal,
            reason=a.reason,
            log_tail=a.log_tail,
            placement=[NodeSlice(**sl) for sl in a.placement or ()],
        )

    @staticmethod
    def _record(
        j: m.Job, attempts: list[AttemptRecord] | None = None, metrics: dict[str, float] | None = None
    ) -> JobRecord:
        return JobRecord(
            id=j.id,
            name=j.name,
            user=j.user,
            project=j.project,
            state=j.state,
            priority=j.priority,
            spec_data=j.spec,
            cpus=j.cpus,
            memory_bytes=j.memory_bytes,
            accelerator=j.accelerator,
            gpus=j.gpus,
            num_nodes=j.num_nodes,
            num_workers=j.num_workers,
            retries=j.retries,
            submitted_at=j.submitted_at,
            started_at=j.started_at,
            ended_at=j.ended_at,
            cancel_requested=j.cancel_requested,
            reason=j.reason,
            attempts=attempts or [],
            metrics=metrics or {},
        )
