"""The monitor's costs and accuracy, measured on real agents running real jobs (monitor/collect.py,
monitor/watch.py, run/shim.py's rusage).

    python benchmarks/bench_monitor.py                        # both parts, defaults (about 14 min)
    python benchmarks/bench_monitor.py --only overhead        # or: efficiency
    python benchmarks/bench_monitor.py --only overhead --runs 5 --seconds 300 --fast-runs 0

overhead: the sampling overhead with 50 running jobs at the default interval. Two agents run side by
side, each in its own fresh SUANLI_HOME with 50 jobs that only sleep (`resources: {cpus: 0.02}`, so all
50 run at once): one samples every 5 s (`sample_interval: 5s` in alerts.yaml), the other never
(`sample_interval: 0`). Both agents' own CPU time (user + system, psutil) is read over the same measured
period, so the machine's load weighs on both alike; the difference is what sampling costs. Repeated
--runs times, median reported. Goal: at most 1% of one core. A second pair at `sample_interval: 1s`
(--fast-runs) is informative. Both pairs' jobs share the process table, and every sample scans all of
it: the sampling agent reads about twice the processes a node with 50 jobs has, so the figure is on the
high side.

efficiency: CPU efficiency from the samples against seff's formula. Jobs with known duty cycles (25%,
50%, 100% of one core busy-looping, one that starts a short-lived process every second, and one of two
processes at 75% each on 2 cores) run on one agent sampling every 5 s; at most 2 cores are requested
at a time (this machine has 2): by default one job at a time (--parallel 2: all submitted at once, two
1-core jobs side by side). For each job:

- from the samples: the CPU time the last sample counted / (the span the samples cover x cores held),
  the span running from the attempt's start (the first sample's interval begins there) to the last
  sample: what a live report can say at the moment of its newest sample;
- seff: the kernel's account once the job ended (the supervisor's getrusage of its children, usage row
  with cpu_source "rusage") / (wall x cores held), wall = attempt ended_at - started_at.

Goal: within 2 points. Two informative columns: the samples between the first and the last one only,
and `suanli report`'s live figure (job_report) as last read while the job ran.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from suanli.api import Client
from suanli.jobs.spec import parse_spec
from suanli.monitor.report import job_report
from suanli.run import control
from suanli.store.monitoring import MonitorStore

ENV_KEYS = ("SUANLI_HOME", "SUANLI_POLICY", "SUANLI_DB_URL")
BUSY = """\
import sys, time
duty, seconds = float(sys.argv[1]), float(sys.argv[2])
t0, c0 = time.monotonic(), time.process_time()
while (elapsed := time.monotonic() - t0) < seconds:
    if time.process_time() - c0 < duty * elapsed:  # behind the duty cycle: work 5 ms
        end = time.monotonic() + 0.005
        while time.monotonic() < end:
            pass
    else:
        time.sleep(0.01)
