"""Simulator fidelity: a slice of a Philly VC run live on a Ray cluster of this machine, then replayed in
the simulator with the live costs measured in the run.

    python benchmarks/bench_fidelity.py --only-sim                  # the slice in the simulator only (fast)
    python benchmarks/bench_fidelity.py --jobs 30 --out /tmp/fid    # a small live check
    python benchmarks/bench_fidelity.py --speedup 400 --out /tmp/fid  # the recorded run (about 35 min)
    python benchmarks/bench_fidelity.py --speedup 400 --from /tmp/fid/results.json  # analyse it again

Each live part (a policy, or the Ray-native baseline) runs in its own child process and is tried
again on a fresh cluster (--tries) if its Ray cluster dies under it: `ray stop --force` anywhere on
the machine (tests/run/test_ray.py's fixture runs it) kills every Ray cluster here, and Ray's GCS
client then ends the process that watched it. Finished parts are kept as part-*.json in --out and
reused by a later run with the same --out.

Slice: `--jobs` consecutive jobs of Philly VC `--vc` (Pollux's philly.csv) from job `--start` (a busy
period where FIFO and least-attained-service differ), submit times shifted to 0; jobs over 16 GPUs
dropped, GPU counts rounded up to 1, 2, 3, 4 or a multiple of 4, so the live shape (up to 4 GPUs: one
node; 4k GPUs: a gang of k nodes x 4) is the simulator's consolidated placement on 4x4. Durations AND
inter-arrival times are divided by `--speedup` (the load is kept), then durations get a floor of
`--floor` seconds; live and simulated runs get the same numbers. Tiresias's and suanli's queue
limits (3,250 and 7,200 GPU-seconds) are divided by the same factor, so the policies see the slice as
they would see the trace.

Live, per policy (fifo, tiresias, suanli): a fresh 4-node x 4-GPU Ray cluster of this machine (fake
GPUs, plus a CPU-only head) and a fresh SUANLI_HOME whose scheduler.yaml names the policy; the agent
uses the cluster as its pool. Each job is submitted at its scaled time and runs `sleeper.py`, which
resumes from a progress file in $SUANLI_CHECKPOINT_DIR and sleeps in 0.2 s steps, saving its progress
atomically after each (a preempted job resumes where it stopped); grace period 2 s. JCT = the job's
ended_at - submitted_at.

Measured costs: the startup overhead of an attempt (attempt start -> script start); the overhead of
a job (wall time of a single-attempt job minus its duration: startup plus end detection); the cost
of a preemption (the extra GPU-held time of a preempted job, per preemption, beyond that overhead).

Ray-native baseline: what a Ray user has today. Each job is a placement group (one bundle of g GPUs,
or k bundles of 4 GPUs STRICT_SPREAD) with one task per bundle sleeping the duration, all submitted
at their scaled times; Ray grants the placement groups in its own order. JCT = completion seen by
the driver - submit.

Simulated replay: the same slice, each duration plus the measured per-job overhead, with the
measured preemption cost, for each policy. Goals: simulated average JCT within 10% of live for each
policy; suanli's live average JCT at most 0.5x Ray-native's, or, where the slice's load makes that
impossible, a live fifo -> suanli improvement at least 90% of the simulated one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from bench_simulate import shared_data  # benchmarks/ is the script's folder, so on the path

from suanli.schedule import get_policy
from suanli.schedule.simulate import TraceJob, load_trace, parse_cluster, simulate, summarize

POLICIES = ["fifo", "tiresias", "suanli"]
NODES, GPUS_PER_NODE = 4, 4
TIRESIAS_LIMITS_GPU_S = (3250.0, 7200.0)
GRACE = "2s"
SLEEPER = """\
import os, sys, time
t0 = time.time()
total = float(sys.argv[1])
ckpt = os.environ["SUANLI_CHECKPOINT_DIR"]
os.makedirs(ckpt, exist_ok=True)
path = os.path.join(ckpt, "progress")
try:
    with open(path) as f:
        done = float(f.read())
except (OSError, ValueError):
    done = 0.0
