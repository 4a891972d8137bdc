# ruff: noqa: E501  (tables and result rows read best on one line each)
"""The Byzantine table: final accuracy of every aggregation rule against every attack, f = 0..5 Byzantine
workers of n = 25, IID and non-IID, on scikit-learn's digits and MNIST.

    python benchmarks/bench_byzantine.py tune      # seed 0: tau, bucket size s, worker momentum
    python benchmarks/bench_byzantine.py table     # seed 1: the table (about 12 min on 2 CPUs)
    python benchmarks/bench_byzantine.py check     # seeds 2, 3: the recommended rule's f = 5 row again

No Flower: the 25 workers are simulated in one process with torch, so hundreds of configurations run in
minutes. Each round every honest worker takes a minibatch gradient on its shard at the server's model and
updates its momentum m_i <- beta m_i + (1 - beta) g_i (worker momentum, Karimireddy, He, Jaggi 2021); the
Byzantine workers send what their attack crafts from the honest messages of that round; the server
aggregates the 25 messages with `suanli.federate.aggregate.aggregate` (the library under test, with its
checks) and steps x <- x - lr * aggregate. Centred clipping is given the previous round's aggregate as its
reference (the paper's server momentum) and tau; bucketing gets a fresh seed each round.

Data: digits, 1,397 train / 400 test (seed 0); MNIST, the 10,000 test images in ../shared/data/datasets/mnist
(or $SUANLI_MNIST) split 8,000 train / 2,000 test (seed 0), pixels / 255. Non-IID: the FedAvg paper's
pathological split, the training set sorted by label and cut into 50 shards, 2 per worker (most workers
see 2 digits). Byzantine workers are f of the 25 drawn at random (per seed); they hold shards too, so
their data is lost to training: the "honest only" row (the mean of the honest messages, knowing who is
Byzantine) is the ceiling a rule can reach.

Results go to benchmarks/results/byzantine-PART.json and byzantine-table.png; progress on stderr.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MNIST = Path(os.environ.get("SUANLI_MNIST", ROOT.parent / "shared" / "data" / "datasets" / "mnist"))
N = 25
ATTACKS = ["none", "sign_flip", "gaussian", "label_flip", "alie", "ipm"]
RULES = [
    "mean", "median", "trimmed_mean", "krum", "multikrum", "bulyan", "centered_clipping",
    "bucketing+median", "bucketing+trimmed_mean", "bucketing+krum", "bucketing+multikrum",
    "bucketing+bulyan", "bucketing+centered_clipping",
]  # fmt: skip
HONEST = "honest_only"


# ---------------------------------------------------------------------------------------------------------
# Data


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test as float32 features in [0, 1] and int64 labels. MNIST is pooled
2x2 to 14x14 (196 features), which keeps the model at 6,634 parameters so the table fits 2 CPUs."""
    if name == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, test = x / 16.0, 397
    else:
        images = _idx(MNIST / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        x = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(images), -1)  # 2x2 pooled: 14x14
        y, test = _idx(MNIST / "t10k-labels-idx1-ubyte.gz"), 2000
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x.astype(np.float32), y.astype(np.int64)
    return x[order[test:]], y[order[test:]], x[order[:test]], y[order[:test]]


def partition(y: np.ndarray, iid: bool, seed: int) -> list[np.ndarray]:
    """IID: a random equal share each. Non-IID: sorted by label, 2N shards, two random ones per worker."""
    rng = np.random.default_rng(seed)
    if iid:
        return np.array_split(rng.permutation(len(y)), N)
    shards = np.array_split(np.argsort(y, kind="stable"), 2 * N)
    pairs = rng.permutation(2 * N).reshape(N, 2)
    return [np.concatenate([shards[a], shards[b]]) for a, b in pairs]


# ---------------------------------------------------------------------------------------------------------
# One federation


@dataclass(frozen=True)
class Setting:
    """Every hyper-parameter of one run (the defaults are the tuned ones used for the table)."""

    dataset: str = "digits"
    iid: bool = True
    attack: str = "none"
    f: int = 0
    rule: str = "mean"
    seed: int = 1
    rounds: int = 150
    batch: int = 32
    lr: float = 0.5
    beta: float = 0.9  # worker momentum; 0 = plain SGD messages
    hidden: int = 32
    tau: float = 0.1  # centred clipping radius (absolute, on the momentum messages)
    s: int = 2  # bucket size
    gaussian_std: float = 200.0
    ipm_epsilon: float = 0.1
    options: dict = field(default_factory=dict, hash=False)


