"""Foundation figures: submissions/s, CLI submit latency, submit-to-start latency, `suanli run` overhead,
and the README's main job (examples/digits) end to end.

    python benchmarks/bench_foundation.py [--repeats 5]

Runs in a temporary SUANLI_HOME. Prints one table with the medians of several runs against the goals
of the foundation issue and the anchors (Slurm: 500 job submissions/s; SkyPilot local launch: seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suanli", *args], capture_output=True, text=True, check=True)


def submissions_per_second(n: int) -> dict[str, float]:
    from suanli import Client
    from suanli.jobs import parse_spec

    client = Client(start_agent=False)
    spec = parse_spec({"name": "bench", "run": "true"})
    client.submit(spec)  # warm: schema, node registration
    t = time.perf_counter()
    for _ in range(n):
        client.submit(spec)
    single = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n // 100):
        client.submit_many([spec] * 100)
    batch = (n // 100) * 100 / (time.perf_counter() - t)
    # Leave the store empty for the next measurements.
    for job in client.store.list_jobs(["PENDING"]):
        client.store.request_cancel(job.id)
    return {"single": single, "batch": batch}


def cli_submit_seconds(job: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        _cli("submit", str(job), "--json")
        times.append(time.perf_counter() - t)
    return times


def submit_to_start_seconds(workdir: Path, n: int) -> list[float]:
    from suanli import Client

    client = Client()
    out = []
    for i in range(n):
        stamp = workdir / f"stamp-{i}"
        job = workdir / "stamp.yaml"
        job.write_text(f"name: stamp\nrun: date +%s.%N > {stamp}\n")
        spec = client.load(job)
        t0 = time.time()
        job_id = client.submit(spec)
        client.wait(job_id, timeout_s=30)
        out.append(float(stamp.read_text()) - t0)
    return out


def run_overhead_seconds(job: Path, n: int) -> tuple[list[float], list[float]]:
    direct, through = [], []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["bash", "-c", "true"], check=True)
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        _cli("run", str(job), "--json")
        through.append(time.perf_counter() - t)
    return direct, through


def digits_job(n: int) -> tuple[list[float], list[float]]:
    """Wall seconds and final test accuracy of the README's main job, `suanli run examples/digits`."""
    job = Path(__file__).resolve().parents[1] / "examples" / "digits" / "job.yaml"
    walls, accuracy = [], []
    for _ in range(n):
        doc = json.loads(_cli("run", str(job), "--json").stdout)
        walls.append(doc["wall_seconds"])
        accuracy.append(doc["metrics"]["test_accuracy"])
    return walls, accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--submissions", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SUANLI_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("SUANLI_DB_URL", None)
        work = Path(tmp)
        trivial = work / "trivial.yaml"
        trivial.write_text("name: trivial\nrun: 'true'\n")
        rates = [submissions_per_second(args.submissions) for _ in range(args.repeats)]
        _cli("agent", "start")
        cli_times = cli_submit_seconds(trivial, 10 * args.repeats)
        time.sleep(1.0)
        starts = submit_to_start_seconds(work, 10 * args.repeats)
        direct, through = run_overhead_seconds(trivial, 2 * args.repeats)
        digits_walls, digits_accuracy = digits_job(args.repeats)
        _cli("agent", "stop")

    med = statistics.median
    single = med(r["single"] for r in rates)
    batch = med(r["batch"] for r in rates)
    cli_p90 = sorted(cli_times)[int(0.9 * len(cli_times))]
    overhead = med(through) - med(direct)
    rows = [
        ("API submits/s (one per call)", f"{single:,.0f}", ">= 500", f"{single / 500:.1f}x Slurm 500/s"),
        ("API submits/s (submit_many, 100/call)", f"{batch:,.0f}", "-", f"{batch / 500:.1f}x Slurm 500/s"),
        ("`suanli submit` CLI call, s", f"{med(cli_times):.3f}", "< 0.5", f"p90 {cli_p90:.3f}"),
        ("submit -> process start (agent up), s", f"{med(starts):.3f}", "< 0.3", f"max {max(starts):.3f}"),
        ("`bash -c true` directly, s", f"{med(direct):.3f}", "-", "-"),
        ("`suanli run` of the same, s", f"{med(through):.3f}", "-", f"+{overhead:.3f} s overhead"),
        (
            "`suanli run examples/digits` job wall, s",
            f"{med(digits_walls):.1f}",
            "< 60, accuracy >= 0.95",
            f"max {max(digits_walls):.1f}; accuracy min {min(digits_accuracy):.4f}",
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measure", "median", "goal", "vs baseline")
    width = [max(w, len(h)) for w, h in zip(width, header, strict=True)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, width, strict=True))
    print(line)
    print("-+-".join("-" * w for w in width))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    print(json.dumps({"repeats": args.repeats, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
