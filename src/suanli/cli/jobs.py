"""Commands that act on jobs: run, submit, status, logs, cancel."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from suanli.cli.output import clock, emit_json, err, metrics_line, out, safe, seconds
from suanli.cli.state import client, db_url, remote
from suanli.core.errors import BadInput

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
EnvOpt = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", help="KEY=VALUE added to the job's envs; KEY alone takes your value of KEY."),
]
JobFile = Annotated[Path, typer.Argument(help="The job's YAML file.", show_default=False)]
BackendOpt = Annotated[
    str | None, typer.Option("--backend", help="local or ray (default: the spec's `backend`, else local).")
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        help="The Ray cluster that is the pool (the agent is started with it; a running agent must use it).",
    ),
]


def _overrides(backend: str | None, ray_address: str | None) -> dict:
    """CLI flags that replace fields of the file; the job's user is whoever submits it (SUANLI_USER, else
    the login name), never the environment of the agent that stores it."""
    user = os.environ.get("SUANLI_USER") or getpass.getuser()
    return {"backend": backend, "ray_address": ray_address or None, "user": user}


def _envs(values: list[str] | None, flag: str = "--env") -> dict[str, str]:
    """KEY=VALUE pairs; a bare KEY passes the submitter's own value (as SkyPilot's --env KEY does): the
    job never sees the environment of whoever started the agent, only what is passed explicitly."""
    env = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not key:
            raise BadInput(flag, item, "must be KEY=VALUE, or KEY to pass your value of KEY")
        if not sep:
            if key not in os.environ:
                raise BadInput(flag, key, "is not set in your environment; give it as KEY=VALUE")
            value = os.environ[key]
        env[key] = value
    return env


def run(
    job_file: JobFile,
    env: EnvOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; start nothing.")
    ] = False,
    backend: BackendOpt = None,
    ray_address: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a job and stay with it: queued, started, its log, its metrics, how it ended.

    Ctrl-C cancels the job (use `suanli submit` to leave it running)."""
    from suanli import flow
    from suanli.run.metrics import parse_line

    c = client()
    spec = c.load(job_file, _envs(env), _overrides(backend, ray_address))
    if dry_run:
        remote_run = getattr(c, "remote", False)
        doc = (c.dry_run(spec) if remote_run else flow.run(spec, client=c, dry_run=True).dry_run) or {}
        if as_json:
            emit_json(doc)
            return
        name = safe(repr(spec.name))
        if doc["would_start_now"] is None:
            out.print(f"[bold]dry run[/]: job {name} goes to Ray, which places it ({doc['policy']})")
        elif doc["would_start_now"]:
            where = safe(", ".join(doc["placement"]))
            out.print(f"[bold]dry run[/]: job {name} ({doc['policy']} policy) would start now on {where}")
        else:
            out.print(f"[bold]dry run[/]: job {name} waits: {safe(doc['waiting_reason'])}")
        launch = doc["launch"]
        if doc.get("estimate"):
            e = doc["estimate"]
            out.print(
                f"  estimate: {e['wall_hours']:.1f} h wall, {e['device_hours']:.0f} {e['accelerator']}-hours "
                f"({e['device_hours_low']:.0f}-{e['device_hours_high']:.0f}), "
                f"{e['memory_per_device_bytes'] / 2**30:.1f} GiB per device"
            )
        out.print(f"  workdir: {safe(launch['workdir'])}")
        if launch["setup"]:
            out.print(f"  setup:   {safe(launch['setup'].strip())}")
        out.print(f"  run:     {safe(launch['run'].strip())}  (x{launch['num_workers']} workers)")
        out.print("  env:     " + safe(" ".join(f"{k}={v}" for k, v in launch["env"].items())))
        for note in doc.get("notes") or []:
            out.print(f"  note:    {safe(note)}")
        out.print("nothing was stored or started")
        return

    log_console = err if as_json else out
    job_id: list[int] = []

    def on_event(what: str, record) -> None:  # type: ignore[no-untyped-def]
        job_id[:1] = [record.id]
        if what == "queued":
            err.print(f"job {record.id} ({safe(record.name)}) queued")
            for line in advice_notes(c, record.id):
                err.print(f"  {safe(line)}")
        else:
            a = record.attempts[-1]
            err.print(f"job {record.id} {what} on {safe(a.node)} (pid {a.pid or '?'})")

    def on_log(chunk: str) -> None:
        for line in chunk.splitlines(keepends=True):
            points = parse_line(line, 0.0)
            if points and not as_json:
                step = f" (step {points[0].step})" if points[0].step is not None else ""
                shown = " ".join(f"{p.name}={p.value:.4g}" for p in points)
                log_console.print(f"[dim]metric[/] {shown}{step}")
            else:
                log_console.file.write(line)
        log_console.file.flush()

    try:
        result = flow.run(spec, client=c, on_event=on_event, on_log=on_log)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        if job_id:
            err.print(f"\ncancelling job {job_id[0]} ...")
            c.cancel(job_id[0])
            err.print(f"job {job_id[0]} cancelled")
        raise typer.Exit(130) from None
    record = result.record
    assert record is not None
    if as_json:
        emit_json(record.to_json())
    else:
        colour = "green" if record.state == "SUCCEEDED" else "red"
        tail = metrics_line(record.metrics) or safe(record.reason or "")
        out.print(
            f"job {record.id} [bold {colour}]{record.state}[/] in {seconds(record.wall_seconds)}"
            f" · attempts {len(record.attempts)} · {tail}"
        )
    if record.state != "SUCCEEDED":
        raise typer.Exit(1)


def advice_notes(c: Any, job_id: int) -> list[str]:
    """What admission said about the job's request, from its earlier runs (monitor/advice.py), as
    the stored spec's notes keep it (here or on a server)."""
    notes = c.spec_json(job_id).get("notes") or []
    return [n for n in notes if isinstance(n, str) and n.startswith(("advice:", "right_size:"))]