"""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Home:
    """A fresh SUANLI_HOME with its own agent; every call into suanli for it runs inside `env()`."""

    def __init__(self, label: str, interval: str | None) -> None:
        self.label = label
        self.path = Path(tempfile.mkdtemp(prefix=f"sl-{label}-"))
        if interval is not None:
            (self.path / "alerts.yaml").write_text(f"sample_interval: {interval}\n")
        self.client: Client | None = None
        self.ids: list[int] = []
        self.agent: psutil.Process | None = None
        LIVE.append(self)

    @contextlib.contextmanager
    def env(self) -> Iterator[None]:
        old = {k: os.environ.get(k) for k in ENV_KEYS}
        os.environ.pop("SUANLI_DB_URL", None)
        os.environ.update(SUANLI_HOME=str(self.path), SUANLI_POLICY="fifo")
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def submit(self, docs: list[dict]) -> list[int]:
        with self.env():
            self.client = self.client or Client()
            ids = self.client.submit_many([parse_spec(d) for d in docs])
            self.ids += ids
            info = control.running_agent()
            if info is None:
                raise RuntimeError(f"{self.label}: no agent after submitting")
            self.agent = psutil.Process(info.pid)
        return ids

    @property
    def store(self):  # type: ignore[no-untyped-def]
        assert self.client is not None
        return self.client.store

    def running(self) -> int:
        return len(self.store.running())

    def agent_cpu(self) -> float:
        assert self.agent is not None
        t = self.agent.cpu_times()
        return t.user + t.system

    def close(self) -> None:
        """Cancel the jobs, stop the agent, kill whatever of the jobs is left, remove the folder."""
        if self in LIVE:
            LIVE.remove(self)
        if self.client is not None:
            with self.env():
                self._stop_jobs()
        shutil.rmtree(self.path, ignore_errors=True)

    def _stop_jobs(self) -> None:
        store = self.store
        for job_id in self.ids:
            with contextlib.suppress(Exception):
                store.request_cancel(job_id)
        with contextlib.suppress(Exception):
            control.nudge()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and control.running_agent() is not None:
            try:
                if not store.running():
                    break
            except Exception:
                break
            time.sleep(0.25)
        with contextlib.suppress(Exception):
            control.stop_agent()
        if self.agent is not None and self.agent.is_running():  # stop_agent found no agent.json
            with contextlib.suppress(psutil.Error):
                self.agent.kill()
        for job_id in self.ids:  # supervisors the agent did not stop: their whole process group
            with contextlib.suppress(Exception):
                for a in store.get(job_id).attempts:
                    if a.pid and control.process_alive(a.pid, a.pid_started_at):
                        os.killpg(a.pid, signal.SIGKILL)


LIVE: list[Home] = []


def close_all() -> None:
    for h in list(LIVE):
        say(f"stopping {h.label}: jobs and agent")
        try:
            h.close()
        except Exception as e:
            say(f"{h.label}: cleanup failed: {e}")


def wait_running(homes: list[Home], n: int, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = [h.running() for h in homes]
        if all(c >= n for c in counts):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {counts} of {n} jobs RUNNING after {timeout_s:.0f} s")
        time.sleep(0.5)


def _interval_text(seconds: float) -> str:
    return "0" if seconds == 0 else f"{seconds:g}s"


# ---- overhead -------------------------------------------------------------------------------------


def overhead_run(interval: float, jobs: int, seconds: float, warmup: float) -> dict:
    on, off = Home(f"on{interval:g}", _interval_text(interval)), Home("off", "0")
    try:
        sleep_s = int(seconds + warmup + 600)
        for h in (on, off):
            docs = [{"name": f"sleep-{i}", "run": f"sleep {sleep_s}", "resources": {"cpus": 0.02}}
                    for i in range(jobs)]  # fmt: skip
            h.submit(docs)
        wait_running([on, off], jobs)
        say(f"{jobs} + {jobs} jobs RUNNING; warm-up {warmup:.0f} s, then {seconds:.0f} s measured")
        time.sleep(warmup)
        t0 = time.time()
        c0 = (on.agent_cpu(), off.agent_cpu())
        procs0 = len(psutil.pids())
        time.sleep(seconds)
        c1 = (on.agent_cpu(), off.agent_cpu())
        t1 = time.time()
        procs = max(procs0, len(psutil.pids()))
        load = os.getloadavg()[0]
        still = (on.running(), off.running())
        mon = MonitorStore(on.store)
        samples = sum(1 for j in on.ids for s in mon.samples(j, since=t0) if s["at"] <= t1)
        samples_off = sum(len(MonitorStore(off.store).samples(j)) for j in off.ids)
    finally:
        on.close()
        off.close()
    span = t1 - t0
    cpu_on, cpu_off = c1[0] - c0[0], c1[1] - c0[1]
    diff = cpu_on - cpu_off
    passes = span / interval
    return {
        "interval": interval, "span": span, "cpu_on": cpu_on, "cpu_off": cpu_off, "diff": diff,
        "pct": 100 * diff / span, "ms_per_pass": 1000 * diff / passes, "samples": samples,
        "expected": jobs * passes, "samples_off": samples_off, "still": still, "procs": procs, "load": load,
    }  # fmt: skip


def overhead(args: argparse.Namespace) -> None:
    print(f"## Sampling overhead: {args.jobs} running jobs, agents side by side, "
          f"{args.seconds:.0f} s measured\n")  # fmt: skip
    print("| run | interval | jobs running (sampling / off) | processes on the machine | load avg "
          "| agent CPU s, sampling | agent CPU s, off | difference s | % of one core "
          "| ms per sampling pass | samples stored (expected) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    plan = [5.0] * args.runs + [1.0] * args.fast_runs
    results: dict[float, list[dict]] = {}
    for i, interval in enumerate(plan):
        say(f"overhead run {i + 1}/{len(plan)}: sample_interval {interval:g} s vs 0")
        r = overhead_run(interval, args.jobs, args.seconds, args.warmup)
        results.setdefault(interval, []).append(r)
        print(f"| {len(results[interval])} | {interval:g} s | {r['still'][0]} / {r['still'][1]} "
              f"| {r['procs']} | {r['load']:.1f} | {r['cpu_on']:.2f} | {r['cpu_off']:.2f} | {r['diff']:+.2f} "
              f"| {r['pct']:+.2f}% | {r['ms_per_pass']:.1f} | {r['samples']} ({r['expected']:.0f}) |",
              flush=True)  # fmt: skip
        if r["samples_off"]:
            print(f"\n(the agent with sampling off stored {r['samples_off']} samples: it should store "
                  "none)\n")  # fmt: skip
    print()
    for interval, rs in results.items():
        pct = statistics.median(r["pct"] for r in rs)
        ms = statistics.median(r["ms_per_pass"] for r in rs)
        goal = f"goal <= 1%: {'met' if pct <= 1.0 else 'missed'} ({pct:.2f}x of the budget)"
        print(f"median over {len(rs)} run(s) at {interval:g} s: {pct:+.2f}% of one core, {ms:.1f} ms of "
              f"agent CPU per sampling pass of {args.jobs} jobs"
              + (f"; {goal}" if interval == 5.0 else " (informative)"))  # fmt: skip
    print()


# ---- efficiency -----------------------------------------------------------------------------------


def efficiency_jobs(busy: Path, seconds: float) -> list[tuple[dict, float]]:
    """(spec, the CPU efficiency it aims at) per job."""
    py = f"{sys.executable} {busy}"
    n = int(seconds)
    return [
        ({"name": "duty-25", "run": f"{py} 0.25 {seconds:g}", "resources": {"cpus": 1}}, 0.25),
        ({"name": "duty-50", "run": f"{py} 0.5 {seconds:g}", "resources": {"cpus": 1}}, 0.50),
        ({"name": "duty-100", "run": f"{py} 1.0 {seconds:g}", "resources": {"cpus": 1}}, 1.00),
        ({"name": "short-children", "run": f"for i in $(seq {n}); do {py} 1.0 0.5; sleep 0.5; done",
          "resources": {"cpus": 1}}, 0.50),
        ({"name": "two-procs-75", "run": f"{py} 0.75 {seconds:g} & {py} 0.75 {seconds:g} & wait",
          "resources": {"cpus": 2}}, 0.75),
    ]  # fmt: skip


def efficiency(args: argparse.Namespace) -> None:
    h = Home("eff", _interval_text(args.interval))
    try:
        busy = h.path / "busy.py"
        busy.write_text(BUSY)
        jobs = efficiency_jobs(busy, args.job_seconds)
        batches = [[j] for j in jobs] if args.parallel == 1 else [jobs]
        say(f"efficiency: {len(jobs)} jobs of {args.job_seconds:g} s, "
            + ("one at a time" if args.parallel == 1 else "as the agent fits them on 2 cores"))  # fmt: skip
        ids: list[int] = []
        aims: dict[int, float] = {}
        live: dict[int, float | None] = {}
        loads: dict[int, list[float]] = {}
        records: dict = {}
        with h.env():
            for batch in batches:
                new = h.submit([spec for spec, _ in batch])
                ids += new
                aims.update(zip(new, (aim for _, aim in batch), strict=True))
                deadline = time.monotonic() + 10 * args.job_seconds + 120
                while True:
                    records.update({i: h.store.get(i) for i in new})
                    for i in new:
                        if records[i].state == "RUNNING":
                            live[i] = job_report(h.store, i)["cpu_efficiency"]
                            loads.setdefault(i, []).append(os.getloadavg()[0])
                    if all(records[i].is_terminal for i in new):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("efficiency jobs did not end in time")
                    time.sleep(1.0)
                say("ended: " + ", ".join(f"{records[i].name} {records[i].state}" for i in new))
            mon = MonitorStore(h.store)
            usage = mon.usage(ids)
            rows = []
            for i in ids:
                r = records[i]
                a = r.attempts[0]
                cpus = r.cpus
                u = usage.get((i, a.number)) or {}
                samples = [s for s in mon.samples(i, a.number) if s["level"] == 0]
                wall = a.ended_at - a.started_at
                seff = u["cpu_seconds"] / (wall * cpus) if u.get("cpu_seconds") is not None else None
                est = between = None
                if samples:
                    last, first = samples[-1], samples[0]
                    est = last["cpu_seconds"] / (sum(s["span_s"] for s in samples) * cpus)
                    if len(samples) > 1:
                        used = last["cpu_seconds"] - first["cpu_seconds"]
                        between = used / ((last["at"] - first["at"]) * cpus)
                load = statistics.mean(loads[i]) if loads.get(i) else None
                rows.append((r, a, cpus, wall, u, samples, seff, est, between, live.get(i), aims[i], load))
    finally:
        h.close()
    print(f"## CPU efficiency from the samples vs seff's formula (sample_interval {args.interval:g} s)\n")
    print("one job at a time\n" if args.parallel == 1 else "the jobs run side by side as their cores fit\n")
    print("| job | cores held | aim | load avg | state | wall s | samples | unsampled tail s "
          "| CPU s (rusage) | cpu_source | seff | from samples | difference, points | goal within 2 "
          "| between first and last sample | `suanli report` while running (last read) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    diffs = []
    for r, a, cpus, wall, u, samples, seff, est, between, live_eff, aim, load in rows:
        diff = None if seff is None or est is None else 100 * (est - seff)
        if diff is not None:
            diffs.append(diff)
        tail = a.ended_at - samples[-1]["at"] if samples else None
        print(f"| {r.name} | {cpus:g} | {aim:.0%} | {_f(load, '.1f')} | {r.state} | {wall:.1f} "
              f"| {len(samples)} | {_f(tail, '.1f')} | {_f(u.get('cpu_seconds'), '.2f')} "
              f"| {u.get('cpu_source', '-')} | {_pct(seff)} | {_pct(est)} "
              f"| {_f(diff, '+.2f')} | {'-' if diff is None else 'met' if abs(diff) <= 2 else 'missed'} "
              f"| {_pct(between)} | {_pct(live_eff)} |")  # fmt: skip
    if diffs:
        worst = max(diffs, key=abs)
        print(f"\nlargest difference {worst:+.2f} points over {len(diffs)} jobs (goal: within 2): "
              f"{'met' if abs(worst) <= 2 else 'missed'}")  # fmt: skip
    print()


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["overhead", "efficiency"])
    ap.add_argument("--runs", type=int, default=3, help="overhead: pairs at the default 5 s interval")
    ap.add_argument("--fast-runs", type=int, default=1, help="overhead: pairs at 1 s (informative)")
    ap.add_argument("--seconds", type=float, default=120.0, help="overhead: measured period per run")
    ap.add_argument("--warmup", type=float, default=15.0, help="overhead: wait after all jobs run")
    ap.add_argument("--jobs", type=int, default=50, help="overhead: running jobs per agent")
    ap.add_argument("--job-seconds", type=float, default=50.0, help="efficiency: length of each job")
    ap.add_argument(
        "--parallel",
        type=int,
        choices=[1, 2],
        default=1,
        help="efficiency: 1 job at a time, or 2 (all submitted at once, run as 2 cores fit)",
    )
    ap.add_argument("--interval", type=float, default=5.0, help="efficiency: sample_interval, seconds")
    args = ap.parse_args()

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too where a shell ignored it
        signal.signal(signum, interrupted)
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")  # fmt: skip
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs ({model}), load average "
          f"{os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')}\n")  # fmt: skip
    try:
        if args.only in (None, "overhead"):
            overhead(args)
        if args.only in (None, "efficiency"):
            efficiency(args)
    finally:
        close_all()


if __name__ == "__main__":
    main()
