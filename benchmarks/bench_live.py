"""The live scheduler's own costs, measured on the real code paths (run/scheduling.py, run/ray_pool.py).

    python benchmarks/bench_live.py                  # everything
    python benchmarks/bench_live.py --only decide    # or: pool
    python benchmarks/bench_live.py --ray-nodes 8    # the size of the real Ray cluster started for `pool`

decide: one live decision (`decide_now`) with 10,000 pending jobs on 1,000 nodes of 8 GPUs, 90% busy
(900 running 8-GPU jobs), from a SQLite store: reading the queue, the running attempts and the nodes
from the database, then building the policy's inputs and deciding. Goal: the decision under 100 ms.
The policy-only figure (inputs already built) is bench_simulate.py --only speed.

pool: reading a Ray pool of 100 nodes: Ray's node table turned into pool nodes (`read_nodes`) and
stored in one transaction, plus `ray.nodes()` timed on a real Ray cluster of this machine (as many
nodes as --ray-nodes; a 100-node cluster does not fit one small machine). Goal: under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from suanli.jobs.spec import parse_spec
from suanli.run.agent import GC_THRESHOLDS
from suanli.run.local import run_dir_for
from suanli.run.ray_pool import read_nodes
from suanli.run.schedconfig import make_policy
from suanli.run.scheduling import JobsView, decide_now, job_history
from suanli.schedule.policies import get_policy
from suanli.store.records import NodeSlice
from suanli.store.store import Store

POLICIES = ["fifo", "tiresias", "suanli", "drf"]


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), min(times)


def _store_with_queue(nodes: int, pending: int, running: int) -> Store:
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    names = [f"10.0.{i // 250}.{i % 250}-{i:08x}" for i in range(nodes)]
    store.register_nodes([(n, 64.0, 512 * 2**30, "A100", 8) for n in names], pool="ray bench")
    sizes = [1, 1, 1, 2, 4, 8, 8, 16]  # GPUs per job, Philly-like
    specs = []
    for i in range(pending + running):
        gpus = 8 if i < running else sizes[i % len(sizes)]
        nodes_needed = max(1, gpus // 8)
        specs.append(
            parse_spec({
                "name": f"job-{i}", "run": "true", "user": f"user-{i % 50}",
                "labels": {"team": f"team-{i % 5}"}, "num_nodes": nodes_needed,
                "resources": {"cpus": 4, "accelerators": {"A100": min(gpus, 8)}},
            })
        )  # fmt: skip
    ids = store.submit_many(specs)
    for job_id, name in zip(ids[:running], names, strict=False):
        store.start_attempt(job_id, name, [], run_dir_for, [NodeSlice(name, 8, 4.0, 0)])
    return store


def decide(repeat: int) -> None:
    print("## One live decision: 10,000 pending jobs on 1,000 nodes (8 GPUs each, 90% busy)\n")
    t0 = time.perf_counter()
    store = _store_with_queue(1_000, 10_000, 900)
    print(f"(store built in {time.perf_counter() - t0:.0f} s)\n")
    history = job_history(store)
    print("cold: the whole queue, the running jobs and the nodes read from the database and every job's")
    print("view built; steady: the agent's pass between arrivals (only changed jobs read again, nodes and")
    print("views cached), as it runs every tick.\n")
    print("| policy | cold read ms | cold decide ms | steady read ms | steady decide ms | steady total ms "
          "| starts | goal < 100 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name in POLICIES:
        policy = get_policy(name) if name != "suanli" else make_policy()
        rows: dict[str, list[tuple[float, float]]] = {"cold": [], "steady": []}
        view, cache, starts = JobsView(store), {}, 0
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            view = view if i else JobsView(store)
            view.refresh()
            pending, running = view.pending(), view.running()
            if not i:  # the agent reads the nodes again only when the pool changes
                nodes = store.nodes(usage=False)
            t1 = time.perf_counter()
            decided = decide_now(store, policy, nodes, running=running, pending=pending, history=history,
                                 cache=cache if i else None)  # fmt: skip
            t2 = time.perf_counter()
            rows["steady" if i else "cold"].append((1000 * (t1 - t0), 1000 * (t2 - t1)))
            starts = len(decided.decisions.starts)
        (cr, cd), steady = rows["cold"][0], rows["steady"]
        sr, sd = statistics.median(r for r, _ in steady), statistics.median(d for _, d in steady)
        total = sr + sd
        print(f"| {name} | {cr:.0f} | {cd:.0f} | {sr:.0f} | {sd:.0f} | {total:.0f} | {starts} "
              f"| {'met' if total < 100 else 'missed'} ({total / 100:.2f}x) |", flush=True)  # fmt: skip


def _entries(n: int) -> list[dict]:
    """Ray's node table for `n` nodes, in the shape `ray.nodes()` returns (Ray 2.x)."""
    return [
        {
            "NodeID": f"{i:056x}", "Alive": True, "NodeManagerAddress": f"10.0.{i // 250}.{i % 250}",
            "NodeManagerHostname": f"gpu-{i}", "Labels": {"ray.io/node-id": f"{i:056x}"},
            "Resources": {"CPU": 64.0, "GPU": 8.0, "memory": 512.0 * 2**30, "accelerator_type:A100": 1.0,
                          f"node:10.0.{i // 250}.{i % 250}": 1.0, "object_store_memory": 2.0**34},
        }
        for i in range(n)
    ]  # fmt: skip


def pool(repeat: int, ray_nodes: int) -> None:
    print("\n## Reading a Ray pool\n")
    entries = _entries(100)
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    convert, _ = _median_ms(lambda: read_nodes(entries), repeat)
    rows = [(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus) for n in read_nodes(entries)]
    write, _ = _median_ms(lambda: store.register_nodes(rows, pool="ray bench"), repeat)
    listing, _ = _median_ms(store.nodes, repeat)
    table_ms, real_nodes = _ray_table_ms(repeat, ray_nodes)
    print("| step | ms (median) | nodes |")
    print("|---|---|---|")
    print(f"| `ray.nodes()` on a real cluster of this machine | {table_ms:.1f} | {real_nodes} |")
    print(f"| Ray's table -> pool nodes (`read_nodes`) | {convert:.2f} | 100 |")
    print(f"| store them (one transaction, every node changed) | {write:.1f} | 100 |")
    print(f"| list them with their jobs (`store.nodes()`) | {listing:.1f} | 100 |")
    total = table_ms + convert + write + listing
    print(f"\ntotal {total:.0f} ms against the 1 s goal ({total / 1000:.3f}x); `ray.nodes()` measured at "
          f"{real_nodes} nodes (one call to Ray's GCS, whose answer grows with the table)")  # fmt: skip


def _ray_table_ms(repeat: int, n: int) -> tuple[float, int]:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(n - 1):
        cluster.add_node(num_cpus=1, num_gpus=4, resources={"accelerator_type:A100": 1})
    ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
    try:
        ray.nodes()  # the first call connects
        ms, _ = _median_ms(ray.nodes, repeat)
        return ms, len(ray.nodes())
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["decide", "pool"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ray-nodes", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("SUANLI_HOME", tempfile.mkdtemp())
    gc.set_threshold(*GC_THRESHOLDS)  # as the agent runs
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    if args.only in (None, "decide"):
        decide(args.repeat)
    if args.only in (None, "pool"):
        pool(args.repeat, args.ray_nodes)


if __name__ == "__main__":
    main()
