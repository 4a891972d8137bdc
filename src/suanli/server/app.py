"""The team server's HTTP API: a thin FastAPI layer over the library (`Client`, `Identity`, the quota
and usage functions, the estimator, the planner and the simulator). Every route names its caller
through a bearer token; what the caller may do is decided in the library (`Principal`), never here.

Errors come back as `{"error": "one line", "field": ...}`: 400 bad input, 401 no valid token, 403 not
allowed, 404 no such thing, 413 body too large, 422 a body that does not fit the schema, 429 too many
failed logins. Every mutation and every refused one goes to the audit log.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suanli.api import Client
from suanli.core.errors import BadInput, NotFound, SuanliError
from suanli.jobs.spec import JobSpec
from suanli.store.identity import Identity, Principal
from suanli.store.store import Store

MAX_BODY_BYTES = 1 << 20  # a job spec or a batch of them; traces for /api/simulate fit too
MAX_BATCH = 1000
MAX_BUCKETS = 2000  # points per usage series
MAX_STREAMS = 32  # open log streams (each holds a worker thread while it waits for output) ...
MAX_STREAMS_PER_USER = 4  # ... so no one user can take them all
STATIC = Path(__file__).parent / "static"
T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    user: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    project: str | None = Field(None, max_length=64)
    ttl_s: float | None = None


class SubmitBody(_Body):
    spec: dict[str, Any] | None = None  # one job ...
    specs: list[dict[str, Any]] | None = Field(None, max_length=MAX_BATCH)  # ... or several, all or none
    key: str | None = Field(None, max_length=128)  # idempotency key: a retried request stores nothing new
    dry_run: bool = False


class TokenBody(_Body):
    user: str | None = Field(None, max_length=64)
    project: str | None = Field(None, max_length=64)
    role: str | None = Field(None, max_length=32)
    ttl_s: float | None = None
    label: str = Field("", max_length=128)


class UserBody(_Body):
    name: str = Field(max_length=64)
    password: str | None = Field(None, max_length=1024)
    admin: bool = False


class PasswordBody(_Body):
    password: str = Field(max_length=1024)


class DisabledBody(_Body):
    disabled: bool


class ProjectBody(_Body):
    name: str = Field(max_length=64)


class MemberBody(_Body):
    role: str = Field(max_length=32)


class QuotaBody(_Body):
    gpus: float | None = None
    gpu_hours: float | None = None
    cost_usd: float | None = None
    period: str | None = Field(None, max_length=16)
    clear: bool = False


class EstimateBody(_Body):
    workload: dict[str, Any]
    accelerators: dict[str, int]
    num_nodes: int = Field(1, ge=1, le=100_000)


class PlanBody(_Body):
    workload: dict[str, Any]
    deadline: str | float | None = None
    budget: str | float | None = None
    accelerators: list[str] | None = None
    modes: list[str] | None = None
    providers: list[str] | None = None
    objective: str = "cost"
    max_gpus: int = Field(1024, ge=1, le=100_000)
    top: int = Field(20, ge=1, le=200)


class SimulateBody(_Body):
    trace: str = Field("synthetic:500", max_length=64)  # synthetic:N, or `trace_csv` holds the trace
    trace_csv: str | None = None
    format: str = "auto"
    cluster: str = Field("4x8", max_length=200)
    policies: list[str] = Field(default_factory=lambda: ["fifo", "suanli"], max_length=12)
    placement: str = "consolidated"
    seed: int = 0


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def _status_of(e: SuanliError) -> int:
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, BadInput):
        return 400
    return getattr(e, "status", 500)


def _validation_line(e: RequestValidationError | ValidationError) -> tuple[str, str]:
    err = e.errors()[0]
    loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
    field = ".".join(loc) or "body"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return field, f"{field}: unknown field"
    if kind == "json_invalid":
        return "body", "body: is not valid JSON"
    return field, f"{field}: {err.get('msg', 'is not valid').lower()}"


def caller(request: Request) -> Principal:
    """The principal of the request's bearer token (401 without a valid one)."""
    from suanli.core.errors import Unauthorized

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if header and scheme.lower() != "bearer":
        raise Unauthorized("Authorization: use the Bearer scheme")
    principal = request.app.state.identity.authenticate(token.strip() or None)
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(caller)]


