# ruff: noqa: E501  (tables and result rows read best on one line each)
"""Federated learning benchmarks: the FedAvg paper's table in shape, suanli against plain Flower,
compute-aware selection against random selection, aggregators under attack, and accuracy against ε.

    python benchmarks/bench_federate.py fedavg       # rounds to target: FedSGD vs FedAvg E=1, E=5 (MNIST 2NN)
    python benchmarks/bench_federate.py overhead     # the same federation through `suanli federate` and plain Flower
    python benchmarks/bench_federate.py selection    # heterogeneous clients: compute-aware vs random selection
    python benchmarks/bench_federate.py attacks      # 20% attackers: final accuracy of each aggregator
    python benchmarks/bench_federate.py dp           # accuracy vs ε; the accountant against opacus's analysis

Data: the 10,000 MNIST test images in ../shared/data/datasets/mnist (or $SUANLI_MNIST), split 8,000 train /
2,000 test, and scikit-learn's digits. Every federation runs in Flower's simulation engine through suanli's
federation runner (`python -m suanli.federate.runner`, the process a `suanli federate` job runs), on 2 CPUs.
Each part writes its table as JSON (and a PNG where there is a curve) into benchmarks/results/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MNIST = Path(os.environ.get("SUANLI_MNIST", ROOT.parent / "shared" / "data" / "datasets" / "mnist"))
CPUS = 2

TASK = """
import numpy as np
import torch
from torch import nn


def mlp2nn():  # the FedAvg paper's 2NN: two hidden layers of 200 units
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                         nn.Linear(200, 10))


def cnn():  # the paper's CNN: two 5x5 conv layers (32, 64 channels) with 2x2 max pooling, 512 units, softmax
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10))


def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def load(path):
    with np.load(path) as d:
        x = torch.tensor(d["x"], dtype=torch.float32) / float(d["scale"])
        return torch.utils.data.TensorDataset(x.unsqueeze(1) if x.dim() == 3 else x,
                                              torch.tensor(d["y"], dtype=torch.int64))
