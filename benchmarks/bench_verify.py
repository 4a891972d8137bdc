# ruff: noqa: E501  (tables read best on one line each)
"""Verification by replication: 1,000 tasks on a pool of 20 owners, 10% of them cheating (a cheater
perturbs its result on a random half of its tasks). Each task is placed, compared and settled by the same
code the agent runs (`suanli.run.verify`: choose_nodes picks the owners, verdict decides; a "rerun"
places a third replica on a third owner), and every replica really computes the task.

    python benchmarks/bench_verify.py [--tasks 1000] [--owners 20] [--cheaters 0.1] [--seeds 5]

Reported against the baseline of running each task once (no detection, 1x compute): the share of cheated
tasks detected (not accepted as verified), the share whose cheater was flagged by a majority, honest
owners flagged (false flags), and compute as replicas run per task. Goal: >= 99% detected at <= 2.2x.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
from pathlib import Path

import numpy as np

from suanli.jobs.spec import parse_spec
from suanli.run.verify import Replica, choose_nodes, verdict
from suanli.store.records import NodeRecord

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def task_output(task: int, cheat: random.Random | None) -> dict[str, str]:
    """The task's real result (a small linear solve), perturbed by a cheater; its digest, as the ledger
    would hold it."""
    g = np.random.default_rng(task)
    a = g.standard_normal((32, 32)) + 32 * np.eye(32)
    x = np.linalg.solve(a, g.standard_normal(32))
    if cheat is not None:
        x = x + cheat.gauss(0, 1e-6)  # a careless or lazy result: close, but not the same bits
    return {"out.npy": hashlib.sha256(x.tobytes()).hexdigest()}


def run(tasks: int, owners: int, cheater_share: float, seed: int) -> dict:
    rng = random.Random(seed)
    nodes = [NodeRecord(f"n{i}", 8.0, 2**34, None, 0, "UP", 0.0, owner=f"owner-{i}") for i in range(owners)]
    cheaters = set(rng.sample([n.owner for n in nodes], max(1, round(owners * cheater_share))))
    spec = parse_spec({"run": "task", "artifacts": ["out.npy"], "verify": "replicate"})
    runs = cheated = detected = caught = false_flags = 0
    for t in range(tasks):
        cheats = {o: rng.random() < 0.5 for o in cheaters}  # each cheater cheats on a random half

        def replica(i: int, node: NodeRecord, t: int = t, cheats: dict = cheats) -> Replica:
            lying = node.owner in cheaters and cheats[node.owner]
            return Replica(i, node.owner, node.name, True, task_output(t, rng if lying else None))

        pair = choose_nodes(spec, nodes, 2, rng=rng)
        reps = [replica(i, n) for i, n in enumerate(pair)]
        decided = verdict(reps)
        if decided.status == "rerun":
            third = choose_nodes(spec, nodes, 1, exclude_owners=[r.owner for r in reps], rng=rng)[0]
            reps.append(replica(2, third))
            decided = verdict(reps)
        runs += len(reps)
        liars = {r.owner for r in reps if r.owner in cheaters and cheats[r.owner]}
        if liars:
            cheated += 1
            detected += decided.status != "verified"
            caught += bool(liars & set(decided.flagged))
        false_flags += len(set(decided.flagged) - cheaters)
    return {
        "tasks": tasks, "owners": owners, "cheaters": len(cheaters), "cheated_tasks": cheated,
        "detected": detected / max(cheated, 1), "cheater_flagged": caught / max(cheated, 1),
        "false_flags": false_flags, "compute_x": runs / tasks,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--owners", type=int, default=20)
    ap.add_argument("--cheaters", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    rows = [run(args.tasks, args.owners, args.cheaters, seed) for seed in range(args.seeds)]
    med = {k: statistics.median(r[k] for r in rows) for k in ("detected", "cheater_flagged", "compute_x", "false_flags")}
    print(f"{args.tasks} tasks, {args.owners} owners, {rows[0]['cheaters']} cheating on half their tasks; median of {args.seeds} seeds")
    print(f"{'':28} {'detected':>9} {'cheater flagged':>16} {'false flags':>12} {'compute':>8}")
    print(f"{'run once (baseline)':28} {0.0:>9.1%} {0.0:>16.1%} {0:>12} {1.0:>7.2f}x")
    print(f"{'suanli verify: replicate':28} {med['detected']:>9.1%} {med['cheater_flagged']:>16.1%} {med['false_flags']:>12g} {med['compute_x']:>7.2f}x")
    for r in rows:
        print(f"  seed run: cheated {r['cheated_tasks']}, detected {r['detected']:.1%}, flagged {r['cheater_flagged']:.1%}, compute {r['compute_x']:.3f}x")
    goal = med["detected"] >= 0.99 and med["compute_x"] <= 2.2
    print(f"goal (>= 99% detected at <= 2.2x compute): {'met' if goal else 'MISSED'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "verify.json").write_text(json.dumps({"runs": rows, "median": med}, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(["run once", "replicate"], [1.0, med["compute_x"]], color=["#999", "#3a7"])
    for i, d in enumerate([0.0, med["detected"]]):
        ax.text(i, 0.05, f"{d:.1%} detected", ha="center", color="white")
    ax.set_ylabel("compute (x one run)")
    ax.set_title("1,000 tasks, 10% of owners cheating")
    fig.tight_layout()
    fig.savefig(RESULTS / "verify.png", dpi=120)
    print(f"wrote {RESULTS / 'verify.json'} and verify.png")


if __name__ == "__main__":
    main()