def submit(
    job_file: JobFile,
    env: EnvOpt = None,
    backend: BackendOpt = None,
    ray_address: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a job and return its id at once; the job runs on after this command exits."""
    from suanli.run import control

    c = remote()
    if c is not None:
        job_id = c.submit(c.load(job_file, _envs(env), _overrides(backend, ray_address)))
    else:
        job_id = control.submit(job_file, _envs(env), db_url(), _overrides(backend, ray_address))
    advice = advice_notes(c or client(), job_id)
    if as_json:
        emit_json({"id": job_id, "status": "PENDING", "advice": advice})
    else:
        out.print(job_id)
        for line in advice:
            err.print(safe(line))


def status(
    job_id: Annotated[int | None, typer.Argument(help="A job id; all recent jobs without it.")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", "-a", help="Include every finished job.")] = False,
    user: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one job (attempts, metrics, reason) or the recent jobs."""
    c = client()
    if job_id is not None:
        record = c.get(job_id)
        if as_json:
            emit_json(record.to_json())
            return
        name, user = safe(record.name), safe(record.user)
        out.print(f"[bold]job {record.id}[/] {name}  [bold]{record.state}[/]  user {user}")
        if record.reason:
            out.print(f"  reason: {safe(record.reason)}")
        out.print(f"  wall: {seconds(record.wall_seconds)}  log: {safe(record.to_json()['log_path'])}")
        if record.metrics:
            out.print(f"  metrics: {metrics_line(record.metrics)}")
        for alert in c.alerts(job_id=record.id) if record.state == "RUNNING" else []:  # the monitor's
            out.print(f"  [bold red]alert[/] {safe(alert['rule'])}: {safe(alert['message'])}")
        cost = record.preemption_cost()
        if cost["preemptions"]:
            out.print(
                f"  preempted {cost['preemptions']} time(s): its preempted attempts held "
                f"{cost['preempted_gpu_seconds'] / 3600:.3g} GPU-h; "
                f"it waited {seconds(cost['requeued_seconds'])} to run again"
            )
        table = Table("attempt", "nodes", "pid", "start", "end", "exit", "signal", "reason")
        for a in record.attempts:
            table.add_row(
                str(a.number), safe(", ".join(a.nodes)), str(a.pid or "-"),
                clock(a.started_at), clock(a.ended_at),
                "-" if a.exit_code is None else str(a.exit_code), a.signal or "-", safe(a.reason or ""),
            )  # fmt: skip
        if record.attempts:
            out.print(table)
        last = record.last_attempt
        if last and last.log_tail and record.state == "FAILED":
            out.print("  last lines of the log:")
            out.print("    " + safe(last.log_tail).replace("\n", "\n    "))
        return
    jobs = c.jobs(all=all_jobs, user=user)
    if as_json:
        emit_json({"jobs": [j.to_json() for j in jobs]})
        return
    table = Table("id", "name", "user", "status", "attempts", "resources", "wall", "metrics / reason")
    alerts: dict[int, list[str]] = {}  # open alerts of the running jobs (the monitor's)
    for alert in c.alerts() if any(j.state == "RUNNING" for j in jobs) else []:
        alerts.setdefault(alert["job_id"], []).append(alert["rule"])
    for j in jobs:
        res = f"{j.cpus:g} CPU" + (f", {j.gpus}x {j.accelerator}" if j.accelerator else "")
        shown = metrics_line(j.metrics) or safe(j.reason or "")
        if j.id in alerts:
            shown = f"[bold red]alert: {safe(', '.join(alerts[j.id]))}[/] {shown}"
        table.add_row(
            str(j.id), safe(j.name), safe(j.user), j.state, str(len(j.attempts)), safe(res),
            seconds(j.wall_seconds), shown,
        )  # fmt: skip
    out.print(table)


def queue(as_json: JsonOpt = False) -> None:
    """Pending jobs in the order they will start, and why each one waits."""
    rows = client().queue()
    if as_json:
        emit_json({"jobs": rows})
        return
    table = Table("pos", "id", "name", "user", "priority", "expected", "why it waits")
    for r in rows:
        est = r["estimated_duration_s"]
        expected = "" if est is None else seconds(est) + ("" if r["estimate_stated"] else " (history)")
        table.add_row(
            str(r["position"]), str(r["id"]), safe(r["name"]), safe(r["user"]), str(r["priority"]), expected,
            safe(r["reason"]),
        )  # fmt: skip
    out.print(table)
    if rows:
        out.print(f"policy: {rows[0]['policy']}")


def logs(
    job_id: Annotated[int, typer.Argument(help="The job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    attempt: Annotated[int | None, typer.Option(help="This attempt's log (default: the latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a job's log (stdout and stderr of its processes)."""
    c = client()
    chunks = c.follow(job_id, attempt, follow=follow)
    if as_json:
        record = c.get(job_id)
        number = attempt or (record.last_attempt.number if record.last_attempt else None)
        emit_json({"id": job_id, "attempt": number, "log": "".join(chunks)})
        return
    for chunk in chunks:
        sys.stdout.write(chunk)
        sys.stdout.flush()


def cancel(
    job_ids: Annotated[list[int], typer.Argument(help="One or more job ids.")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel jobs: pending ones at once, running ones by stopping their whole process group."""
    c = client()
    for job_id in job_ids:
        c.get(job_id)  # every id must exist before anything is cancelled
    records = [c.cancel(job_id) for job_id in job_ids]
    if as_json:
        emit_json({"jobs": [{"id": r.id, "status": r.state} for r in records]})
        return
    for r in records:
        out.print(f"job {r.id} {r.state}")