writer = os.environ.get("NODE_RANK", "0") == "0"  # a gang's workers share one progress file
print(f"FIDELITY start={t0:.3f} done={done:.3f}", flush=True)
while done < total:
    step = min(0.2, total - done)  # a checkpoint every 0.2 s
    time.sleep(step)
    done += step
    if writer:
        with open(path + ".tmp", "w") as f:
            f.write(repr(done))
        os.replace(path + ".tmp", path)
print(f"FIDELITY end={time.time():.3f}", flush=True)
"""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the slice ------------------------------------------------------------------------------------


def round_gpus(g: int) -> int:
    return g if g <= GPUS_PER_NODE else GPUS_PER_NODE * math.ceil(g / GPUS_PER_NODE)


def make_slice(
    vc: str, start: int, count: int, speedup: float, floor_s: float
) -> tuple[list[TraceJob], dict]:
    trace = load_trace(str(shared_data() / "traces" / "pollux" / "philly.csv"), vc=vc)
    window = trace.jobs[start : start + count]
    kept = [j for j in window if j.gpus <= NODES * GPUS_PER_NODE]
    t0 = kept[0].submit_s
    jobs = [
        TraceJob(
            f"j{i:03d}",
            (j.submit_s - t0) / speedup,
            round_gpus(j.gpus),
            max(j.duration_s / speedup, floor_s),
            user="philly",
        )
        for i, j in enumerate(kept)
    ]
    info = {
        "vc": vc,
        "start": start,
        "window_jobs": len(window),
        "jobs": len(jobs),
        "dropped_over_16_gpus": len(window) - len(kept),
        "rounded_gpus": sum(round_gpus(j.gpus) != j.gpus for j in kept),
        "floored": sum(j.duration_s / speedup < floor_s for j in kept),
        "speedup": speedup,
        "floor_s": floor_s,
        "real_span_h": (kept[-1].submit_s - t0) / 3600,
        "scaled_arrivals_s": jobs[-1].submit_s,
        "gpu_counts": {g: sum(j.gpus == g for j in jobs) for g in sorted({j.gpus for j in jobs})},
        "gpu_s": sum(j.gpus * j.duration_s for j in jobs),
    }
    return jobs, info


def policy_options(name: str, speedup: float, preemption_cost_s: float) -> dict:
    """The same options for the live scheduler (scheduler.yaml) and the simulator."""
    limits = [x / speedup for x in TIRESIAS_LIMITS_GPU_S]
    if name == "tiresias":
        return {"queue_limits_gpu_s": limits}
    if name == "suanli":
        return {"queue_limits_gpu_s": limits, "preemption_cost_s": preemption_cost_s}
    return {}


# ---- simulated replay -----------------------------------------------------------------------------


def sim(jobs: list[TraceJob], name: str, options: dict, overhead_s: float, preemption_cost_s: float) -> dict:
    padded = [TraceJob(j.id, j.submit_s, j.gpus, j.duration_s + overhead_s, user=j.user) for j in jobs]
    result = simulate(
        padded,
        parse_cluster(f"{NODES}x{GPUS_PER_NODE}"),
        get_policy(name, **options),
        preemption_cost_s=preemption_cost_s,
        placement="consolidated",
    )
    s = summarize(result)
    return {"avg_jct_s": s.avg_jct_s, "makespan_s": s.makespan_s, "preemptions": result.preemptions}


# ---- a Ray cluster of this machine ------------------------------------------------------------------


def start_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False},
    )
    for _ in range(NODES):
        cluster.add_node(
            num_cpus=8,
            num_gpus=GPUS_PER_NODE,
            resources={"accelerator_type:A100": 1},
            object_store_memory=100 * 2**20,
        )
    cluster.wait_for_nodes()
    return cluster


class ClusterLost(RuntimeError):
    """The Ray cluster's processes died under the run (another process ran `ray stop`, or the OOM
    killer): the run is void and is started again on a fresh cluster."""


def check_alive(cluster) -> None:
    if not cluster.remaining_processes_alive():
        raise ClusterLost("a process of the Ray cluster died during the run")


def run_part(part: str, args: argparse.Namespace, out: Path) -> dict | None:
    """One live part (a policy, or ray-native) in a child process, so that a Ray cluster killed under
    it (Ray's GCS client ends its process) voids only that try; a part already in `out` is reused."""
    path = out / f"part-{part}.json"
    for k in range(args.tries):
        if path.exists():
            say(f"{part}: using {path}")
            return json.loads(path.read_text())
        if k:
            say(f"{part}: try {k + 1} of {args.tries}")
        flags = {"--vc": args.vc, "--start": args.start, "--jobs": args.jobs, "--speedup": args.speedup,
                 "--floor": args.floor, "--timeout": args.timeout, "--out": out, "--child": part,
                 "--suanli-preemption-cost": args.suanli_preemption_cost}  # fmt: skip
        cmd = [sys.executable, __file__, *(str(x) for kv in flags.items() for x in kv)]
        rc = subprocess.run(cmd, stdout=sys.stderr).returncode
        if rc != 0:
            say(f"{part}: the run ended with exit code {rc} (its Ray cluster died?)")
    if path.exists():
        return json.loads(path.read_text())
    say(f"{part}: no result after {args.tries} tries")
    return None


# ---- live run through suanli ------------------------------------------------------------------------


def job_spec(job: TraceJob, workdir: Path):
    from suanli.jobs.spec import parse_spec

    nodes = max(1, job.gpus // GPUS_PER_NODE) if job.gpus > GPUS_PER_NODE else 1
    per_node = job.gpus // nodes
    return parse_spec(
        {
            "name": job.id,
            "run": f"python sleeper.py {job.duration_s:.3f}",
            "num_nodes": nodes,
            "resources": {"cpus": 1, "accelerators": f"A100:{per_node}"},
            "grace_period": GRACE,
        },
        base_dir=workdir,
    )


def submit_on_time(jobs: list, submit, t0: float, label: str, stop: threading.Event) -> list[float]:
    """Call submit(job) at t0 + job.submit_s for each job until `stop` is set; returns how late each
    call returned."""
    lags = []
    for k, job in enumerate(jobs):
        if stop.wait(max(t0 + job.submit_s - time.time(), 0)):
            break
        submit(job)
        lags.append(time.time() - (t0 + job.submit_s))
        if (k + 1) % 50 == 0:
            say(f"{label}: submitted {k + 1}/{len(jobs)}")
    return lags


def live_suanli(jobs: list[TraceJob], policy: str, options: dict, root: Path, timeout_s: float) -> dict:
    from suanli import Client
    from suanli.run import control

    home = Path(tempfile.mkdtemp(prefix=f"home-{policy}-", dir=root))
    (home / "scheduler.yaml").write_text(yaml.safe_dump({"policy": policy, "options": options}))
    workdir = root / "jobdir"  # a small folder of its own: Ray ships it to every worker
    workdir.mkdir(exist_ok=True)
    (workdir / "sleeper.py").write_text(SLEEPER)
    specs = {j.id: job_spec(j, workdir) for j in jobs}
    cluster = start_cluster()
    os.environ["SUANLI_HOME"] = str(home)
    os.environ["RAY_ADDRESS"] = cluster.address
    for name in ("SUANLI_POLICY", "SUANLI_DB_URL"):
        os.environ.pop(name, None)
    stop = threading.Event()
    try:
        client = Client()
        client.pool()  # the agent starts and reads the Ray pool before the clock starts
        ids: dict[str, int] = {}
        say(f"live {policy}: cluster at {cluster.address}, submitting {len(jobs)} jobs")
        t0 = time.time()

        def submit(job: TraceJob) -> None:
            ids[job.id] = client.submit(specs[job.id])

        done_box: dict = {}
        thread = threading.Thread(
            target=lambda: done_box.setdefault(
                "lags", submit_on_time(jobs, submit, t0, f"live {policy}", stop)
            ),
            daemon=True,
        )
        thread.start()
        last, load = 0.0, []
        while True:
            time.sleep(1.0)
            load.append(os.getloadavg()[0])
            check_alive(cluster)
            recs = client.store.list_jobs(ids=list(ids.values())) if ids else []
            finished = sum(r.is_terminal for r in recs)
            if time.time() - last > 15:
                running = sum(r.state == "RUNNING" for r in recs)
                elapsed = time.time() - t0
                say(f"live {policy}: t={elapsed:.0f}s submitted {len(ids)} running {running} done {finished}")
                last = time.time()
            if not thread.is_alive() and finished == len(jobs):
                break
            if time.time() - t0 > timeout_s:
                say(f"live {policy}: timed out after {timeout_s:.0f}s with {len(jobs) - finished} unfinished")
                break
        records = client.store.list_jobs(ids=list(ids.values()), with_attempts=True)
    finally:
        stop.set()
        try:
            control.stop_agent()
        except Exception as e:  # the cluster goes down anyway
            say(f"stopping the agent: {e}")
        cluster.shutdown()
    by_id = {v: k for k, v in ids.items()}
    dur = {j.id: j.duration_s for j in jobs}
    out = []
    for r in records:
        attempts = []
        for a in r.attempts:
            text = (
                Path(a.log_path).read_text(errors="replace")
                if a.log_path and Path(a.log_path).exists()
                else ""
            )
            starts = [float(x) for x in re.findall(r"FIDELITY start=([\d.]+)", text)]
            dones = [float(x) for x in re.findall(r"FIDELITY start=[\d.]+ done=([\d.]+)", text)]
            attempts.append(
                {
                    "started_at": a.started_at,
                    "ended_at": a.ended_at,
                    "reason": a.reason,
                    "exit_code": a.exit_code,
                    "signal": a.signal,
                    "script_start": min(starts) if starts else None,
                    "progress_at_start": min(dones) if dones else None,
                }
            )
        out.append(
            {
                "id": by_id[r.id],
                "state": r.state,
                "duration_s": dur[by_id[r.id]],
                "submitted_at": r.submitted_at,
                "ended_at": r.ended_at,
                "t0": t0,
                "attempts": attempts,
            }
        )
    return {
        "jobs": sorted(out, key=lambda x: x["id"]),
        "submit_lag_s": done_box.get("lags", []),
        "loadavg_1m_mean": statistics.mean(load) if load else None,
    }


def live_costs(runs: list[dict]) -> dict:
    """Startup overhead per attempt, overhead per job, cost per preemption, over all given runs."""
    startup, overhead, extra, preemptions = [], [], [], 0
    for run in runs:
        for j in run["jobs"]:
            atts = [a for a in j["attempts"] if a["ended_at"] is not None]
            startup += [a["script_start"] - a["started_at"] for a in atts if a["script_start"]]
            walls = sum(a["ended_at"] - a["started_at"] for a in atts)
            if j["state"] != "SUCCEEDED":
                continue
            if len(atts) == 1:
                overhead.append(walls - j["duration_s"])
            else:
                extra.append((walls - j["duration_s"], len(atts) - 1))
            preemptions += len(atts) - 1
    per_job = statistics.mean(overhead) if overhead else 0.0
    per_pre = (
        sum(w - per_job for w, _ in extra) / sum(n for _, n in extra)
        if extra
        else statistics.mean(startup or [0])
    )
    return {
        "startup_mean_s": statistics.mean(startup) if startup else 0.0,
        "startup_median_s": statistics.median(startup) if startup else 0.0,
        "overhead_per_job_s": per_job,
        "preemption_cost_s": max(per_pre, 0.0),
        "preemptions": preemptions,
        "attempts": len(startup),
    }


def live_summary(run: dict) -> dict:
    jcts = [j["ended_at"] - j["submitted_at"] for j in run["jobs"] if j["ended_at"] is not None]
    t0 = run["jobs"][0]["t0"] if run["jobs"] else 0.0
    lags = run["submit_lag_s"]
    return {
        "avg_jct_s": statistics.mean(jcts) if jcts else float("nan"),
        "finished": len(jcts),
        "succeeded": sum(j["state"] == "SUCCEEDED" for j in run["jobs"]),
        "makespan_s": max((j["ended_at"] or 0) for j in run["jobs"]) - t0 if run["jobs"] else 0.0,
        "preemptions": sum(max(len(j["attempts"]) - 1, 0) for j in run["jobs"]),
        "submit_lag_max_s": max(lags) if lags else 0.0,
        "submit_lag_mean_s": statistics.mean(lags) if lags else 0.0,
        "loadavg_1m_mean": run.get("loadavg_1m_mean"),
        # attempts recorded as preempted although the job had already exited 0 (it had finished)
        "preempted_after_exit_0": sum(
            1
            for j in run["jobs"]
            for a in j["attempts"]
            if (a["reason"] or "").startswith("preempted") and a.get("exit_code") == 0
        ),
    }


# ---- Ray-native baseline ----------------------------------------------------------------------------


def live_ray_native(jobs: list[TraceJob], timeout_s: float) -> dict:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    cluster = start_cluster()
    ray.init(address=cluster.address, log_to_driver=False)
    stop = threading.Event()
    try:

        @ray.remote
        def sleep_for(seconds: float) -> float:
            start = time.time()
            time.sleep(seconds)
            return start

        lock = threading.Lock()
        outstanding: dict[str, tuple] = {}  # id -> (submitted_at, refs, pg)
        submitted: dict[str, float] = {}
        ended: dict[str, float] = {}
        first_start: dict[str, float] = {}

        def submit(job: TraceJob) -> None:
            k = job.gpus // GPUS_PER_NODE if job.gpus > GPUS_PER_NODE else 1
            per = job.gpus // k
            at = time.time()
            pg = placement_group([{"CPU": 1, "GPU": per}] * k, strategy="STRICT_SPREAD" if k > 1 else "PACK")
            refs = [
                sleep_for.options(
                    num_cpus=1,
                    num_gpus=per,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i),
                ).remote(job.duration_s)
                for i in range(k)
            ]
            with lock:
                outstanding[job.id] = (at, refs, pg)
                submitted[job.id] = at

        say(f"ray-native: cluster at {cluster.address}, submitting {len(jobs)} jobs")
        t0 = time.time()
        box: dict = {}
        thread = threading.Thread(
            target=lambda: box.setdefault("lags", submit_on_time(jobs, submit, t0, "ray-native", stop)),
            daemon=True,
        )
        thread.start()
        last = 0.0
        while True:
            with lock:
                items = list(outstanding.items())
            refs = [r for _, (_, rs, _) in items for r in rs]
            if refs:
                ray.wait(refs, num_returns=len(refs), timeout=0.1)
            else:
                time.sleep(0.1)
            for jid, (_, rs, pg) in items:
                ready, _ = ray.wait(rs, num_returns=len(rs), timeout=0)
                if len(ready) == len(rs):
                    ended[jid] = time.time()
                    first_start[jid] = min(ray.get(rs))
                    remove_placement_group(pg)
                    with lock:
                        del outstanding[jid]
            check_alive(cluster)
            if time.time() - last > 15:
                say(f"ray-native: t={time.time() - t0:.0f}s submitted {len(submitted)} done {len(ended)}")
                last = time.time()
            if not thread.is_alive() and len(ended) == len(jobs):
                break
            if time.time() - t0 > timeout_s:
                say(f"ray-native: timed out with {len(jobs) - len(ended)} unfinished")
                break
    finally:
        stop.set()
        ray.shutdown()
        cluster.shutdown()
    jcts = [ended[j] - submitted[j] for j in ended]
    lags = box.get("lags", [])
    return {
        "avg_jct_s": statistics.mean(jcts) if jcts else float("nan"),
        "finished": len(jcts),
        "makespan_s": max(ended.values()) - t0 if ended else 0.0,
        "submit_lag_max_s": max(lags) if lags else 0.0,
        "jobs": [
            {
                "id": j,
                "submitted_at": submitted[j],
                "started_at": first_start.get(j),
                "ended_at": ended.get(j),
            }
            for j in sorted(submitted)
        ],
    }


# ---- report -----------------------------------------------------------------------------------------


def plot(path: Path, policies: list[str], live: dict, simulated: dict, native: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = range(len(policies))
    ax.bar([i - 0.2 for i in x], [live[p]["avg_jct_s"] for p in policies], 0.4, label="live (Ray, 4x4)")
    ax.bar([i + 0.2 for i in x], [simulated[p]["avg_jct_s"] for p in policies], 0.4, label="simulated")
    if native is not None:
        ax.axhline(native, color="gray", linestyle="--", label="Ray-native (placement groups)")
    ax.set_xticks(list(x), policies)
    ax.set_ylabel("average JCT (s)")
    ax.set_title("Simulator fidelity: live vs simulated average JCT")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(info: dict, costs: dict | None, live: dict, simulated: dict, native: dict | None) -> list[str]:
    lines = [
        f"Slice: Philly VC {info['vc']}, jobs {info['start']}-{info['start'] + info['window_jobs'] - 1} "
        f"({info['jobs']} kept, {info['dropped_over_16_gpus']} over 16 GPUs dropped, "
        f"{info['rounded_gpus']} GPU counts rounded up; GPUs: {info['gpu_counts']}); "
        f"time / {info['speedup']:g} "
        f"({info['real_span_h']:.1f} h of arrivals -> {info['scaled_arrivals_s']:.0f} s), "
        f"floor {info['floor_s']:g} s ({info['floored']} jobs)",
    ]
    if costs:
        lines.append(
            f"Measured live costs: attempt startup {costs['startup_mean_s']:.2f} s mean "
            f"({costs['startup_median_s']:.2f} median, {costs['attempts']} attempts); per-job overhead "
            f"{costs['overhead_per_job_s']:.2f} s (added to simulated durations); preemption cost "
            f"{costs['preemption_cost_s']:.2f} s ({costs['preemptions']} preemptions)"
        )
    lines += ["", "| policy | live avg JCT (s) | simulated avg JCT (s) | sim / live | error | within 10% "
              "| live preemptions | sim preemptions | live makespan (s) | sim makespan (s) |",
              "|---|---:|---:|---:|---:|:-:|---:|---:|---:|---:|"]  # fmt: skip
    for p, s in simulated.items():
        lv = live.get(p)
        if lv is None:
            lines.append(f"| {p} | - | {s['avg_jct_s']:.1f} | - | - | - | - | {s['preemptions']} | - "
                         f"| {s['makespan_s']:.0f} |")  # fmt: skip
            continue
        ratio = s["avg_jct_s"] / lv["avg_jct_s"]
        err = abs(ratio - 1)
        lines.append(
            f"| {p} | {lv['avg_jct_s']:.1f} | {s['avg_jct_s']:.1f} | {ratio:.3f} | {err:.1%} | "
            f"{'met' if err <= 0.10 else 'missed'} | {lv['preemptions']} | {s['preemptions']} | "
            f"{lv['makespan_s']:.0f} | {s['makespan_s']:.0f} |"
        )
    if native is not None:
        lines.append(f"| Ray-native (placement groups) | {native['avg_jct_s']:.1f} | - | - | - | - | 0 | - "
                     f"| {native['makespan_s']:.0f} | - |")  # fmt: skip
    if native is not None and "suanli" in live:
        r = live["suanli"]["avg_jct_s"] / native["avg_jct_s"]
        lines += ["", f"suanli live / Ray-native: {r:.3f} (goal <= 0.5: {'met' if r <= 0.5 else 'missed'})"]
    if {"fifo", "suanli"} <= set(live) and {"fifo", "suanli"} <= set(simulated):
        lf, ls = live["fifo"]["avg_jct_s"], live["suanli"]["avg_jct_s"]
        sf, ss = simulated["fifo"]["avg_jct_s"], simulated["suanli"]["avg_jct_s"]
        share = (lf - ls) / (sf - ss) if sf != ss else float("nan")
        lines.append(
            f"fifo -> suanli: live {lf:.1f} -> {ls:.1f} s ({1 - ls / lf:.1%} lower), simulated {sf:.1f} -> "
            f"{ss:.1f} s ({1 - ss / sf:.1%} lower); live improvement / simulated: {share:.1%} "
            f"(fallback goal >= 90%: {'met' if share >= 0.9 else 'missed'})".replace("nan%", "n/a")
        )
    for p, v in live.items():
        c = v.get("costs")
        if c:
            load = v.get("loadavg_1m_mean")
            lines.append(
                f"live {p}: startup {c['startup_mean_s']:.2f} s mean per attempt, per-job overhead "
                f"{c['overhead_per_job_s']:.2f} s, preemption cost {c['preemption_cost_s']:.2f} s"
                + (f", 1-min load average {load:.1f} on {os.cpu_count()} CPUs" if load else "")
            )
    lags = [f"{p} {v['submit_lag_max_s']:.2f} s" for p, v in live.items()]
    if native is not None:
        lags.append(f"ray-native {native['submit_lag_max_s']:.2f} s")
    if lags:
        lines.append("Largest submission lag behind the scaled trace: " + ", ".join(lags))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vc", default="6214e9")
    ap.add_argument("--start", type=int, default=9100, help="index of the slice's first job in the VC")
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--speedup", "--scale", type=float, default=280.0,
                    help="trace seconds per live second (durations and inter-arrival times)")  # fmt: skip
    ap.add_argument("--floor", type=float, default=3.0, help="shortest scaled duration (s)")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--suanli-preemption-cost", type=float, default=1.0,
                    help="suanli's preemption_cost_s option, live and simulated (min run 10x)")  # fmt: skip
    ap.add_argument("--no-native", action="store_true", help="skip the Ray-native baseline")
    ap.add_argument("--only-sim", action="store_true", help="the simulator only, with --overhead/--cost")
    ap.add_argument("--from", dest="source", default=None,
                    help="reuse the live runs of an earlier results.json (same slice flags)")  # fmt: skip
    ap.add_argument("--overhead", type=float, default=None, help="per-job overhead (s) instead of measured")
    ap.add_argument("--cost", type=float, default=None, help="preemption cost (s) instead of measured")
    ap.add_argument("--timeout", type=float, default=1200.0, help="per live run (s)")
    ap.add_argument("--tries", type=int, default=3, help="runs of a live part whose Ray cluster died")
    ap.add_argument("--out", default=None, help="folder for results.json and fidelity.png")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one live part, in its own process
    args = ap.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    out = Path(args.out or tempfile.mkdtemp(prefix="suanli-fidelity-"))
    out.mkdir(parents=True, exist_ok=True)
    jobs, info = make_slice(args.vc, args.start, args.jobs, args.speedup, args.floor)
    opts = {p: policy_options(p, args.speedup, args.suanli_preemption_cost) for p in policies}
    if args.child:
        if args.child == "ray-native":
            result = live_ray_native(jobs, args.timeout)
        else:
            options = policy_options(args.child, args.speedup, args.suanli_preemption_cost)
            work = Path(tempfile.mkdtemp(prefix="fidelity-live-"))
            result = live_suanli(jobs, args.child, options, work, args.timeout)
        tmp = out / f"part-{args.child}.json.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(out / f"part-{args.child}.json")
        return
    say(f"slice: {info}")
    live: dict = {}
    runs: dict = {}
    native = None
    costs = None
    if args.source:
        earlier = json.loads(Path(args.source).read_text())
        if earlier["slice"]["jobs"] != info["jobs"] or earlier["slice"]["speedup"] != info["speedup"]:
            sys.exit(f"{args.source} holds another slice: {earlier['slice']}")
        runs = {p: r for p, r in earlier["runs"].items() if p in policies}
        live = {p: live_summary(r) for p, r in runs.items()}
        native = earlier.get("ray_native")
    elif not args.only_sim:
        parts = [*policies, *([] if args.no_native else ["ray-native"])]
        done = {part: run_part(part, args, out) for part in parts}
        runs = {p: done[p] for p in policies if done[p] is not None}
        live = {p: live_summary(r) for p, r in runs.items()}
        for p, v in live.items():
            say(f"live {p}: {v}")
        native = done.get("ray-native")
    if runs:
        costs = live_costs(list(runs.values()))
        for p, r in runs.items():
            live[p]["costs"] = live_costs([r])
    overhead = args.overhead if args.overhead is not None else (costs or {}).get("overhead_per_job_s", 0.0)
    cost = args.cost if args.cost is not None else (costs or {}).get("preemption_cost_s", 0.0)
    simulated = {p: sim(jobs, p, opts[p], overhead, cost) for p in policies}
    lines = report(info, costs, live, simulated, native)
    print("\n".join(lines))
    doc = {"slice": info, "policy_options": opts, "costs": costs, "live": live, "simulated": simulated,
           "ray_native": native, "runs": runs, "overhead_s": overhead, "preemption_cost_s": cost,
           "command": " ".join(sys.argv), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}  # fmt: skip
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    if live:
        plot(out / "fidelity.png", [p for p in policies if p in live], live, simulated,
             native["avg_jct_s"] if native else None)  # fmt: skip
    say(f"results in {out}")


if __name__ == "__main__":
    main()