"""


# ---------------------------------------------------------------------------------------------------------
# Data


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist() -> tuple[np.ndarray, np.ndarray, float]:
    return _idx(MNIST / "t10k-images-idx3-ubyte.gz"), _idx(MNIST / "t10k-labels-idx1-ubyte.gz"), 255.0


def digits() -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.uint8), y.astype(np.uint8), 16.0


def split(n: int, test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[test:], order[:test]


def partition(train: np.ndarray, y: np.ndarray, clients: int, iid: bool, seed: int = 0) -> list[np.ndarray]:
    """IID: a random equal share each. Non-IID: the paper's pathological split, sorted by label into
    2 * clients shards, two shards per client."""
    rng = np.random.default_rng(seed)
    if iid:
        return np.array_split(rng.permutation(train), clients)
    by_label = train[np.argsort(y[train], kind="stable")]
    shards = np.array_split(by_label, 2 * clients)
    order = rng.permutation(2 * clients).reshape(clients, 2)
    return [np.concatenate([shards[a], shards[b]]) for a, b in order]


def write(folder: Path, data: tuple, parts: list[np.ndarray], test: np.ndarray) -> None:
    x, y, scale = data
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "task.py").write_text(TASK)
    np.savez(folder / "data" / "test.npz", x=x[test], y=y[test], scale=scale)
    for i, part in enumerate(parts):
        np.savez(folder / "data" / f"part-{i}.npz", x=x[part], y=y[part], scale=scale)


def federation(folder: Path, clients: int, model: str, **fields) -> dict:
    doc = {
        "name": "bench",
        "rounds": 50,
        "app": {"model": f"task.py:{model}", "dataset": "task.py:load", "server_data": "data/test.npz"},
        "strategy": {"name": "FedAvg", "options": {"fraction_train": 0.1}},
        "participants": [{"name": f"c{i}", "data": f"data/part-{i}.npz"} for i in range(clients)],
        "simulation": {"cpus": CPUS},
        "base_dir": str(folder),
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


# ---------------------------------------------------------------------------------------------------------
# Running


def run(doc: dict) -> dict:
    """One federation through suanli's runner; its rounds and the runner's summary."""
    from suanli.federate.spec import parse_fed_spec

    spec = parse_fed_spec(doc)
    env = {**os.environ, "SUANLI_FED_SPEC": spec.model_dump_json(), "SUANLI_FED_CPUS": str(CPUS)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "suanli.federate.runner"], env=env, capture_output=True,
                          text=True, cwd=doc["base_dir"])  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    rounds: dict[int, dict] = {}
    summary: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith('{"metric"'):
            m = json.loads(line)
            rounds.setdefault(m["step"], {"round": m["step"]})[m["metric"]] = m["value"]
        elif line.startswith('{"federation"'):
            summary = json.loads(line)["federation"]
    return {"rounds": [rounds[k] for k in sorted(rounds)], "summary": summary, "process_wall_s": wall}


def rounds_to(result: dict, target: float) -> int | None:
    return next((r["round"] for r in result["rounds"] if r["accuracy"] >= target), None)


def emit(name: str, doc: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"federate-{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


def table(header: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


# ---------------------------------------------------------------------------------------------------------
# Parts


def part_fedavg(args: argparse.Namespace) -> None:
    """Rounds to a target accuracy: FedSGD (B = all, E = 1) against FedAvg (B = 10, E = 1 and 5), 100
    clients, C = 0.1, IID and pathological non-IID, the 2NN (and with --cnn the CNN, E = 5). As in the
    paper, each method gets its best learning rate from a small grid."""
    data = mnist()
    train, test = split(len(data[1]), 2000)
    configs = [("2NN", "mlp2nn", "FedSGD", {"full_batch": True}, (0.5, 1.0), 600),
               ("2NN", "mlp2nn", "FedAvg E=1", {"local_epochs": 1}, (0.1, 0.2), 200),
               ("2NN", "mlp2nn", "FedAvg E=5", {"local_epochs": 5}, (0.05, 0.1), 200)]  # fmt: skip
    if args.cnn:
        configs.append(("CNN", "cnn", "FedAvg E=5", {"local_epochs": 5}, (0.05,), 40))
    rows, out = [], []
    for iid in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write(folder, data, partition(train, data[1], 100, iid), test)
            for model_name, model, method, app, lrs, max_rounds in configs:
                target = args.target_iid if iid else args.target_noniid
                tried = []
                for lr in lrs:
                    doc = federation(
                        folder, 100, model, rounds=max_rounds, app={**app, "lr": lr}, target_accuracy=target
                    )
                    r = run(doc)
                    tried.append((rounds_to(r, target) or math.inf, lr, r))
                    print([model_name, iid, method, lr, tried[-1][0]], file=sys.stderr, flush=True)
                n, lr, r = min(tried, key=lambda t: t[:2])
                n = None if n == math.inf else n
                out.append({"model": model_name, "method": method, "iid": iid, "target": target, "lr": lr,
                            "rounds_to_target": n, "rounds_run": len(r["rounds"]),
                            "lr_grid": {str(t[1]): (None if t[0] == math.inf else t[0]) for t in tried},
                            "final_accuracy": r["rounds"][-1]["accuracy"], "curve": r["rounds"]})  # fmt: skip
                rows.append([model_name, "IID" if iid else "non-IID", method, lr, f"{target:.2f}",
                             n if n is not None else f">{len(r['rounds'])}", f"{r['rounds'][-1]['accuracy']:.4f}"])  # fmt: skip
    print(
        "\nRounds to target accuracy, MNIST 8,000 train / 2,000 test, 100 clients, C = 0.1 (best lr of the grid)"
    )
    table(["model", "data", "method", "lr", "target", "rounds", "final acc"], rows)
    for iid in (True, False):
        sgd = next(o for o in out if o["iid"] == iid and o["method"] == "FedSGD")
        for o in out:
            if o["iid"] == iid and o["model"] == "2NN" and o["method"] != "FedSGD" and o["rounds_to_target"]:
                base = sgd["rounds_to_target"] or sgd["rounds_run"]
                more = "" if sgd["rounds_to_target"] else " at least"
                print(f"{'IID' if iid else 'non-IID'} {o['method']}: {base / o['rounds_to_target']:.1f}x{more} "
                      "fewer rounds than FedSGD")  # fmt: skip
    emit("fedavg", {"configs": out})
    _plot_curves(out, "fedavg")


def _plot_curves(out: list[dict], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for o in out:
        xs = [r["round"] for r in o["curve"]]
        ax.plot(xs, [r["accuracy"] for r in o["curve"]],
                label=f"{o['model']} {o['method']} {'IID' if o['iid'] else 'non-IID'}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"federate-{name}.png", dpi=120)


PLAIN_FLOWER = """
import json, os, random, sys, time
import numpy as np, torch
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from suanli.federate import builtin
from suanli.federate.runner import current_spec, data_path