def _model(d_in: int, hidden: int):  # type: ignore[no-untyped-def]
    """A one-hidden-layer MLP as a pure function of a flat parameter vector, so per-worker gradients are
    one vmap over the workers."""
    import torch

    sizes = [(hidden, d_in), (hidden,), (10, hidden), (10,)]
    counts = [math.prod(s) for s in sizes]

    def init(gen: torch.Generator) -> torch.Tensor:
        w1 = torch.randn(sizes[0], generator=gen) * math.sqrt(2.0 / d_in)
        w2 = torch.randn(sizes[2], generator=gen) * math.sqrt(1.0 / hidden)
        return torch.cat([w1.reshape(-1), torch.zeros(hidden), w2.reshape(-1), torch.zeros(10)])

    def logits(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = (p.reshape(s) for p, s in zip(theta.split(counts), sizes, strict=True))
        return torch.relu(x @ w1.T + b1) @ w2.T + b2

    def loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits(theta, x), y)

    return init, logits, loss


def _craft(st: Setting, msgs: list, good: list, byz: list[int], rnd: int) -> list:
    """What the Byzantine workers send this round. Sign flip: each its own honest momentum negated; label
    flip: its momentum on labels 9 - y; Gaussian: N(0, std^2 I); ALIE and IPM: from the honest messages."""
    from suanli.federate import attacks

    if st.attack == "sign_flip":
        return attacks.sign_flip([msgs[i] for i in byz])
    if st.attack == "label_flip":
        return [msgs[i] for i in byz]
    if st.attack == "gaussian":
        return attacks.gaussian(good[0], st.f, std=st.gaussian_std, seed=st.seed * 100_000 + rnd)
    if st.attack == "alie":
        return attacks.alie(good, st.f, n=N)
    if st.attack == "ipm":
        return attacks.ipm(good, st.f, epsilon=st.ipm_epsilon)
    raise ValueError(st.attack)


def simulate(st: Setting, data: tuple | None = None) -> dict:
    """Train with n = 25 workers of which st.f are Byzantine; the final test accuracy and the wall time."""
    import torch
    from torch.func import grad, vmap

    from suanli.federate.aggregate import aggregate

    torch.set_num_threads(1)
    started = time.perf_counter()
    xtr, ytr, xte, yte = data if data is not None else load(st.dataset)
    parts = partition(ytr, st.iid, st.seed)
    rng = np.random.default_rng(1000 + st.seed)
    byz = set(rng.choice(N, size=st.f, replace=False).tolist()) if st.attack != "none" else set()
    honest = [i for i in range(N) if i not in byz]
    gen = torch.Generator().manual_seed(st.seed)
    init, logits, loss = _model(xtr.shape[1], st.hidden)
    theta = init(gen)
    x_all, y_all = torch.from_numpy(xtr), torch.from_numpy(ytr)
    flipped = 9 - y_all  # label flipping: every Byzantine worker trains on 9 - y
    per_worker_grad = vmap(grad(loss), in_dims=(None, 0, 0))
    momentum = torch.zeros(N, theta.numel())
    previous = torch.zeros_like(theta)  # the last aggregate: centred clipping's reference
    f_rule = 0 if st.rule == "mean" else st.f  # plain averaging runs (and collapses) past its f = 0
    for rnd in range(st.rounds):
        idx = torch.stack([torch.from_numpy(p[rng.integers(0, len(p), st.batch)]) for p in parts])
        ys = torch.where(
            torch.tensor([i in byz and st.attack == "label_flip" for i in range(N)])[:, None],
            flipped[idx],
            y_all[idx],
        )
        g = per_worker_grad(theta, x_all[idx], ys)
        momentum = st.beta * momentum + (1 - st.beta) * g if st.beta else g
        msgs = list(momentum.unbind(0))
        good = [msgs[i] for i in honest]
        if byz:
            for i, b in zip(sorted(byz), _craft(st, msgs, good, sorted(byz), rnd), strict=True):
                msgs[i] = b
        if st.rule == HONEST:
            agg = torch.stack(good).mean(0)
        else:
            options = dict(st.options)
            if "centered_clipping" in st.rule:
                options.setdefault("tau", st.tau)
                options["reference"] = previous
            if st.rule.startswith("bucketing"):
                options.setdefault("s", st.s)
                options["seed"] = int(rng.integers(0, 2**62))
            agg = aggregate(st.rule, msgs, f=f_rule, **options)
        previous = agg
        theta = theta - st.lr * agg
        if not bool(torch.isfinite(theta).all()):
            break
    with torch.no_grad():
        pred = logits(theta, torch.from_numpy(xte)).argmax(1).numpy()
    acc = float((pred == yte).mean()) if np.isfinite(theta.numpy()).all() else 0.1
    return {**{k: v for k, v in asdict(st).items() if k != "options"}, "options": st.options,
            "accuracy": acc, "wall_s": time.perf_counter() - started}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Many federations on 2 CPUs