class Streams:
    """Counts the open log streams, so that a user who opens many cannot starve every other request of
    the server's worker threads (each stream holds one while it waits for output)."""

    def __init__(self, total: int = MAX_STREAMS, per_user: int = MAX_STREAMS_PER_USER) -> None:
        self.total, self.per_user = total, per_user
        self.open: dict[str, int] = {}
        self.lock = threading.Lock()

    def take(self, user: str) -> None:
        from suanli.core.errors import TooManyAttempts

        with self.lock:
            if sum(self.open.values()) >= self.total or self.open.get(user, 0) >= self.per_user:
                raise TooManyAttempts(f"too many open log streams (at most {self.per_user} each); close one")
            self.open[user] = self.open.get(user, 0) + 1

    def give_back(self, user: str) -> None:
        with self.lock:
            self.open[user] -= 1

    def response(
        self, user: str, chunks: Iterator[str], media_type: str, **headers: str
    ) -> StreamingResponse:
        """A streamed response that holds one of `user`'s streams until it ends or its reader goes."""
        from starlette.background import BackgroundTask

        self.take(user)
        return StreamingResponse(
            chunks, media_type=media_type, headers=headers, background=BackgroundTask(self.give_back, user)
        )


def create_app(db_url: str | None = None, *, start_agent: bool = True) -> FastAPI:
    """The server's app over the store at `db_url` (SQLite under SUANLI_HOME by default)."""
    store = Store(db_url)
    identity = Identity(store)
    streams = Streams()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        anyio.to_thread.current_default_thread_limiter().total_tokens = 40 + MAX_STREAMS
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="suanli",
        version="0.1.0",
        summary="Queue, run and watch a team's jobs on its pool; users, projects, roles, tokens, quotas.",
        docs_url=None,  # the interactive pages load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.store = store
    app.state.identity = identity

    # ---- plumbing -----------------------------------------------------------------------------

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"body: larger than {MAX_BODY_BYTES} bytes", "body")
        if request.method in ("POST", "PUT", "PATCH") and length is None:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return _error(413, f"body: larger than {MAX_BODY_BYTES} bytes", "body")
            request._body = body  # read once here; the route reads it from the cache
        return await call_next(request)

    @app.exception_handler(SuanliError)
    async def suanli_error(request: Request, e: SuanliError) -> JSONResponse:
        p = getattr(request.state, "principal", None)
        if request.method != "GET" and p is not None and not getattr(request.state, "audited", False):
            # a change refused before it was tried (most often: the role does not allow it)
            what = f"{request.method} {request.url.path}"
            await anyio.to_thread.run_sync(
                lambda: identity.audit(
                    p.user, "refused", what, ok=False, address=address(request), detail=str(e)
                )
            )
        return _error(
            _status_of(e), str(e).splitlines()[0] if str(e) else type(e).__name__, getattr(e, "field", None)
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        """A bug answers one line and the server goes on; the traceback goes to the server's log."""
        import logging

        logging.getLogger("suanli.server").exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); the server's log has the details")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError) -> JSONResponse:
        field, line = _validation_line(e)
        return _error(422, line, field)

    base = Client(store=store, start_agent=start_agent)

    def client(p: Principal) -> Client:
        return base.for_principal(p)

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def mutate(request: Request, p: Principal, action: str, target: str, fn: Callable[[], T]) -> T:
        """Run a change and audit it, refused or done."""
        request.state.audited = True
        try:
            result = fn()
        except SuanliError as e:
            identity.audit(p.user, action, target, ok=False, address=address(request), detail=str(e)[:500])
            raise
        identity.audit(p.user, action, target, address=address(request))
        return result

    # ---- identity -----------------------------------------------------------------------------

    @app.post("/api/login", tags=["identity"])
    def login(body: LoginBody, request: Request) -> dict:
        """A token for a user name and password (rate-limited; failures are audited)."""
        token, doc = identity.login(
            body.user, body.password, project=body.project, ttl_s=body.ttl_s, address=address(request)
        )
        return {"token": token, **doc}

    @app.get("/api/whoami", tags=["identity"])
    def whoami(p: Caller) -> dict:
        return p.to_json()

    @app.get("/api/tokens", tags=["identity"])
    def tokens(p: Caller, user: str | None = None) -> dict:
        return {"tokens": identity.tokens(p, user=user)}

    @app.post("/api/tokens", tags=["identity"])
    def create_token(body: TokenBody, p: Caller, request: Request) -> dict:
        """A new token (shown once); its role is at most the caller's and the user's."""
        token, doc = mutate(
            request,
            p,
            "token.create",
            body.user or p.user,
            lambda: identity.create_token(
                p, user=body.user, project=body.project, role=body.role, ttl_s=body.ttl_s, label=body.label
            ),
        )
        return {"token": token, **doc}

    @app.delete("/api/tokens/{token_id}", tags=["identity"])
    def revoke_token(token_id: int, p: Caller, request: Request) -> dict:
        return mutate(request, p, "token.revoke", str(token_id), lambda: identity.revoke_token(p, token_id))

    @app.get("/api/users", tags=["identity"])
    def users(p: Caller) -> dict:
        p.require(p.is_admin, "list users")
        return {"users": identity.users()}

    @app.post("/api/users", tags=["identity"])
    def add_user(body: UserBody, p: Caller, request: Request) -> dict:
        p.require(p.is_admin, "add users")
        mutate(
            request,
            p,
            "user.add",
            body.name,
            lambda: identity.add_user(body.name, body.password, admin=body.admin),
        )
        return {"name": body.name, "admin": body.admin}

    @app.post("/api/users/{name}/password", tags=["identity"])
    def set_password(name: str, body: PasswordBody, p: Caller, request: Request) -> dict:
        p.require(p.is_admin or name == p.user, f"set the password of {name}")
        mutate(request, p, "user.password", name, lambda: identity.set_password(name, body.password))
        return {"name": name}

    @app.post("/api/users/{name}/disabled", tags=["identity"])
    def set_disabled(name: str, body: DisabledBody, p: Caller, request: Request) -> dict:
        """Disable a user (their tokens stop working at once) or enable them again."""
        p.require(p.is_admin, "disable users")
        mutate(
            request,
            p,
            "user.disable" if body.disabled else "user.enable",
            name,
            lambda: identity.set_disabled(name, body.disabled),
        )
        return {"name": name, "disabled": body.disabled}

    @app.get("/api/projects", tags=["identity"])
    def projects(p: Caller) -> dict:
        rows = identity.projects()
        return {"projects": [r for r in rows if p.can_read(r["name"])]}

    @app.post("/api/projects", tags=["identity"])
    def add_project(body: ProjectBody, p: Caller, request: Request) -> dict:
        p.require(p.is_admin, "add projects")
        mutate(request, p, "project.add", body.name, lambda: identity.add_project(body.name))
        return {"name": body.name}

    def member(request: Request, p: Principal, project: str, user: str, role: str | None) -> dict:
        p.require(
            p.is_admin or (p.project == project and p.role == "project_admin"),
            f"manage the members of project {project}",
        )
        target = f"{project}/{user}"
        mutate(request, p, "project.member", target, lambda: identity.set_member(project, user, role))
        return {"project": project, "user": user, "role": role}

    @app.put("/api/projects/{project}/members/{user}", tags=["identity"])
    def set_member(project: str, user: str, body: MemberBody, p: Caller, request: Request) -> dict:
        """Give a user a role in the project (admins, and the project's admins)."""
        return member(request, p, project, user, body.role)

    @app.delete("/api/projects/{project}/members/{user}", tags=["identity"])
    def remove_member(project: str, user: str, p: Caller, request: Request) -> dict:
        return member(request, p, project, user, None)

    @app.get("/api/quotas", tags=["quotas"])
    def quotas(p: Caller) -> dict:
        from suanli.run.quotas import QuotaGate

        mine = {("user", p.user), ("project", p.project)}
        return {"quotas": QuotaGate.load(store).to_json(lambda key: p.is_admin or key in mine)}

    @app.put("/api/quotas/{scope}/{name}", tags=["quotas"])
    def set_quota(scope: str, name: str, body: QuotaBody, p: Caller, request: Request) -> dict:
        p.require(p.is_admin, "set quotas")
        q = mutate(
            request,
            p,
            "quota.set",
            f"{scope}/{name}",
            lambda: identity.set_quota(
                scope,
                name,
                gpus=body.gpus,
                gpu_hours=body.gpu_hours,
                cost_usd=body.cost_usd,
                period=body.period,
                clear=body.clear,
            ),
        )
        return q.to_json()

    @app.get("/api/usage", tags=["quotas"])
    def usage(
        p: Caller,
        days: Annotated[float, Query(gt=0, le=400)] = 30,
        bucket_hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24,
    ) -> dict:
        """GPU-hours and dollars per user and per project over time (what the caller may read)."""
        from suanli.run.quotas import usage_series

        if days * 24 / bucket_hours > MAX_BUCKETS:
            raise BadInput(
                "bucket_hours", bucket_hours, f"too small for {days:g} days (at most {MAX_BUCKETS} buckets)"
            )
        now = time.time()
        # A member sees their project, and its users' use within it; an admin sees everything.
        project = None if p.is_admin else (p.project or "")
        return usage_series(store, now - days * 86400, bucket_hours * 3600, now, project=project)

    @app.get("/api/audit", tags=["identity"])
    def audit(
        p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100, before_id: int | None = None
    ) -> dict:
        p.require(p.is_admin, "read the audit log")
        return {"entries": identity.audit_log(limit=limit, before_id=before_id)}

    # ---- jobs ---------------------------------------------------------------------------------

    def parse_spec(doc: dict[str, Any], p: Principal) -> JobSpec:
        """A spec sent by a client; a relative `workdir` (or none) is taken inside the caller's own
        folder on the server, never the server's working directory."""
        from suanli.core.files import private_dir
        from suanli.jobs.spec import parse_spec as parse
        from suanli.store.paths import home

        base = private_dir(home() / "workdirs" / p.user)
        return parse(doc, base_dir=base, source="request")

    @app.post("/api/jobs", tags=["jobs"])
    def submit(body: SubmitBody, p: Caller, request: Request) -> dict:
        """Queue one job (`spec`) or several (`specs`, all or none); `dry_run` stores nothing and says
        what the scheduler would do now."""
        docs = [body.spec] if body.spec is not None else body.specs
        if not docs or (body.spec is not None and body.specs is not None):
            raise BadInput("spec", None, "give exactly one of `spec` (one job) or `specs` (a list)")
        c = client(p)
        specs = [parse_spec(d, p) for d in docs]
        if body.dry_run:
            from suanli import flow

            spec = c._as_principal(specs[0])
            return flow.run(spec, client=c, dry_run=True).dry_run or {}
        audit = {"actor": p.user, "action": "job.submit", "address": address(request)}
        request.state.audited = True
        try:
            ids = c.submit_many(specs, key=body.key, audit=audit)
        except SuanliError as e:
            identity.audit(p.user, "job.submit", "", ok=False, address=audit["address"], detail=str(e)[:500])
            raise
        return {"id": ids[0], "ids": ids, "status": "PENDING"}

    @app.get("/api/jobs", tags=["jobs"])
    def jobs(
        p: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        before_id: int | None = None,
        state: Annotated[list[str] | None, Query()] = None,
        user: Annotated[str | None, Query(max_length=64)] = None,
        name: Annotated[str | None, Query(max_length=255)] = None,
        all: bool = True,
    ) -> dict:
        """Jobs newest first, a page at a time (`before_id` is the previous page's `next_before_id`)."""
        rows = client(p).jobs(all=all, user=user, limit=limit, states=state, before_id=before_id, name=name)
        return {
            "jobs": [j.to_json() for j in rows],
            "next_before_id": rows[-1].id if len(rows) == limit else None,
        }

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job(job_id: int, p: Caller) -> dict:
        return client(p).get(job_id).to_json()

    @app.get("/api/jobs/{job_id}/spec", tags=["jobs"])
    def job_spec(job_id: int, p: Caller) -> dict:
        """The stored spec; env values only for whoever may manage the job; secrets never."""
        return client(p).spec_json(job_id)

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"])
    def job_events(job_id: int, p: Caller) -> dict:
        return {"events": [e.to_json() for e in client(p).events(job_id)]}

    @app.get("/api/jobs/{job_id}/metrics", tags=["jobs"])
    def job_metrics(job_id: int, p: Caller) -> dict:
        return {"metrics": client(p).metric_history(job_id)}

    @app.get("/api/jobs/{job_id}/logs", tags=["jobs"])
    def job_logs(job_id: int, p: Caller, attempt: int | None = None, follow: bool = False) -> Response:
        """The log as plain text; with `follow`, streamed until the job ends."""
        chunks = client(p).follow(job_id, attempt, follow=follow, idle_s=10.0, poll_s=0.25)
        first = next(chunks, "")  # a bad job id or attempt is refused before the stream starts
        if follow:
            return streams.response(p.user, _chain(first, chunks), "text/plain; charset=utf-8")
        return StreamingResponse(_chain(first, chunks), media_type="text/plain; charset=utf-8")

    @app.get("/api/jobs/{job_id}/events/stream", tags=["jobs"])
    def job_stream(
        job_id: int, p: Caller, tail_bytes: Annotated[int | None, Query(ge=0, le=1 << 30)] = None
    ) -> StreamingResponse:
        """Server-sent events: `log` (text; with `tail_bytes`, a long log from that far before its end),
        `job` (the record when it changes), then `end`."""
        c = client(p)
        c.get(job_id)
        events = _sse(c, job_id, tail_bytes)
        return streams.response(p.user, events, "text/event-stream", **{"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel(job_id: int, p: Caller, request: Request, wait: bool = False) -> dict:
        c = client(p)
        record = mutate(request, p, "job.cancel", str(job_id), lambda: c.cancel(job_id, wait=wait))
        return {"id": record.id, "status": record.state}

    @app.post("/api/jobs/{job_id}/resubmit", tags=["jobs"])
    def resubmit(job_id: int, p: Caller, request: Request) -> dict:
        c = client(p)
        new = mutate(request, p, "job.resubmit", str(job_id), lambda: c.resubmit(job_id))
        return {"id": new, "status": "PENDING"}

    @app.get("/api/jobs/{job_id}/samples", tags=["monitor"])
    def job_samples(job_id: int, p: Caller, attempt: int | None = None, since: float | None = None) -> dict:
        """What the job used over time: a sample per node per interval (`samples`), and one point per
        interval with the nodes summed (`series`)."""
        from suanli.monitor.report import usage_series

        if since is not None and not math.isfinite(since):
            raise BadInput("since", since, "must be a finite Unix time")
        rows = client(p).samples(job_id, attempt, since)
        return {"samples": rows, "series": usage_series(rows)}

    @app.get("/api/report", tags=["monitor"])
    def report(
        p: Caller,
        job: int | None = None,
        user: Annotated[list[str] | None, Query(max_length=64)] = None,
        project: Annotated[list[str] | None, Query(max_length=64)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    ) -> dict:
        """An efficiency report (as `suanli report`): of one `job`, or of the jobs of `user`s in
        `project`s that ran `since` ("7d", a date): totals, per user, the worst by waste, per job."""
        return client(p).report(job, users=user, projects=project, since=since, limit=limit)

    @app.get("/api/owners", tags=["monitor"])
    def owners(p: Caller, since: Annotated[str | None, Query(max_length=64)] = None) -> dict:
        """What each owner (project) contributed to the pool and consumed (as `suanli report --owners`)."""
        return client(p).owners(since)

    @app.get("/api/top", tags=["monitor"])
    def top(p: Caller) -> dict:
        """The running jobs the caller may read with what they use now (as `suanli top`), and the open
        alerts."""
        return client(p).top()

    @app.get("/api/alerts", tags=["monitor"])
    def alerts(
        p: Caller,
        all: bool = False,
        job: int | None = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> dict:
        """Alerts newest first: the open ones, or `all`; of one `job` when given."""
        return {"alerts": client(p).alerts(open_only=not all, job_id=job, since=since, limit=limit)}

    @app.get("/api/queue", tags=["jobs"])
    def queue(p: Caller) -> dict:
        """Pending jobs in start order with why each waits (only those the caller may read)."""
        return {"jobs": client(p).queue()}

    @app.get("/api/nodes", tags=["pool"])
    def nodes(p: Caller) -> dict:
        return {"nodes": [n.to_json() for n in client(p).nodes()]}

    # ---- estimate, plan, simulate -------------------------------------------------------------

    @app.post("/api/estimate", tags=["estimate"])
    def estimate(body: EstimateBody, p: Caller) -> dict:
        """Time, device-hours, memory and energy of a training workload on the given accelerators."""
        from suanli.core.workload import workload_from_dict
        from suanli.jobs.spec import parse_accelerator_choices
        from suanli.schedule.estimates import workload_estimate

        wl = workload_from_dict(body.workload)
        accels = parse_accelerator_choices(body.accelerators, "accelerators")[0][0]
        est = workload_estimate(wl, accels, body.num_nodes)
        if est is None:
            raise BadInput("workload", "", "has nothing to estimate here (a training workload and a GPU)")
        return est.to_json()

    @app.post("/api/plan", tags=["plan"])
    def plan(body: PlanBody, p: Caller) -> dict:
        """Where to get the compute for a workload at the least cost for a deadline (as `suanli plan`)."""
        from suanli.plan import plan as run_plan

        fields = body.model_dump(exclude={"workload"})
        for key in ("accelerators", "modes", "providers"):
            fields[key] = ",".join(fields[key]) if fields[key] else None
        return run_plan(body.workload, **fields).to_json()

    @app.post("/api/simulate", tags=["simulate"])
    def simulate(body: SimulateBody, p: Caller) -> dict:
        """Replay a trace (synthetic:N, or `trace_csv`) on a cluster under several policies."""
        return _simulate(body)

    # ---- monitoring ---------------------------------------------------------------------------

    @app.get("/metrics", include_in_schema=False)
    def metrics(p: Caller) -> Response:
        """The Prometheus exposition (docs/monitoring.md). It names jobs and users, so it takes a token:
        an admin's sees every job; any other only its project's jobs and alerts, as /api/jobs does."""
        from suanli.monitor.prometheus import CONTENT_TYPE, render

        body = render(store, projects=None if p.is_admin else [p.project or ""])
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    # ---- dashboard ----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/static/"):  # revalidated (ETag), so an upgrade is seen at once
            response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'",
        )
        return response

    return app


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _sse(c: Client, job_id: int, tail_bytes: int | None = None) -> Iterator[str]:
    """The job's log and record as server-sent events until it ends (polled from the store)."""
    last = None
    for chunk in c.follow(job_id, idle_s=2.0, poll_s=0.25, tail_bytes=tail_bytes):
        yield f"event: log\ndata: {json.dumps({'text': chunk})}\n\n" if chunk else ": idle\n\n"
        doc = c.get(job_id).to_json()
        if doc != last:
            last = doc
            yield f"event: job\ndata: {json.dumps(doc)}\n\n"
    record = c.wait(job_id)
    yield f"event: job\ndata: {json.dumps(record.to_json())}\n\n"
    yield f"event: end\ndata: {json.dumps({'status': record.state})}\n\n"


def _simulate(body: SimulateBody) -> dict:
    import tempfile

    from suanli.core.errors import BadInput
    from suanli.schedule.policies import get_policy
    from suanli.schedule.simulate import (
        PLACEMENTS,
        load_trace,
        parse_cluster,
        replay_policy,
        simulate,
        summarize,
        utilization_series,
    )
    from suanli.schedule.simulate.traces import synthetic_size

    if body.placement not in PLACEMENTS:
        raise BadInput("placement", body.placement, "must be one of " + ", ".join(PLACEMENTS))
    for name in body.policies:
        get_policy(name)
    nodes = parse_cluster(body.cluster)
    gpus = sum(n.gpus for n in nodes)
    if body.trace_csv is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
            f.write(body.trace_csv)
            f.flush()
            trace = load_trace(f.name, fmt=body.format, seed=body.seed, gpus_total=gpus)
        source = "trace_csv"
    else:
        if not body.trace.startswith("synthetic:"):
            raise BadInput("trace", body.trace, "must be synthetic:N (or send the trace itself as trace_csv)")
        if synthetic_size(body.trace) > 20_000:
            raise BadInput("trace", body.trace, "at most synthetic:20000 through the server")
        trace = load_trace(body.trace, seed=body.seed, gpus_total=gpus)
        source = body.trace
    if not trace.jobs:
        raise BadInput("trace", source, "has no valid jobs to replay")
    results = [
        simulate(
            trace.jobs, nodes, replay_policy(n, body.placement), placement=body.placement, skip_invalid=True
        )
        for n in body.policies
    ]
    return {
        "trace": source,
        "cluster": body.cluster,
        "gpus": gpus,
        "placement": body.placement,
        "policies": [
            {
                **summarize(r).as_dict(),
                "utilization_over_time": [[round(t, 1), round(u, 4)] for t, u in utilization_series(r)],
            }
            for r in results
        ],
    }
