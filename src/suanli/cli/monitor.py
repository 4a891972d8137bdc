"""Commands that watch jobs: top (the running jobs, live), report (efficiency, like seff), alerts."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from suanli.cli.output import emit_json, err, out, safe
from suanli.cli.state import client
from suanli.core.errors import BadInput

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
ROWS_SHOWN = 20  # job rows a group report prints (all are counted) ...
ROWS_JSON = 1000  # ... and puts in its --json
MARKS = {"idle": "IDLE", "stalled": "STALLED", "memory": "MEM", "overdue": "LATE", "cost": "COST"}


# ---- formatting -----------------------------------------------------------------------------------------


def hms(seconds: float | None) -> str:
    """seff's times: [D-]HH:MM:SS."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = round(max(0.0, seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x: float | None) -> str:
    from suanli.monitor.report import amount

    return amount(x)


def usd(x: float | None) -> str:
    if x is None:
        return "-"
    return "$0" if x == 0 else "<$0.01" if x < 0.01 else f"${x:,.2f}"


def _plot_path(plot: Path | None) -> Path | None:
    if plot is None:
        return None
    from suanli.monitor.report import plot_target

    return plot_target(plot)


# ---- report ---------------------------------------------------------------------------------------------


def report(
    job_id: Annotated[int | None, typer.Argument(help="A job id; without it, a report of many jobs.")] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", "-u", help="Jobs of this user (repeatable).")
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Jobs of this project (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help='Only jobs that ran within this long ("7d", "12h") or since a date.')
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help=f"Job rows, newest first (default {ROWS_SHOWN}, {ROWS_JSON} with --json); all are counted."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a PNG/SVG: utilisation over time (a job), or efficiency per user or job."),
    ] = None,
    owners: Annotated[
        bool,
        typer.Option(
            "--owners", help="What each owner (project) gave the pool and took: CPU/GPU-hours, balance."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Efficiency of a job (like Slurm's seff) or of a user's or project's jobs, while they run and
    after: CPU efficiency, memory peak against the request, GPU-hours held and used, cost, energy,
    and what to change. With --owners: the owners' contribution accounting."""
    target = _plot_path(plot)
    if limit is not None and limit < 0:
        raise BadInput("limit", limit, "must be 0 or more")
    c = client()
    if owners:
        if job_id is not None or user or project or target is not None:
            raise BadInput("--owners", "with a job, --user, --project or --plot", "takes --since only")
        doc = c.owners(since)
        if as_json:
            emit_json(doc)
        else:
            _print_owners(doc)
        return
    if job_id is not None:
        if user or project or since:
            raise BadInput("job", job_id, "give a job id, or --user/--project/--since, not both")
        doc = c.report(job_id)
        if target is not None:
            from suanli.monitor.report import plot_job

            plot_job(doc, c.samples(job_id), target)
            doc["plot"] = str(target)
        if as_json:
            emit_json(doc)
        else:
            _print_job(doc)
            if target is not None:
                err.print(f"wrote {safe(target)}")
        return
    shown = limit if limit is not None else (ROWS_JSON if as_json else ROWS_SHOWN)
    doc = c.report(users=user, projects=project, since=since, limit=shown)
    if target is not None:
        from suanli.monitor.report import plot_group

        plot_group(doc, target)
        doc["plot"] = str(target)
    if as_json:
        emit_json(doc)
        return
    _print_group(doc)
    if target is not None:
        err.print(f"wrote {safe(target)}")


def _print_owners(doc: dict) -> None:
    from suanli.cli.tables import Column, print_table, print_wrapped

    cols = [
        Column("owner"), Column("nodes", "right"), Column("gave CPU-h", "right"),
        Column("took CPU-h", "right"),
        Column("balance CPU-h", "right"), Column("gave GPU-h", "right", drop=2),
        Column("took GPU-h", "right", drop=2), Column("balance GPU-h", "right", drop=2),
        Column("share", "right", drop=1),
    ]  # fmt: skip
    rows = [
        [safe(o["owner"]), str(len(o["nodes"])), f"{o['contributed_cpu_hours']:.2f}",
         f"{o['consumed_cpu_hours']:.2f}", f"{o['balance_cpu_hours']:+.2f}",
         f"{o['contributed_gpu_hours']:.2f}", f"{o['consumed_gpu_hours']:.2f}",
         f"{o['balance_gpu_hours']:+.2f}", f"{o['share']:.1%}"]
        for o in doc["owners"]
    ]  # fmt: skip
    print_table(out, f"Owners (share of what was given, by {doc['dominant'].upper()}-hours)", cols, rows)
    for line in doc["assumptions"]:
        print_wrapped(out, line)


def _print_job(d: dict) -> None:
    p = out.print
    p(f"[bold]Job ID:[/] {d['id']}")
    p(f"Name: {safe(d['name'])}")
    p(f"User/Project: {safe(d['user'])}/{safe(d['project'] or '-')}")
    last = d["by_attempt"][-1] if d["by_attempt"] else None
    state = d["state"] + (f" ({safe(last['reason'])})" if last and last["reason"] and d["ended_at"] else "")
    p(f"State: {state}")
    p(f"Attempts: {d['attempts']}")
    nodes = f" (on {len({a['node'] for a in d['by_attempt']})} node(s))" if last else ""
    p(f"Cores: {d['cpus']:g}{nodes}")
    running = "  (running: figures so far)" if not d["ended_at"] and last else ""
    p(f"Wall-clock time: {hms(d['wall_seconds'])}{running}")
    core_walltime = d["cpus"] * d["wall_seconds"]
    p(f"CPU Utilized: {hms(d['cpu_seconds'])}")
    source = f"  (from {d['cpu_source']})" if d["cpu_source"] else ""
    p(f"CPU Efficiency: {pct(d['cpu_efficiency'])} of {hms(core_walltime)} core-walltime{source}")
    p(f"Memory Utilized: {size(d['memory_peak_bytes'])}")
    mem_of = size(d["memory_requested_bytes"]) if d["memory_requested_bytes"] else "no request"
    p(f"Memory Efficiency: {pct(d['memory_efficiency'])} of {mem_of}")
    if d["gpus"]:
        p(f"GPUs: {d['gpus']} x {safe(d['accelerator'] or '?')}")
        held, used = num(d["gpu_hours_held"]), num(d["gpu_hours_used"])
        p(f"GPU-hours: {held} held, {used} used ({pct(d['gpu_utilization'])} utilisation)")
        if d["gpu_memory_peak_bytes"] is not None:
            p(f"GPU Memory Utilized: {size(d['gpu_memory_peak_bytes'])}")
    p(f"Cost: {usd(d['cost_usd'])}" + (f"  (unused: {usd(d['wasted_usd'])})" if d["wasted_usd"] else ""))
    energy = "not measured" if d["energy_kwh"] is None else f"{num(d['energy_kwh'])} kWh (GPUs, measured)"
    p(f"Energy: {energy}")
    from suanli.cli.tables import print_wrapped

    if d["notes"]:
        p("[bold]Notes:[/]")
        for n in d["notes"]:
            print_wrapped(out, n, indent="  - ", hang="    ")
    if d["alerts"]:
        p("[bold]Alerts:[/]")
        for a in d["alerts"]:
            state = "open" if a["open"] else "closed"
            p(safe(f"  - [{state}] {a['rule']}: {a['message']}"))
    for i, line in enumerate(d["assumptions"]):
        print_wrapped(out, line, indent="How: " if i == 0 else "     ", hang="       ")


def _print_group(doc: dict) -> None:
    from suanli.cli.tables import Column, print_table, print_wrapped

    t = doc["totals"]
    f = doc["filters"]
    who = []
    if f["users"]:
        who.append("user " + ", ".join(f["users"]))
    if f["projects"]:
        who.append("project " + ", ".join(f["projects"]))
    scope = "; ".join(who) or "all jobs"
    since = f" since {f['since'][:19].replace('T', ' ')} UTC" if f["since"] else ""
    counts = f"{t['jobs']} jobs ({t['running']} running), {t['attempts']} attempts"
    out.print(f"[bold]Report[/]: {safe(scope)}{since}: {counts}")
    out.print(
        f"CPU: {num(t['core_hours_held'])} core-hours held, {num(t['cpu_hours_used'])} used: "
        f"efficiency {pct(t['cpu_efficiency'])}; memory efficiency {pct(t['memory_efficiency'])}"
    )
    if t["gpu_hours_held"]:
        out.print(
            f"GPU: {num(t['gpu_hours_held'])} GPU-hours held, {num(t['gpu_hours_used'])} used "
            f"({pct(t['gpu_utilization'])}): {num(t['gpu_hours_wasted'])} unused"
        )
    energy = "not measured" if t["energy_kwh"] is None else f"{num(t['energy_kwh'])} kWh (GPUs, measured)"
    out.print(f"Cost: {usd(t['cost_usd'])} (unused: {usd(t['wasted_usd'])}); energy: {energy}")
    if not t["jobs"]:
        return
    cols = [
        Column("user"), Column("jobs", "right"), Column("core-h", "right", 3), Column("CPU eff", "right"),
        Column("GPU-h", "right", 2), Column("GPU util", "right"), Column("cost", "right"),
        Column("unused", "right", 1),
    ]  # fmt: skip
    rows = [
        [u["user"], str(u["jobs"]), num(u["core_hours_held"]), pct(u["cpu_efficiency"]),
         num(u["gpu_hours_held"]), pct(u["gpu_utilization"]), usd(u["cost_usd"]), usd(u["wasted_usd"])]
        for u in doc["by_user"][:50]
    ]  # fmt: skip
    out.print()
    more = f" (50 of {len(doc['by_user'])})" if len(doc["by_user"]) > 50 else ""
    print_table(out, "By user" + more, cols, rows)
    if doc["worst"]:
        out.print()
        print_table(out, "The most unused spend", _job_columns(), [_job_row(d) for d in doc["worst"]])
    if doc["jobs"]:
        out.print()
        title = f"Jobs, newest first ({len(doc['jobs'])} of {doc['jobs_total']}; more with --limit N)"
        print_table(out, title, _job_columns(), [_job_row(d) for d in doc["jobs"]])
    for n in doc["notes"]:
        print_wrapped(out, n, indent="note: ", hang="      ")


def _job_columns() -> list:
    from suanli.cli.tables import Column

    return [
        Column("id", "right"), Column("name", drop=4, wrap=True, min_width=8), Column("user", drop=5),
        Column("state", drop=6), Column("wall", "right", 3), Column("CPU eff", "right"),
        Column("mem eff", "right", 2), Column("GPU util", "right"), Column("cost", "right"),
        Column("unused", "right", 1),
    ]  # fmt: skip


def _job_row(d: dict) -> list[str]:
    return [
        str(d["id"]), d["name"], d["user"], d["state"], hms(d["wall_seconds"]), pct(d["cpu_efficiency"]),
        pct(d["memory_efficiency"]), pct(d["gpu_utilization"]) if d["gpus"] else "", usd(d["cost_usd"]),
        usd(d["wasted_usd"]),
    ]  # fmt: skip


# ---- top ------------------------------------------------------------------------------------------------


def top(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one table and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The running jobs, live: CPU cores and memory used against what they hold, GPU utilisation and
    memory, cost so far, and marks for open alerts (idle, stalled, memory, ...). Ctrl-C ends it.
    Not on a terminal (or with --once or --json): one table, then exit."""
    if not math.isfinite(interval) or not 0.1 <= interval <= 3600:
        raise BadInput("interval", interval, "must be 0.1 to 3600 seconds")
    c = client()
    if as_json:
        emit_json(c.top())
        return
    if once or not sys.stdout.isatty():
        doc = c.top()
        out.print(_top_table(doc, out.width))
        _print_alerts_below(doc)
        return
    from rich.console import Group
    from rich.live import Live

    def frame() -> Any:
        doc = c.top()
        parts = [_top_table(doc, out.width)]
        lines = _alert_lines(doc)
        if lines:
            from rich.text import Text

            parts.append(Text("\n".join(lines)))
        return Group(*parts)

    try:
        with Live(frame(), console=out, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return


def _top_table(doc: dict, width: int) -> Any:
    """The running jobs as a table fitted to `width` (columns dropped, least important first)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from suanli.cli.tables import Column, fit_columns

    columns = [
        Column("id", "right"), Column("name", drop=4, wrap=True, min_width=8), Column("user", drop=6),
        Column("node", drop=7, wrap=True, min_width=8), Column("elapsed", "right", 5),
        Column("CPU used/req", "right"), Column("mem used/req", "right"), Column("GPU", "right", 2),
        Column("GPU mem", "right", 3), Column("cost", "right", 1), Column("marks"),
    ]  # fmt: skip
    rows = []
    for j in doc["jobs"]:
        cores = "-" if j["cpu_cores"] is None else f"{j['cpu_cores']:.1f}"
        mem_req = size(j["memory_requested_bytes"]) if j["memory_requested_bytes"] else "-"
        util = "-" if j["gpu_util"] is None else f"{100 * j['gpu_util']:.0f}%"
        gpu = f"{j['gpus']}x {util}" if j["gpus"] else ""
        rows.append([
            str(j["id"]), j["name"], j["user"], ",".join(j["nodes"]), hms(j["elapsed_seconds"]),
            f"{cores}/{j['cpus']:g}", f"{size(j['rss_bytes'])}/{mem_req}", gpu,
            "" if j["gpu_memory_bytes"] is None else size(j["gpu_memory_bytes"]), usd(j["cost_usd"]),
            " ".join(MARKS.get(m, m.upper()) for m in j["marks"]),
        ])  # fmt: skip
    if not rows:
        return Text(f"no running jobs ({doc['at'][11:19]} UTC)")
    if not any(j["gpus"] for j in doc["jobs"]):  # no GPU job: no GPU columns
        wanted = [i for i, c in enumerate(columns) if not c.header.startswith("GPU")]
        columns = [columns[i] for i in wanted]
        rows = [[r[i] for i in wanted] for r in rows]
    keep, wraps = fit_columns(columns, rows, width)
    title = f"{len(rows)} running job(s) at {doc['at'][11:19]} UTC"
    dropped = [c.header for i, c in enumerate(columns) if i not in keep]
    if dropped:
        title += f" (not shown at {width} columns: {', '.join(dropped)}; see --json)"
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
              collapse_padding=True)  # fmt: skip
    for i in keep:
        col = columns[i]
        t.add_column(
            Text(col.header),
            justify=col.justify,
            no_wrap=not col.wrap,
            max_width=wraps.get(i),  # type: ignore[arg-type]
        )
    for row in rows:
        marked = bool(row[-1])
        t.add_row(*(Text(row[i]) for i in keep), style="bold red" if marked else None)
    return t


def _alert_lines(doc: dict) -> list[str]:
    lines = [f"! {a['rule']}: {a['message']}" for a in doc["alerts"][:10]]
    if len(doc["alerts"]) > 10:
        lines.append(f"... and {len(doc['alerts']) - 10} more open alerts (suanli alerts)")
    return [safe(line) for line in lines]


def _print_alerts_below(doc: dict) -> None:
    for line in _alert_lines(doc):
        out.print(line, markup=False)


# ---- alerts ---------------------------------------------------------------------------------------------


def alerts(
    all_alerts: Annotated[
        bool, typer.Option("--all", "-a", help="Closed alerts too (newest first).")
    ] = False,
    job: Annotated[int | None, typer.Option("--job", help="Only this job's alerts.")] = None,
    since: Annotated[
        str | None, typer.Option(help='Only alerts seen within this long ("7d") or since a date.')
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-10000).")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Alerts of the monitor (idle, stalled, memory, overdue, cost, node lost): the open ones, or all."""
    from suanli.cli.tables import Column, print_table
    from suanli.store.records import from_iso

    found = client().alerts(open_only=not all_alerts, job_id=job, since=since, limit=limit)
    if as_json:
        emit_json({"alerts": found})
        return
    if not found:
        out.print("no open alerts" if not all_alerts else "no alerts")
        return
    from suanli.cli.output import clock

    cols = [
        Column("id", "right"), Column("rule"), Column("subject"), Column("opened", drop=3),
        Column("seen", "right", 4), Column("state", drop=2), Column("message", wrap=True, min_width=20),
    ]  # fmt: skip
    rows = [
        [str(a["id"]), a["rule"], a["subject"], clock(from_iso(a["opened_at"])), f"{a['count']}x",
         "open" if a["open"] else "closed" + (f" ({a['acted']})" if a["acted"] else ""), a["message"]]
        for a in found
    ]  # fmt: skip
    print_table(out, f"{len(found)} {'open ' if not all_alerts else ''}alert(s)", cols, rows)
