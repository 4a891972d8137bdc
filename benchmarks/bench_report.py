"""The efficiency report of a project with 10,000 finished jobs: goal under 1 s.

    python benchmarks/bench_report.py                 # 10,000 jobs, 5 runs
    python benchmarks/bench_report.py --jobs 50000 --repeat 3

A fresh SQLite store gets `--jobs` finished jobs of one project (20 users; a quarter of them GPU jobs
on H100s), each with one attempt and its usage totals (attempt_usage), written in bulk. Timed:

- library: `group_report(store, projects=[P])`, the median of `--repeat` runs (one query, no samples);
- CLI: `suanli --db URL report --project P --json` end to end (a new Python process: imports, the
  query, the report and the JSON of every job on stdout), the median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 1.0
PROJECT = "vision"


def build_store(url: str, jobs: int, project: str = PROJECT, start: float = 1.7e9):
    """A store with `jobs` finished jobs of `project`, one attempt and one usage row each (bulk)."""
    from suanli.store import models as m
    from suanli.store.store import Store

    store = Store(url)
    job_rows, attempt_rows, usage_rows = [], [], []
    for i in range(1, jobs + 1):
        gpu = i % 4 == 0
        t0 = start + 60.0 * i
        wall = 600.0 + (i % 7) * 300.0
        cpus = 4.0 if gpu else float(1 + i % 4)
        gpus = 2 if gpu else 0
        mem = (16 if gpu else 8) * 2**30
        job_rows.append({
            "id": i, "name": f"job-{i % 50}", "user": f"user-{i % 20}", "priority": 0, "state": "SUCCEEDED",
            "spec": {"name": f"job-{i % 50}", "run": "python train.py"}, "cpus": cpus, "memory_bytes": mem,
            "accelerator": "H100" if gpu else None, "gpus": gpus, "num_nodes": 1, "num_workers": 1,
            "retries": 0, "submitted_at": t0 - 5, "started_at": t0, "ended_at": t0 + wall,
            "cancel_requested": False, "project": project,
        })  # fmt: skip
        attempt_rows.append({
            "job_id": i, "number": 1, "node": f"node-{i % 16}", "gpu_indices": [0, 1] if gpu else [],
            "run_dir": f"/tmp/logs/job-{i}/attempt-1", "started_at": t0, "ended_at": t0 + wall,
            "exit_code": 0, "reason": "exited with code 0",
            "placement": [{"node": f"node-{i % 16}", "gpus": gpus, "cpus": cpus, "memory_bytes": mem}],
        })  # fmt: skip
        usage_rows.append({
            "job_id": i, "attempt": 1, "first_at": t0, "last_at": t0 + wall, "samples": int(wall / 5),
            "cpu_seconds": wall * cpus * (0.2 + 0.7 * ((i * 7919) % 100) / 100), "cpu_source": "rusage",
            "rss_peak_bytes": int(mem * (0.1 + 0.8 * ((i * 104729) % 100) / 100)),
            "gpu_seconds_used": wall * gpus * (0.1 + 0.8 * (i % 10) / 10) if gpu else None,
            "gpu_memory_peak_bytes": 40 * 2**30 if gpu else None, "read_bytes": 2**20 * i,
            "write_bytes": 2**20,
            "gpu_energy_j": wall * gpus * 400.0 if gpu else None,
        })  # fmt: skip
    with store._write_engine.begin() as conn:
        for table, rows in ((m.Job, job_rows), (m.Attempt, attempt_rows), (m.AttemptUsage, usage_rows)):
            for k in range(0, len(rows), 5000):
                conn.execute(table.__table__.insert(), rows[k : k + 5000])
    return store


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from suanli.monitor.report import group_report

    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    url = f"sqlite:///{folder / 'suanli.db'}"
    t0 = time.perf_counter()
    store = build_store(url, args.jobs)
    built = time.perf_counter() - t0
    group_report(store, projects=[PROJECT])  # warm: imports, the catalog's prices
    lib = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        doc = group_report(store, projects=[PROJECT])
        lib.append(time.perf_counter() - t0)
    assert doc["totals"]["jobs"] == args.jobs, doc["totals"]
    env = {**os.environ, "SUANLI_HOME": str(folder / "home")}
    env.pop("SUANLI_SERVER", None)
    cli, size = [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "suanli", "--db", url, "report", "--project", PROJECT, "--json"],
            capture_output=True, env=env, check=True,
        )  # fmt: skip
        cli.append(time.perf_counter() - t0)
        size = len(proc.stdout)
    startup = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "suanli", "--help"], capture_output=True, env=env, check=True)
        startup.append(time.perf_counter() - t0)
    print(f"## Report of one project with {args.jobs:,} finished jobs (store built in {built:.1f} s)\n")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"median of {args.repeat} runs; python {sys.version.split()[0]}, SQLite, {os.cpu_count()} CPUs, "
          f"load average {load} (other work on the machine slows every figure)\n")  # fmt: skip
    print("| what | median s | min s | max s | goal < 1 s |")
    print("|---|---|---|---|---|")
    for name, xs in (
        ("group_report(projects=[P]) (library)", lib),
        (f"suanli report --project P --json (CLI, {size / 2**20:.1f} MiB of JSON)", cli),
        ("suanli --help (CLI start-up alone, for reference)", startup),
    ):
        med = statistics.median(xs)
        goal = "" if "help" in name else ("met" if med < GOAL_S else "missed")
        print(f"| {name} | {med:.3f} | {min(xs):.3f} | {max(xs):.3f} | {goal} |")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
