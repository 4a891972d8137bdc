"""The library API behind the CLI: submit, watch, cancel and inspect jobs on the pool.

from suanli import Client
client = Client()                       # SQLite under SUANLI_HOME, or SUANLI_DB_URL
job_id = client.submit("examples/digits/job.yaml")
record = client.wait(job_id)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from suanli.core.errors import BadInput, SuanliError
from suanli.jobs.spec import JobSpec, load_spec, stored_spec
from suanli.jobs.states import JobState
from suanli.run import admission, control
from suanli.run.metrics import READ_BYTES
from suanli.run.pool import load_pool_config
from suanli.store.identity import Principal
from suanli.store.records import EventRecord, JobRecord, NodeRecord
from suanli.store.store import Store

POLL_SECONDS = 0.05
POOL_READ_TIMEOUT_S = 180.0  # the agent connects to a Ray pool and reads its nodes before answering


class Client:
    """One connection to suanli's state; starts the local agent when a call needs it.

    With a `principal` (the server makes one Client per caller) every call is checked against its role
    and project: it reads only its project's jobs, submits into its project as itself, and cancels only
    what its role lets it manage. Without one it acts as the database's owner, who may do everything."""

    def __init__(
        self, db: str | None = None, *, start_agent: bool = True, principal: Principal | None = None,
        store: Store | None = None,
    ) -> None:  # fmt: skip
        self.store = store or Store(db)
        self.principal = principal
        self.start_agent = start_agent
        self._pool: dict = {"at": 0.0, "nodes": []}  # the pool read last, shared with for_principal's
        self._revived = False

    def for_principal(self, principal: Principal) -> Client:
        """A Client acting as `principal` over the same store, sharing this one's view of the pool (a
        server makes one per request)."""
        c = Client(store=self.store, principal=principal, start_agent=self.start_agent)
        c._pool = self._pool
        c._revived = True
        return c

    # ---- submitting ---------------------------------------------------------------------------

    def load(
        self, spec: JobSpec | str | Path, env: dict[str, str] | None = None, overrides: dict | None = None
    ) -> JobSpec:
        if isinstance(spec, JobSpec):
            update = {k: v for k, v in (overrides or {}).items() if v is not None}
            if env:
                update["envs"] = {**spec.envs, **env}
            return spec.model_copy(update=update) if update else spec
        return load_spec(spec, env_overrides=env, overrides=overrides)

    def pool(self, ray_address: str | None = None) -> list[NodeRecord]:
        """The pool's nodes. On a Ray pool (pool.yaml, RAY_ADDRESS or `ray_address`) the agent reads
        them from the cluster, so it is started and asked for one pass first; otherwise this machine
        is registered if the pool is empty."""
        if time.monotonic() - self._pool["at"] < 2.0 and self._pool["nodes"] and not ray_address:
            return self._pool["nodes"]
        running = control.running_agent() if self.start_agent else None
        on_ray = ray_address or load_pool_config().ray or (running and running.pool != "local")
        if self.start_agent and on_ray:
            info = control.ensure_agent(self.store.url, ray_address=ray_address)
            control.sync(info, timeout_s=POOL_READ_TIMEOUT_S)
            nodes = [n for n in self.store.nodes() if n.pool == info.pool]
        else:
            nodes = [n for n in admission.pool(self.store) if n.pool == "local"]
        self._pool.update(nodes=nodes, at=time.monotonic())
        return nodes

    def submit(
        self, spec: JobSpec | str | Path, env: dict[str, str] | None = None, *, key: str | None = None
    ) -> int:
        """Validate, store as PENDING and wake the agent. Returns the job id at once. A retried call
        with the same idempotency `key` returns the first call's id and stores nothing."""
        return self.submit_many([self.load(spec, env)], key=key)[0]

    def submit_many(
        self, specs: Sequence[JobSpec], *, key: str | None = None, audit: dict | None = None
    ) -> list[int]:
        """Submit several jobs in one transaction (all or none); `audit` ({actor, action, address}) is
        written to the audit log in it."""
        if self.principal is not None:
            specs = [self._as_principal(s) for s in specs]
        address = next((s.ray_address for s in specs if s.ray_address), None)
        ids = admission.admit(self.store, specs, self.pool(address), key=key, audit=audit)
        self.wake()
        return ids

    def _as_principal(self, spec: JobSpec) -> JobSpec:
        """The spec as the caller may submit it: their own user, their token's project."""
        p = self.principal
        assert p is not None
        project = p.project if p.project is not None else spec.project
        p.require(p.can_submit(project), f"submit jobs to project {project}")
        return spec.model_copy(update={"user": p.user, "project": project})

    def resubmit(self, job_id: int) -> int:
        """Submit a stored job's spec again (with its secrets) as a new job."""
        record = self.get(job_id)
        self._require_manage(record, "resubmit")
        spec = stored_spec(record.spec_data)
        secrets = self.store.secrets(job_id)
        return self.submit(spec.model_copy(update={"secrets": secrets, "notes": []}))

    def spec_json(self, job_id: int) -> dict:
        """The stored spec; env values only for those who manage the job (secrets are never stored)."""
        record = self.get(job_id)
        doc = dict(record.spec_data)
        if not self._may_manage(record):
            doc["envs"] = dict.fromkeys(doc.get("envs") or {}, "***")
        return doc

    def _may_manage(self, record: JobRecord) -> bool:
        return self.principal is None or self.principal.can_manage(record.project, record.user)

    def _require_manage(self, record: JobRecord, action: str) -> None:
        if self.principal is not None:
            self.principal.require(self._may_manage(record), f"{action} job {record.id} of {record.user}")

    def _readable(self, project: str | None) -> bool:
        return self.principal is None or self.principal.can_read(project)

    def wake(self) -> None:
        if self.start_agent:
            control.nudge(control.ensure_agent(self.store.url))

    # ---- reading ------------------------------------------------------------------------------

    def revive(self) -> None:
        """If jobs are RUNNING but no agent watches them (it was killed), start one and let it finish a
        pass, so what is read next says how they really are (once per Client)."""
        if not self.start_agent or self._revived:
            return
        self._revived = True
        if control.running_agent() is None and self.store.running():
            control.sync(control.ensure_agent(self.store.url))

    def get(self, job_id: int) -> JobRecord:
        self.revive()
        record = self.store.get(job_id)
        if self.principal is not None:
            what = f"read job {job_id} of project {record.project}"
            self.principal.require(self.principal.can_read(record.project), what)
        return record

    def jobs(
        self, *, all: bool = False, user: str | None = None, limit: int = 50,
        states: Sequence[str] | None = None, before_id: int | None = None, name: str | None = None,
    ) -> list[JobRecord]:  # fmt: skip
        """Recent jobs the caller may read; without `all`, only those not yet finished plus the last few
        finished. `before_id` pages back; `states` and `name` (a part of it) filter."""
        self.revive()
        projects = None
        if self.principal is not None and not self.principal.is_admin:
            projects = [self.principal.project] if self.principal.project else []
        known = [str(s) for s in JobState]
        for state in states or ():
            if state not in known:
                raise BadInput("state", state, "must be one of " + ", ".join(known))
        wanted = None if states is None else [JobState(s) for s in states]
        jobs = self.store.list_jobs(
            wanted, user=user, limit=limit, with_attempts=True, projects=projects, before_id=before_id,
            name=name,
        )  # fmt: skip
        return (
            jobs if all else [j for j in jobs if not j.is_terminal] + [j for j in jobs if j.is_terminal][:10]
        )

    def nodes(self) -> list[NodeRecord]:
        return self.pool()

    def queue(self) -> list[dict]:
        """Pending jobs in the order the scheduler's policy would start them, each with its position
        and why it waits ("needs 4 GPUs on each of 2 nodes; 1 such node free")."""
        from suanli.run.schedconfig import make_policy
        from suanli.run.scheduling import decide_now

        self.revive()
        decided = decide_now(self.store, make_policy(), self.pool())
        return [
            {
                "position": i + 1,
                "policy": decided.policy,
                "reason": why,
                "estimated_duration_s": decided.requests[job_id].estimated_duration_s,
                "estimate_stated": decided.requests[job_id].estimate_stated,
                **_queue_row(decided.jobs[job_id]),
            }
            for i, (job_id, why) in enumerate(decided.order())
            if self._readable(decided.jobs[job_id].project)
        ]

    def events(self, job_id: int) -> list[EventRecord]:
        self.get(job_id)
        return self.store.events(job_id)

    def metric_history(self, job_id: int) -> list[dict]:
        self.get(job_id)
        return self.store.metric_history(job_id)

    # ---- monitoring (monitor/report.py) -------------------------------------------------------

    def report(
        self, job_id: int | None = None, *, users: Sequence[str] | None = None,
        projects: Sequence[str] | None = None, since: float | str | None = None, limit: int | None = None,
    ) -> dict:  # fmt: skip
        """An efficiency report (seff's figures, cost, energy, advice): of one job, or of the jobs of
        `users` in `projects` that ran after `since` ("7d", a date, a Unix time). A caller who is no
        admin reads only its project's jobs."""
        from suanli.monitor import report as rep

        if job_id is not None:
            if users or projects or since is not None:
                raise BadInput("job", job_id, "give a job id, or users/projects/since, not both")
            self.get(job_id)
            return rep.job_report(self.store, job_id)
        start = rep.parse_since(since)
        scope = self._projects_readable(projects)
        rep.check_known(self.store, users=users or None, projects=projects or None, scope=scope)
        if limit is not None and limit < 0:
            raise BadInput("limit", limit, "must be 0 or more")
        return rep.group_report(self.store, users=users or None, projects=scope, since=start, limit=limit)

    def owners(self, since: float | str | None = None) -> dict:
        """What each owner (project) gave the pool and took from it since `since` ("7d", a date, a Unix
        time; default: all time): CPU- and GPU-hours contributed and consumed, balance, share. The
        consortium's shared account: every member reads all of it."""
        from suanli.monitor import owners as own
        from suanli.monitor.report import parse_since

        return own.owners_report(self.store, since=parse_since(since))

    def _projects_readable(self, projects: Sequence[str] | None) -> list[str] | None:
        """The projects a report may cover: those asked for (each one the caller may read), else all
        (an admin) or the caller's own."""
        p = self.principal
        if p is not None and not p.is_admin:
            for name in projects or ():
                p.require(p.can_read(name), f"read the jobs of project {name}")
            return [p.project] if p.project else []
        return list(projects) if projects else None

    def top(self) -> dict:
        """The running jobs the caller may read, with what they use now, their cost so far and marks for
        their open alerts; and the open alerts."""
        from suanli.monitor.report import top_report

        self.revive()
        return top_report(self.store, readable=None if self.principal is None else self.principal.can_read)

    def alerts(
        self, *, open_only: bool = True, job_id: int | None = None, since: float | str | None = None,
        limit: int = 200,
    ) -> list[dict]:  # fmt: skip
        """Alerts newest first (the open ones, or all), of one job when given, that the caller may read."""
        from suanli.monitor.report import alerts_report, parse_since

        if job_id is not None:
            self.get(job_id)
        if not 1 <= limit <= 10_000:
            raise BadInput("limit", limit, "must be 1 to 10000")
        return alerts_report(
            self.store, open_only=open_only, job_ids=None if job_id is None else [job_id],
            since=parse_since(since), limit=limit,
            readable=None if self.principal is None else self.principal.can_read,
        )  # fmt: skip

    def samples(self, job_id: int, attempt: int | None = None, since: float | None = None) -> list[dict]:
        """What the job used over time (one row per node per sample; older ones merged into minutes)."""
        from suanli.store.monitoring import MonitorStore

        self.get(job_id)
        return MonitorStore(self.store).samples(job_id, attempt, since)

    # ---- acting -------------------------------------------------------------------------------

    def cancel(self, job_id: int, *, wait: bool = True, timeout_s: float = 60.0) -> JobRecord:
        """Cancel a job; waits (by default) until its processes are gone."""
        self._require_manage(self.get(job_id), "cancel")
        state = self.store.request_cancel(job_id)
        if state is JobState.RUNNING:
            self.wake()
            if wait:
                return self.wait(job_id, timeout_s=timeout_s)
        return self.store.get(job_id)

    def wait(self, job_id: int, *, timeout_s: float | None = None) -> JobRecord:
        """Block until the job reaches a terminal state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.store.get(job_id)
            if record.is_terminal:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise SuanliError(f"job {job_id} is still {record.state} after {timeout_s:.0f} s")
            time.sleep(POLL_SECONDS * 2)

    def follow(
        self, job_id: int, attempt: int | None = None, *, follow: bool = True, idle_s: float | None = None,
        poll_s: float = POLL_SECONDS, tail_bytes: int | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """The job's log text as it grows; with `follow`, until the job ends (across retries).

        A specific `attempt` shows only that attempt's log. With `idle_s`, an empty string comes after
        that long without output (a server uses it to notice a reader that has gone). With `tail_bytes`,
        a long log starts that many bytes before its end (a page that shows only the end).
        """
        record = self.get(job_id)
        if attempt is not None and not any(a.number == attempt for a in record.attempts):
            numbers = ", ".join(str(a.number) for a in record.attempts) or "none yet"
            raise BadInput("attempt", attempt, f"job {job_id} has attempts: {numbers}")
        current = attempt or (record.last_attempt.number if record.last_attempt else None)
        offset = 0
        last_yield = time.monotonic()
        while True:
            record = self.store.get(job_id)
            if current is None and record.attempts:
                current = record.attempts[0].number if attempt is None else attempt
            chunk = ""
            if current is not None:
                path = Path(next(a for a in record.attempts if a.number == current).log_path)
                try:
                    with path.open("rb") as f:
                        if tail_bytes is not None and offset == 0:
                            size = f.seek(0, 2)
                            if size > tail_bytes:
                                offset = size - tail_bytes
                                yield f"[... the first {offset} bytes of the log are not shown ...]\n"
                            tail_bytes = None
                        f.seek(offset)
                        data = f.read(READ_BYTES)  # a 100 MB log streams in bounded pieces
                    offset += len(data)
                    chunk = data.decode(errors="replace")
                except FileNotFoundError:
                    pass
            if chunk:
                yield chunk
                last_yield = time.monotonic()
                continue
            if not follow:
                return
            if idle_s is not None and time.monotonic() - last_yield > idle_s:
                yield ""
                last_yield = time.monotonic()
            latest = record.last_attempt
            attempt_over = latest is None or latest.number != current or latest.ended_at is not None
            if attempt is None and latest is not None and current is not None and latest.number > current:
                current, offset = latest.number, 0
                yield f"--- attempt {current} ---\n"
                continue
            if attempt_over and (record.is_terminal or attempt is not None):
                return
            time.sleep(poll_s)


def _queue_row(job: JobRecord) -> dict:
    doc = job.to_json()
    return {k: doc[k] for k in ("id", "name", "user", "priority", "resources", "num_nodes", "submitted_at")}
