"""Tables: nodes, jobs, attempts, metrics, the append-only event log, and the identity of a team (users,
projects, memberships, tokens, quotas, audit). Times are Unix seconds."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Node(Base):
    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    cpus: Mapped[float] = mapped_column(Float)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    accelerator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="UP")
    registered_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    # Added after the first release: the pool the node belongs to ("local": an agent's own machine;
    # "ray ADDRESS": a Ray cluster's node).
    pool: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The project that brings this node to the pool (compute shared between owners); None: unowned.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)


class NodePeriod(Base):
    """A stretch of time a node was offered to the pool, with its capacity and owner then: what owners are
    credited for. A period stays open while the node's heartbeats come (`last_seen_at` follows them) and
    is closed when the node leaves, or its owner or capacity changes (a new period starts)."""

    __tablename__ = "node_periods"
    __table_args__ = (Index("ix_node_periods_open", "node", "closed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cpus: Mapped[float] = mapped_column(Float)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    accelerator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_idempotency_key", "idempotency_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    user: Mapped[str] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict] = mapped_column(JSON)
    cpus: Mapped[float] = mapped_column(Float)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    accelerator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    num_nodes: Mapped[int] = mapped_column(Integer, default=1)
    num_workers: Mapped[int] = mapped_column(Integer, default=1)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Added after the first release: store.py adds these columns to older databases.
    # A client's key for one submission: a retried submit finds the job it already stored.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)  # encrypted (store/secrets.py)
    # The team the job is accounted to (a project of the server; None: submitted without one).
    project: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_job", "job_id", "number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    number: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_indices: Mapped[list] = mapped_column(JSON, default=list)
    run_dir: Mapped[str] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signal: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Added after the first release: where the attempt runs, one slice per node
    # ([{"node", "gpus", "cpus", "memory_bytes"}]); older rows have none and use `node` and the job's
    # resources.
    placement: Mapped[list | None] = mapped_column(JSON, nullable=True)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_job", "job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[float] = mapped_column(Float)


class Event(Base):
    """Append-only: every state transition with its time and reason. Never updated or deleted."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_job", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    at: Mapped[float] = mapped_column(Float)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class User(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # scrypt; None: tokens only
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Project(Base):
    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class Membership(Base):
    __tablename__ = "memberships"

    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # project_admin | member | viewer


class Token(Base):
    """An API token: only its SHA-256 is kept; the token itself is shown once, when it is made."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: an admin's, all projects
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Quota(Base):
    """Limits of one user or project: concurrent GPUs, and GPU-hours and dollars per period."""

    __tablename__ = "quotas"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | project
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpu_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    period: Mapped[str] = mapped_column(String(8), default="month")  # day | week | month


class Audit(Base):
    """Append-only: every mutation made through the server, and every failed login."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class Sample(Base):
    """What one attempt used on one node over `span_s` seconds ending at `at` (monitor/). Counters are
    cumulative since the attempt started; older rows are merged into coarser ones (`level` 1: minutes,
    2: ten minutes) so a long job's history stays small."""

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_attempt", "job_id", "attempt", "at"),
        Index("ix_samples_level", "level", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(255))
    at: Mapped[float] = mapped_column(Float)
    span_s: Mapped[float] = mapped_column(Float)
    level: Mapped[int] = mapped_column(Integer, default=0)
    cpu_seconds: Mapped[float] = mapped_column(Float)  # cumulative
    cpu_cores: Mapped[float] = mapped_column(Float)  # mean cores busy over the span
    rss_bytes: Mapped[int] = mapped_column(BigInteger)  # at the end of the span
    rss_peak_bytes: Mapped[int] = mapped_column(BigInteger)  # highest seen within the span
    gpu_util: Mapped[float | None] = mapped_column(Float, nullable=True)  # 0-1, mean over held GPUs
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # cumulative
    write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # cumulative
    net_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the node's, cumulative
    log_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # cumulative
    metric_points: Mapped[int] = mapped_column(Integer, default=0)  # cumulative
    gpu_energy_j: Mapped[float | None] = mapped_column(Float, nullable=True)  # cumulative (NVML)


class AttemptUsage(Base):
    """Totals of one attempt, kept current while it runs and final once it ends: what reports read
    (a report over thousands of jobs never reads their samples)."""

    __tablename__ = "attempt_usage"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_source: Mapped[str] = mapped_column(String(16), default="samples")  # samples | rusage
    rss_peak_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_seconds_used: Mapped[float | None] = mapped_column(Float, nullable=True)  # sum of util x time
    gpu_memory_peak_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_energy_j: Mapped[float | None] = mapped_column(Float, nullable=True)


class Alert(Base):
    """One alert: a rule that held for a job (or a node, or a project) from `opened_at`; repeats while it
    holds raise `count` and `last_at`, never a new row; `closed_at` once it stops holding."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "closed_at", "rule"), Index("ix_alerts_job", "job_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str] = mapped_column(String(255))  # "job 12", "node gpu-3", "project vision"
    user: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    action: Mapped[str] = mapped_column(String(16), default="notify")
    opened_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=1)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acted: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the action did


class Delivery(Base):
    """An alert on its way to one notifier: kept and retried until it is delivered."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "delivered_at", "next_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    notifier: Mapped[int] = mapped_column(Integer)  # index in alerts.yaml's `notifiers`
    event: Mapped[str] = mapped_column(String(16))  # opened | closed
    created_at: Mapped[float] = mapped_column(Float)
    next_at: Mapped[float] = mapped_column(Float)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class LedgerEntry(Base):
    """One entry of the provenance ledger, at its index in the log (0, 1, 2 ... with no gaps)."""

    __tablename__ = "ledger_entries"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[float] = mapped_column(Float)


class LedgerNode(Base):
    """A perfect subtree's hash: leaves [index x 2^level, (index + 1) x 2^level). Written once, when its
    last leaf is appended, and never changed (what a tlog's tiles hold)."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHead(Base):
    """The log's size and root: one row, locked by every append (appends are integrated in order)."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[float] = mapped_column(Float)
    # The log's signed-note verifier key (its name is the origin), fixed by the first append.
    key: Mapped[str | None] = mapped_column(Text, nullable=True)


class LedgerCheckpoint(Base):
    """A checkpoint the log signed (C2SP tlog-checkpoint in a signed note), one per append."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class LedgerCosignature(Base):
    """A witness's cosignature (C2SP tlog-cosignature) of the checkpoint at `size`."""

    __tablename__ = "ledger_cosignatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    witness: Mapped[str] = mapped_column(Text)  # the witness's verifier key
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class LedgerRef(Base):
    """The search index: what each entry names (digests as subject or input, job, user, kind, commit),
    and the `source` that makes an automatic entry appended once. Derived from the entries; never trusted
    by `verify`."""

    __tablename__ = "ledger_refs"
    __table_args__ = (Index("ix_ledger_refs_field_value", "field", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[int] = mapped_column(BigInteger, index=True)
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="")


class LedgerManifest(Base):
    """The last manifest hashed for a folder (by the path's digest), so the next hash of it reads only
    the files that changed."""

    __tablename__ = "ledger_manifests"

    path_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)
