"""Commands about the pool and the agent: nodes, agent start|stop|status."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from suanli.cli.output import emit_json, out, safe, size
from suanli.cli.state import client

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]

agent_app = typer.Typer(help="The local background agent that schedules and runs jobs.", no_args_is_help=True)


def nodes(as_json: JsonOpt = False) -> None:
    """Show the pool's nodes: capacity, what each running job uses there, status (LOST: left the pool)."""
    records = client().nodes()
    if as_json:
        emit_json({"nodes": [n.to_json() for n in records]})
        return
    owned = any(n.owner for n in records)  # the owner column only where owners share the pool
    table = Table("node", *(["owner"] if owned else []), "status", "CPUs used/total", "memory used/total",
                  "GPUs used/total", "jobs")  # fmt: skip
    for n in records:
        accel = f"{n.used_gpus}/{n.gpus} {n.accelerator}" if n.accelerator else "-"
        jobs = ", ".join(
            f"{job_id} ({sl.gpus} GPU)" if sl.gpus else f"{job_id} ({sl.cpus:g} CPU)" for job_id, sl in n.jobs
        )
        table.add_row(
            safe(n.name), *([safe(n.owner or "-")] if owned else []), n.status, f"{n.used_cpus:g}/{n.cpus:g}",
            f"{size(n.used_memory_bytes)}/{size(n.memory_bytes)}", safe(accel), jobs or "-",
        )  # fmt: skip
    out.print(table)


def _agent_doc(info, running: bool) -> dict:  # type: ignore[no-untyped-def]
    if info is None:
        return {"running": False}
    doc = {"running": running, "pid": info.pid, "db_url": info.db_url, "node": info.node, "pool": info.pool}
    if info.metrics_address:
        doc["metrics_address"] = info.metrics_address
    return doc


@agent_app.command("start")
def agent_start(
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Use this Ray cluster (HOST:PORT, ray://HOST:PORT, auto) as the pool."
        ),
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            envvar="SUANLI_METRICS_ADDRESS",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464). Whoever "
            "reaches the port reads job ids and user names: keep it on loopback or firewalled.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the agent (commands that need it start it themselves). Its pool is this machine, or the
    Ray cluster named by --ray-address, RAY_ADDRESS or SUANLI_HOME/pool.yaml."""
    from suanli.run.control import ensure_agent, running_agent

    if metrics_address:
        from suanli.monitor.prometheus import check_address

        check_address(metrics_address, free=running_agent() is None)
    info = ensure_agent(client().store.url, ray_address=ray_address, metrics_address=metrics_address)
    if as_json:
        emit_json(_agent_doc(info, True))
    else:
        metrics = f", metrics http://{info.metrics_address}/metrics" if info.metrics_address else ""
        out.print(
            f"agent running (pid {info.pid}, node {info.node}, pool {info.pool}, db {info.db_url}{metrics})"
        )


@agent_app.command("stop")
def agent_stop(as_json: JsonOpt = False) -> None:
    """Stop the agent. Running jobs keep running; the next agent adopts them."""
    from suanli.run.control import stop_agent

    info = stop_agent()
    if as_json:
        emit_json({"stopped": info is not None, **({"pid": info.pid} if info else {})})
    else:
        out.print(f"agent {info.pid} stopped" if info else "no agent was running")


@agent_app.command("status")
def agent_status(as_json: JsonOpt = False) -> None:
    """Is the agent running, and for which database?"""
    from suanli.run.control import running_agent

    client().revive()  # jobs left RUNNING with no agent: start one to watch them
    info = running_agent()
    if as_json:
        emit_json(_agent_doc(info, info is not None))
    else:
        out.print(
            f"agent running (pid {info.pid}, node {info.node}, db {info.db_url})" if info else "no agent"
        )