_DATA: dict[str, tuple] = {}


def _run(st: Setting) -> dict:
    if st.dataset not in _DATA:
        _DATA[st.dataset] = load(st.dataset)
    return simulate(st, _DATA[st.dataset])


def run_all(settings: list[Setting], what: str, workers: int = 2) -> list[dict]:
    """Run the settings in `workers` processes (one torch thread each), with a Rich progress bar on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    results: list[dict] = []
    with Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True)) as bar:  # fmt: skip
        task = bar.add_task(what, total=len(settings))
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(_run, settings, chunksize=1):
                results.append(result)
                bar.advance(task)
    return results


def allowed(rule: str, f: int, s: int = 2) -> bool:
    """Whether `rule` tolerates f of N (the library's own check), so the table skips what it refuses."""
    from suanli.core.errors import BadInput
    from suanli.federate.aggregate import check_tolerates

    if rule in ("mean", HONEST):
        return True
    options = {"tau": 1.0} if "clipping" in rule else {}
    if rule.startswith("bucketing"):
        options["s"] = s
    try:
        check_tolerates(rule, N, f, **options)
    except BadInput:
        return False
    return True


def emit(name: str, doc: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"byzantine-{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return path


def table(header: list[str], rows: list[list]) -> None:
    """A Markdown table, ready to paste into docs/benchmarks.md."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


SPLITS = {True: "IID", False: "non-IID"}


# ---------------------------------------------------------------------------------------------------------
# Parts

TUNE_GRID = [
    ("centered_clipping", {"tau": tau, "options": {"iterations": it}}) for tau in (0.5, 1.0, 2.0) for it in (1, 3)
] + [
    ("bucketing+centered_clipping", {"tau": tau, "options": {"iterations": it}}) for tau in (0.5, 1.0, 2.0) for it in (1, 3)
] + [
    ("bucketing+centered_clipping", {"tau": 1.0, "beta": 0.0, "options": {"iterations": 3}}),  # no worker momentum
]  # fmt: skip


def part_tune(args: argparse.Namespace) -> None:
    """Seed 0, f = 5: centred clipping's tau and iterations L, with and without bucketing (s = 2, the only
    size leaving 13 buckets, enough for f = 5), and once without worker momentum. Criterion: the worst drop
    from the no-attack run over attacks, splits and datasets. The other rules have nothing to tune here:
    trimmed mean trims f per end, Krum, MultiKrum (m = n - f) and Bulyan take only f."""
    settings = []
    for dataset in args.datasets:
        for iid in (True, False):
            for rule, over in TUNE_GRID:
                for attack in ATTACKS:
                    settings.append(replace(Setting(dataset=dataset, iid=iid, rule=rule, attack=attack, f=5, seed=0,
                                                    rounds=args.rounds), **over))  # fmt: skip
    results = run_all(settings, "tune", args.workers)
    by: dict[tuple, dict[str, float]] = {}
    for r in results:
        key = (r["rule"], r["tau"], r["options"].get("iterations", 1), r["beta"], r["dataset"], SPLITS[r["iid"]])
        by.setdefault(key, {})[r["attack"]] = r["accuracy"]
    rows, worst = [], {}
    for key, accs in by.items():
        drops = {a: accs[a] - accs["none"] for a in ATTACKS[1:]}
        rows.append([*map(str, key), f"{accs['none']:.4f}", *(f"{drops[a]:+.4f}" for a in ATTACKS[1:])])
        worst.setdefault(key[:4], []).append(min(drops.values()))
    print(f"\nTuning on seed 0, f = 5 of {N}, {args.rounds} rounds: accuracy with no attack and the drop per attack")
    table(["rule", "tau", "L", "beta", "data", "split", "none", *ATTACKS[1:]], rows)
    ranked = sorted(worst.items(), key=lambda kv: -min(kv[1]))
    print("\nworst drop over attacks, splits and datasets (best first):")
    for (rule, tau, it, beta), drops in ranked:
        print(f"  {rule} tau={tau} L={it} beta={beta}: {min(drops):+.4f}")
    emit("tune", {"rounds": args.rounds, "seed": 0, "f": 5, "results": results})


# Tuned on seed 0 by `tune` (worst drop over attacks and both datasets at f = 5), per split since
# recommend() knows whether the data is IID: centred clipping's tau and L = 3 iterations.
TUNED_TAU = {
    (True, "centered_clipping"): 0.5,
    (True, "bucketing+centered_clipping"): 0.5,
    (False, "centered_clipping"): 2.0,
    (False, "bucketing+centered_clipping"): 1.0,
}
FULL_SWEEP = ["mean", "median", "trimmed_mean", "krum", "multikrum", "bulyan", "centered_clipping",
              "bucketing+centered_clipping"]  # fmt: skip


def tuned(st: Setting) -> Setting:
    """The tuned hyper-parameters for a setting's rule and split."""
    if "centered_clipping" in st.rule:
        return replace(st, tau=TUNED_TAU[(st.iid, st.rule)], options={"iterations": 3})
    return st


def table_settings(datasets: list[str], seed: int, rounds: int) -> list[Setting]:
    """f = 0..5 for every attack for the plain rules and the recommended family; the other bucketing
    variants at f = 0 and their largest f <= 5 (to keep the run near 15 minutes on 2 CPUs)."""
    out = []
    for dataset in datasets:
        for iid in (True, False):
            base = Setting(dataset=dataset, iid=iid, seed=seed, rounds=rounds)
            for rule in [*RULES, HONEST]:
                fs = [f for f in range(6) if allowed(rule, f)]
                if rule not in FULL_SWEEP and rule != HONEST:
                    fs = [0, max(fs)]
                for f in fs:
                    if rule == HONEST:
                        if f:
                            out.append(replace(base, rule=rule, f=f, attack="sign_flip"))  # any attack: ignored
                        continue
                    attacks = ["none"] if f == 0 else ATTACKS if f == max(fs) else ATTACKS[1:]
                    out.extend(tuned(replace(base, rule=rule, f=f, attack=a)) for a in attacks)
    return out


def _label(rule: str, recommended: str) -> str:
    return rule + (" (recommended)" if rule == recommended else "")


def part_table(args: argparse.Namespace) -> None:
    """Seed 1: the table. Printed: for each dataset and split, f = 5 (final accuracy and the drop from
    the same rule's no-attack run), and f = 0..5 for plain averaging and the recommended rule."""
    from suanli.federate.aggregate import recommend

    settings = table_settings(args.datasets, 1, args.rounds)
    results = run_all(settings, "table", args.workers)
    acc = {(r["dataset"], r["iid"], r["rule"], r["f"], r["attack"]): r["accuracy"] for r in results}
    print(f"\nFinal accuracy after {args.rounds} rounds, n = {N} workers, seed 1 (drop from the same rule's run "
          "without attack, points)")  # fmt: skip
    summary = []
    for dataset in args.datasets:
        for iid in (True, False):
            best = recommend(N, 5, iid)
            clean = acc[(dataset, iid, "mean", 0, "none")]
            print(f"\n{dataset}, {SPLITS[iid]}, f = 5 (FedAvg without attackers: {clean:.4f}; honest only: "
                  f"{acc[(dataset, iid, HONEST, 5, 'sign_flip')]:.4f})\n")  # fmt: skip
            rows = []
            for rule in RULES:
                f = max(f for f in range(6) if allowed(rule, f))
                base = acc[(dataset, iid, rule, f, "none")]
                cells = [f"{base:.4f}"] + [f"{acc[(dataset, iid, rule, f, a)]:.4f} ({100 * (acc[(dataset, iid, rule, f, a)] - base):+.1f})" for a in ATTACKS[1:]]  # fmt: skip
                name = _label(rule, best) + ("" if f == 5 else f" (f = {f}, its limit)")
                rows.append([f"**{name}**" if rule == best else name, *cells])
                if rule == best:
                    drops = {a: acc[(dataset, iid, rule, 5, a)] - base for a in ATTACKS[1:]}
                    summary.append({"dataset": dataset, "split": SPLITS[iid], "rule": rule, "none": base,
                                    "drops": drops, "met": all(d >= -0.02 for d in drops.values()),
                                    "mean_worst": min(acc[(dataset, iid, "mean", 5, a)] for a in ATTACKS[1:])})  # fmt: skip
            table(["aggregator", "none", *ATTACKS[1:]], rows)
            for rule in ("mean", best):
                print(f"\n{dataset}, {SPLITS[iid]}, {_label(rule, best)}: f = 0..5\n")
                rows = [[str(f), *(f"{acc[(dataset, iid, rule, f, a)]:.4f}" if (dataset, iid, rule, f, a) in acc else "-" for a in ATTACKS)]
                        for f in range(6)]  # fmt: skip
                table(["f", *ATTACKS], rows)
    print("\nGoal: with f = 5 the recommended rule within 2 points of its no-attack run, on every attack:")
    for s in summary:
        missed = {a: round(100 * d, 2) for a, d in s["drops"].items() if d < -0.02}
        print(f"  {s['dataset']} {s['split']} {s['rule']}: " + ("met" if s["met"] else f"missed {missed}")
              + f"; plain averaging's worst attack: {s['mean_worst']:.4f}")  # fmt: skip
    emit("table", {"rounds": args.rounds, "seed": 1, "n": N, "tuned_tau": {f"{SPLITS[k[0]]} {k[1]}": v for k, v in TUNED_TAU.items()},
                   "summary": summary, "results": results})  # fmt: skip
    plot(results, args.datasets)


def plot(results: list[dict], datasets: list[str]) -> None:
    """One panel per dataset and split: the worst accuracy over the five attacks against f, per rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.5 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, iid in enumerate((True, False)):
            ax = axes[row][col]
            for rule in [*RULES, HONEST]:
                worst: dict[int, float] = {}
                for r in results:
                    if (r["dataset"], r["iid"], r["rule"]) == (dataset, iid, rule) and (r["f"] == 0 or r["attack"] != "none"):
                        worst[r["f"]] = min(worst.get(r["f"], 1.0), r["accuracy"])
                if len(worst) < 2:
                    continue
                fs = sorted(worst)
                style = "--" if rule == HONEST else "-o" if "bucketing" not in rule else ":s"
                extra = {"color": "black"} if rule == HONEST else {}
                ax.plot(fs, [worst[f] for f in fs], style, label=rule, markersize=3, **extra)
            ax.set_title(f"{dataset}, {SPLITS[iid]}: worst attack")
            ax.set_xlabel("Byzantine workers f (of 25)")
            ax.set_ylabel("final test accuracy")
            ax.set_ylim(0, 1)
    axes[0][1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "byzantine-table.png", dpi=110)
    print(f"wrote {(RESULTS / 'byzantine-table.png').relative_to(ROOT)}", file=sys.stderr)


def part_check(args: argparse.Namespace) -> None:
    """Seeds 2 and 3: the recommended rule and plain averaging at f = 5 against every attack, to see how
    much of the seed-1 table is the draw."""
    from suanli.federate.aggregate import recommend

    settings = []
    for seed in (2, 3):
        for dataset in args.datasets:
            for iid in (True, False):
                for rule in dict.fromkeys(["mean", recommend(N, 5, iid)]):
                    for attack in ATTACKS:
                        settings.append(tuned(Setting(dataset=dataset, iid=iid, rule=rule, attack=attack, f=5,
                                                      seed=seed, rounds=args.rounds)))  # fmt: skip
    results = run_all(settings, "check", args.workers)
    acc = {(r["seed"], r["dataset"], r["iid"], r["rule"], r["attack"]): r["accuracy"] for r in results}
    rows = []
    for seed in (2, 3):
        for dataset in args.datasets:
            for iid in (True, False):
                for rule in dict.fromkeys(["mean", recommend(N, 5, iid)]):
                    base = acc[(seed, dataset, iid, rule, "none")]
                    rows.append([str(seed), dataset, SPLITS[iid], rule, f"{base:.4f}",
                                 *(f"{acc[(seed, dataset, iid, rule, a)]:.4f} ({100 * (acc[(seed, dataset, iid, rule, a)] - base):+.1f})" for a in ATTACKS[1:])])  # fmt: skip
    print(f"\nf = 5 of {N}, {args.rounds} rounds, seeds 2 and 3: accuracy (drop from no attack, points)\n")
    table(["seed", "data", "split", "aggregator", "none", *ATTACKS[1:]], rows)
    emit("check", {"rounds": args.rounds, "seeds": [2, 3], "results": results})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["tune", "table", "check"])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=["digits", "mnist"])
    parser.add_argument("--rounds", type=int, default=Setting.rounds)
    parser.add_argument("--workers", type=int, default=2, help="processes (one torch thread each)")
    args = parser.parse_args()
    started = time.perf_counter()
    {"tune": part_tune, "table": part_table, "check": part_check}[args.part](args)
    print(f"{args.part}: {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