spec = current_spec()
app = spec.app
random.seed(spec.seed); torch.manual_seed(spec.seed)
model = builtin.resolve(app.model, spec.base_dir)()
test = builtin.resolve(app.dataset, spec.base_dir)(str(spec.path(app.server_data)))
server = ServerApp()
start = time.perf_counter()

def evaluate(rnd, arrays):
    model.load_state_dict(arrays.to_torch_state_dict())
    loss, acc, _ = builtin.evaluate(model, test)
    if rnd:
        print(json.dumps({"round": rnd, "accuracy": acc, "wall_s": time.perf_counter() - start}), flush=True)
    return MetricRecord({"accuracy": acc})

@server.main()
def main(grid, context):
    FedAvg(fraction_train=spec.strategy.options["fraction_train"], fraction_evaluate=0.0).start(
        grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=spec.rounds, evaluate_fn=evaluate)

client = builtin.client_app(spec, lambda ctx: data_path(ctx, spec))
backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
           "init_args": {"num_cpus": int(os.environ["SUANLI_FED_CPUS"]), "num_gpus": 0, "include_dashboard": False}}
run_simulation(server, client, num_supernodes=len(spec.participants), backend_config=backend)
"""


def part_overhead(args: argparse.Namespace) -> None:
    """The same federation (100 clients, 2NN, FedAvg E=1, C=0.1, IID) through `suanli federate` (a job on
    the pool, via the library API) and through plain Flower (run_simulation and FedAvg.start with the same
    client code), alternated, `--repeat` times each: wall time to the last round and the accuracy curve."""
    from suanli import Client
    from suanli.federate.driver import federate
    from suanli.federate.spec import parse_fed_spec

    data = mnist()
    train, test = split(len(data[1]), 2000)
    home = Path(tempfile.mkdtemp(prefix="suanli-bench-"))
    os.environ["SUANLI_HOME"] = str(home)
    client = Client()
    suanli_walls, flower_walls, curves = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, data, partition(train, data[1], 100, True), test)
        doc = federation(folder, 100, "mlp2nn", rounds=args.rounds, app={"local_epochs": 1, "lr": 0.05})
        spec = parse_fed_spec(doc)
        for i in range(args.repeat):
            start = time.perf_counter()
            result = federate(spec, client=client)
            suanli_walls.append(time.perf_counter() - start)
            curves.setdefault("suanli", [r["accuracy"] for r in result.rounds])
            env = {**os.environ, "SUANLI_FED_SPEC": spec.model_dump_json(), "SUANLI_FED_CPUS": str(CPUS)}
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", PLAIN_FLOWER], env=env, capture_output=True, text=True,
                                  cwd=folder, check=True)  # fmt: skip
            flower_walls.append(time.perf_counter() - start)
            rows = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith('{"round"')]
            curves.setdefault("flower", [r["accuracy"] for r in rows])
            print(f"repeat {i}: suanli {suanli_walls[-1]:.1f} s, plain Flower {flower_walls[-1]:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    s, f = statistics.median(suanli_walls), statistics.median(flower_walls)
    gap = max(abs(a - b) for a, b in zip(curves["suanli"], curves["flower"], strict=False))
    print(f"\n{args.rounds} rounds, 100 clients, 2NN, FedAvg E=1 C=0.1, median of {args.repeat}")
    table(["runner", "wall s (median)", "runs", "final accuracy"],
          [["suanli federate (job)", f"{s:.1f}", " ".join(f"{w:.1f}" for w in suanli_walls), f"{curves['suanli'][-1]:.4f}"],
           ["plain Flower", f"{f:.1f}", " ".join(f"{w:.1f}" for w in flower_walls), f"{curves['flower'][-1]:.4f}"]])  # fmt: skip
    print(f"suanli / Flower wall time: {s / f:.3f}; largest accuracy difference in any round: {gap:.4f}")
    emit("overhead", {"suanli_wall_s": suanli_walls, "flower_wall_s": flower_walls, "ratio": s / f,
                      "max_accuracy_gap": gap, "curves": curves})  # fmt: skip


def part_selection(args: argparse.Namespace) -> None:
    """50 clients (MNIST 2NN, IID, E = 1, B = 10, k = 10 a round) whose seconds per local step are drawn
    log-normally (sigma 0.5 around 50 ms), 10% of them stragglers 10x slower; a 2 s deadline per round
    (late updates are dropped). Time to target on the emulated clock, compute-aware against random, for
    `--repeat` draws of the speeds and the sampling (seeds 0, 1, ...)."""
    data = mnist()
    train, test = split(len(data[1]), 2000)
    out, rows, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, data, partition(train, data[1], 50, True), test)
        for seed in range(args.repeat):
            rng = np.random.default_rng(seed)
            step_s = 0.05 * rng.lognormal(0.0, 0.5, 50)
            step_s[rng.choice(50, 5, replace=False)] *= 10
            pair = []
            for policy in ("random", "compute-aware"):
                doc = federation(folder, 50, "mlp2nn", rounds=args.rounds, app={"local_epochs": 1, "lr": 0.05},
                                 strategy={"name": "FedAvg", "options": {"fraction_train": 0.2}},
                                 selection={"policy": policy, "deadline_s": 2.0}, seed=seed)  # fmt: skip
                for i, p in enumerate(doc["participants"]):
                    p["step_s"] = float(step_s[i])
                r = run(doc)
                hit = next((x for x in r["rounds"] if x["accuracy"] >= args.target), None)
                pair.append({"seed": seed, "policy": policy, "time_to_target_s": hit and hit["clock_s"],
                             "round": hit and hit["round"], "final_accuracy": r["rounds"][-1]["accuracy"],
                             "clock_s": r["rounds"][-1]["clock_s"], "curve": r["rounds"]})  # fmt: skip
                late = sum(x["clients_late"] for x in r["rounds"])
                rows.append([seed, policy, f"{hit['clock_s']:.1f}" if hit else "not reached", hit["round"] if hit else "-",
                             f"{r['rounds'][-1]['clock_s']:.1f}", late, f"{r['rounds'][-1]['accuracy']:.4f}"])  # fmt: skip
                print(rows[-1], file=sys.stderr, flush=True)
            a, b = pair
            if a["time_to_target_s"] and b["time_to_target_s"]:
                ratios.append(
                    (a["time_to_target_s"] / b["time_to_target_s"], b["final_accuracy"] - a["final_accuracy"])
                )
            out += pair
    print(
        f"\nTime to {args.target:.0%} accuracy, 50 heterogeneous clients, 2 s deadline, {args.rounds} rounds"
    )
    table(
        ["seed", "selection", "time to target s", "round", "clock s (all)", "late updates", "final accuracy"],
        rows,
    )
    if ratios:
        print(f"speed-up (random / compute-aware time to target): median {statistics.median(r for r, _ in ratios):.2f}x "
              f"of {' '.join(f'{r:.2f}' for r, _ in ratios)}; final accuracy difference (points): "
              f"{' '.join(f'{d * 100:+.2f}' for _, d in ratios)}")  # fmt: skip
    emit("selection", {"runs": out, "speedups": [r for r, _ in ratios]})
    _plot_clock([o for o in out if o["seed"] == 0])


def _plot_clock(out: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for o in out:
        ax.plot([r["clock_s"] for r in o["curve"]], [r["accuracy"] for r in o["curve"]], label=o["policy"])
    ax.set_xlabel("emulated time (s)")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "federate-selection.png", dpi=120)


def part_attacks(args: argparse.Namespace) -> None:
    """20 clients on digits, all in every round, 4 of them (20%) attacking; final accuracy per aggregator."""
    from suanli.federate.aggregate import recommend

    data = digits()
    train, test = split(len(data[1]), 397)
    attacks = ["none", "sign_flip", "gaussian", "alie"]
    results, rows = [], []
    for iid in (True, False):
        rules = ["mean", "median", "krum", "trimmed_mean", "bucketing+centered_clipping"]
        best = recommend(20, 4, iid)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write(folder, data, partition(train, data[1], 20, iid), test)
            for rule in rules:
                row = [("IID" if iid else "non-IID"), rule + (" (recommended)" if rule == best else "")]
                for attack in attacks:
                    doc = federation(folder, 20, "digits_mlp", rounds=args.rounds, app={"lr": 0.1},
                                     strategy={"name": "FedAvg", "options": {"fraction_train": 1.0}},
                                     aggregator={"name": rule, "f": 4,
                                                 "options": {"tau": 1.0} if "clipping" in rule else {}})  # fmt: skip
                    if rule == "mean":
                        doc["aggregator"] = None  # FedAvg itself
                    for p in doc["participants"][:4]:
                        p["attack"] = attack
                    acc = run(doc)["rounds"][-1]["accuracy"]
                    results.append({"iid": iid, "rule": rule, "attack": attack, "final_accuracy": acc})
                    row.append(f"{acc:.4f}")
                    print(row, file=sys.stderr, flush=True)
                rows.append(row)
    print(f"\nFinal accuracy after {args.rounds} rounds, digits, 20 clients, 4 attackers (f = 4)")
    table(["data", "aggregator", *attacks], rows)
    emit("attacks", {"results": results})


def part_dp(args: argparse.Namespace) -> None:
    """Central DP (server-side fixed clipping, norm 1) on digits, 20 clients, 10 a round: accuracy and ε at
    δ = 1e-5 for three noise multipliers; ε from opacus's RDP analysis computed here for comparison."""
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
    from opacus.accountants.rdp import RDPAccountant

    data = digits()
    train, test = split(len(data[1]), 397)
    rows, out = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, data, partition(train, data[1], 20, True), test)
        for sigma in (None, 0.3, 0.7, 1.5):
            privacy = None if sigma is None else {"mode": "central", "noise_multiplier": sigma,
                                                   "clipping_norm": 1.0, "delta": 1e-5}  # fmt: skip
            doc = federation(folder, 20, "digits_mlp", rounds=args.rounds, app={"lr": 0.1},
                             strategy={"name": "FedAvg", "options": {"fraction_train": 0.5}}, privacy=privacy)  # fmt: skip
            r = run(doc)
            eps = r["summary"].get("epsilon")
            check = None
            if sigma is not None:
                orders = RDPAccountant.DEFAULT_ALPHAS
                rdp = compute_rdp(q=0.5, noise_multiplier=sigma, steps=len(r["rounds"]), orders=orders)
                check, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=1e-5)
            out.append({"noise_multiplier": sigma, "epsilon": eps, "opacus_epsilon": check,
                        "final_accuracy": r["rounds"][-1]["accuracy"]})  # fmt: skip
            rows.append(["none" if sigma is None else sigma, "-" if eps is None else f"{eps:.4f}",
                         "-" if check is None else f"{check:.4f}", f"{r['rounds'][-1]['accuracy']:.4f}"])  # fmt: skip
    print(f"\nCentral DP, digits, 20 clients, q = 0.5, {args.rounds} rounds, δ = 1e-5")
    table(["noise multiplier", "ε (suanli)", "ε (opacus analysis)", "final accuracy"], rows)
    emit("dp", {"runs": out})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["fedavg", "overhead", "selection", "attacks", "dp"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.88, help="selection: the target accuracy")
    parser.add_argument("--target-iid", type=float, default=0.90)
    parser.add_argument("--target-noniid", type=float, default=0.85)
    parser.add_argument("--cnn", action="store_true", help="fedavg: also the CNN (slow on CPUs)")
    args = parser.parse_args()
    defaults = {"overhead": 30, "selection": 60, "attacks": 30, "dp": 30}
    args.rounds = args.rounds or defaults.get(args.part, 0)
    globals()[f"part_{args.part}"](args)


if __name__ == "__main__":
    main()
