# ruff: noqa: E501  (tables and result rows read best on one line each)
"""Voting inference benchmark: 5 replicas (each its own model: a bootstrap-trained MLP) served through
`suanli serve`'s driver as suanli jobs on the local pool, with 0, 1 and 2 of them malicious (`wrong_labels`:
colluding, each certain of the same wrong label).

    python benchmarks/bench_serve.py              # accuracy table (digits, MNIST) and latency/throughput
    python benchmarks/bench_serve.py --runs 5     # more latency runs (medians are reported)

Accuracy: every held-out row is sent once (requests of 20 rows) to a fresh service; the answers are
deterministic, so one pass each. "drop off" disables the drop rule to show what the vote alone withstands.
Latency: one-row requests, one at a time, client-side, against (a) one replica directly, (b) the front with
one replica, (c) the front voting over 5; p50/p95 are medians over --runs runs. Throughput: 8 client
threads for 4 s. Data: scikit-learn's digits (1,200 train / 597 test, examples/serve/make_models.py's
split) and MNIST's 10,000 test images (8,000 train / 2,000 test) from ../shared/data/datasets/mnist. All on
this machine's 2 CPUs, clients included. Writes benchmarks/results/serve.json and serve.png.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MNIST = Path(os.environ.get("SUANLI_MNIST", ROOT.parent / "shared" / "data" / "datasets" / "mnist"))
sys.path.insert(0, str(ROOT / "examples" / "serve"))

from make_models import digits_split, save, train  # noqa: E402

BATCH = 20
# column, malicious replicas, drop rule on, replicas used (the first ones; the malicious are the last)
CONFIGS = [
    ("honest", 0, True, 5), ("honest4", 0, True, 4), ("mal1", 1, True, 5), ("honest3", 0, True, 3),
    ("mal2", 2, True, 5), ("mal2_nodrop", 2, False, 5),
]  # fmt: skip
WIDTHS = [32, 48, 24, 64, 40]


def load_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def mnist_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = load_idx(MNIST / "t10k-images-idx3-ubyte.gz").reshape(10_000, 784).astype(np.float32)
    y = load_idx(MNIST / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x[:8000], y[:8000], x[8000:], y[8000:]


def make_models(folder: Path, data: tuple, scale: float) -> list[Path]:
    """Five ONNX MLPs, each on its own bootstrap sample, width and seed."""
    x, y = data[0], data[1]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, width in enumerate(WIDTHS):
        model = train(x, y, hidden=width * (2 if x.shape[1] > 64 else 1), seed=i, scale=scale)
        path = folder / f"m{i}.onnx"
        save(model, path, "onnx", x.shape[1])
        paths.append(path)
    return paths


def ensemble_file(folder: Path, name: str, models: list[Path], shape: int, *, vote: str = "majority",
                  malicious: int = 0, drop: bool = True) -> Path:  # fmt: skip
    import yaml

    replicas = [
        {"name": f"owner-{i}", "model": str(m), "cpus": 0.25,
         **({"attack": "wrong_labels"} if i >= len(models) - malicious else {})}
        for i, m in enumerate(models)
    ]  # fmt: skip
    doc = {
        "name": name, "vote": vote, "input_shape": [shape], "timeout_s": 5.0, "quorum": 1, "replicas": replicas,
        "drop": {"timeouts": 3, "window": 50, "disagreement": 0.5, "enabled": drop},
        "front": {"cpus": 0.5, "max_rows": 1024},
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Service:
    """A service started through the driver (as `suanli serve` does), stopped on exit."""

    def __init__(self, client, path: Path) -> None:  # type: ignore[no-untyped-def]
        from suanli.serve import driver
        from suanli.serve.spec import load_ensemble_spec

        self.client, self.driver = client, driver
        self.spec = load_ensemble_spec(path)
        self.result = driver.start(self.spec, client=client, jobs=driver.prepare(self.spec, client))

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.down(self.spec.name, self.client)


def accuracy(endpoint: str, x: np.ndarray, y: np.ndarray) -> dict:
    import httpx

    labels, agreed = [], []
    with httpx.Client(timeout=60) as http:
        for i in range(0, len(y), BATCH):
            doc = http.post(f"{endpoint}/predict", json={"inputs": x[i : i + BATCH].tolist()}).json()
            labels += doc["labels"]
            agreed += doc["agreed"]
        status = http.get(f"{endpoint}/status").json()
    dropped = {r["name"]: r["requests"] for r in status["replicas"] if r["state"] == "dropped"}
    return {"accuracy": float(np.mean(np.array(labels) == y)), "mean_agreed": float(np.mean(agreed)),
            "dropped_after_requests": dropped}  # fmt: skip


def latencies(url: str, rows: np.ndarray, n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(timeout=60) as http:
        for i in range(n):
            body = {"inputs": [rows[i % len(rows)].tolist()]}
            t0 = time.perf_counter()
            reply = http.post(url, json=body)
            out.append((time.perf_counter() - t0) * 1000)
            assert reply.status_code == 200, reply.text
    return out


def throughput(url: str, rows: np.ndarray, seconds: float = 4.0, threads: int = 8) -> float:
    import httpx

    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = k
            while time.perf_counter() < stop:
                http.post(url, json={"inputs": [rows[i % len(rows)].tolist()]}).raise_for_status()
                done[k] += 1
                i += threads

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def accuracy_part(client, work: Path, datasets: dict) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = []
    for ds, (models, shape, x, y) in datasets.items():
        with Service(client, ensemble_file(work, f"{ds}-single", models[:1], shape)) as s:
            single = accuracy(s.result.endpoint, x, y)
        for vote in ("majority", "soft"):
            row = {"dataset": ds, "vote": vote, "single": single["accuracy"]}
            for label, malicious, drop, used in CONFIGS:
                with Service(client, ensemble_file(work, f"{ds}-{vote}-{label}".replace("_", "-"), models[:used], shape,
                                                   vote=vote, malicious=malicious, drop=drop)) as s:  # fmt: skip
                    got = accuracy(s.result.endpoint, x, y)
                row[label] = got["accuracy"]
                row[f"{label}_agreed"] = got["mean_agreed"]
                row[f"{label}_dropped"] = got["dropped_after_requests"]
            rows.append(row)
            print(f"  {ds} {vote}: {json.dumps({k: v for k, v in row.items() if not k.endswith(('_agreed', '_dropped'))})}", flush=True)
    return rows


def latency_part(client, work: Path, models: list[Path], shape: int, x: np.ndarray, runs: int, n: int) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    configs = [("single_front", models[:1], "majority"), ("vote5_majority", models, "majority"), ("vote5_soft", models, "soft")]
    for name, ms, vote in configs:
        with Service(client, ensemble_file(work, f"lat-{name}".replace("_", "-"), ms, shape, vote=vote)) as s:
            url = f"{s.result.endpoint}/predict"
            p50s, p95s, direct50, direct95 = [], [], [], []
            latencies(url, x, 30)  # warm up: connections, onnxruntime's first runs
            for _ in range(runs):
                lat = latencies(url, x, n)
                p50s.append(float(np.percentile(lat, 50)))
                p95s.append(float(np.percentile(lat, 95)))
                if name == "single_front":
                    direct = latencies(f"http://{s.result.replicas[0]['address']}/predict", x, n)
                    direct50.append(float(np.percentile(direct, 50)))
                    direct95.append(float(np.percentile(direct, 95)))
            rps = statistics.median(throughput(url, x) for _ in range(runs))
            out[name] = {"p50_ms": statistics.median(p50s), "p95_ms": statistics.median(p95s), "throughput_rps": rps}
            if direct50:
                out["single_direct"] = {"p50_ms": statistics.median(direct50), "p95_ms": statistics.median(direct95),
                                        "throughput_rps": None}  # fmt: skip
            print(f"  {name}: {out[name]}", flush=True)
    return out


def plot(acc: list[dict], lat: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    cols = ["single", "honest", "honest4", "mal1", "honest3", "mal2", "mal2_nodrop"]
    width = 0.8 / len(acc)
    for i, row in enumerate(acc):
        a.bar(np.arange(len(cols)) + i * width, [row[c] for c in cols], width, label=f"{row['dataset']} {row['vote']}")
    a.set_xticks(np.arange(len(cols)) + 0.4 - width / 2, ["1", "5 honest", "its 4 honest", "1 mal.", "its 3 honest", "2 mal.", "2 mal.,\nno drop"], fontsize=8)
    a.set_ylim(min(r[c] for r in acc for c in cols) - 0.05, 1.0)
    a.set_ylabel("accuracy")
    a.legend(fontsize=8)
    a.set_title("accuracy of the vote (5 replicas)")
    names = ["single_direct", "single_front", "vote5_majority", "vote5_soft"]
    b.bar(np.arange(4) - 0.2, [lat[n]["p50_ms"] for n in names], 0.4, label="p50")
    b.bar(np.arange(4) + 0.2, [lat[n]["p95_ms"] for n in names], 0.4, label="p95")
    b.set_xticks(np.arange(4), ["replica direct", "front, 1 replica", "vote of 5 (majority)", "vote of 5 (soft)"], fontsize=8)
    b.set_ylabel("ms per one-row request")
    b.legend()
    b.set_title("latency (digits, 2 CPUs)")
    fig.tight_layout()
    tmp = RESULTS / ".serve.png.tmp"
    fig.savefig(tmp, dpi=120, format="png")
    os.replace(tmp, RESULTS / "serve.png")


def table(acc: list[dict], lat: dict) -> str:
    lines = ["| data | vote | 1 replica | 5 honest | 1 malicious of 5 | its 4 honest alone | 2 malicious of 5 | its 3 honest alone | 2 malicious, no drop |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in acc:
        lines.append(f"| {r['dataset']} | {r['vote']} | {r['single']:.4f} | {r['honest']:.4f} | {r['mal1']:.4f} | {r['honest4']:.4f} | {r['mal2']:.4f} | {r['honest3']:.4f} | {r['mal2_nodrop']:.4f} |")
    base = lat["single_front"]
    lines += ["", "| digits, one-row requests | p50 ms | p95 ms | p50 / front with 1 replica | p95 / front with 1 replica | throughput req/s |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, label in (("single_direct", "one replica, directly"), ("single_front", "front, 1 replica"),
                        ("vote5_majority", "vote of 5, majority"), ("vote5_soft", "vote of 5, soft")):  # fmt: skip
        v = lat[name]
        rps = "-" if v["throughput_rps"] is None else f"{v['throughput_rps']:.0f}"
        lines.append(f"| {label} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['p50_ms'] / base['p50_ms']:.2f} | {v['p95_ms'] / base['p95_ms']:.2f} | {rps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="latency/throughput runs (medians reported)")
    parser.add_argument("--requests", type=int, default=300, help="one-row requests per latency run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        os.environ["SUANLI_HOME"] = str(work / "home")
        os.environ.pop("SUANLI_DB_URL", None)
        from suanli.api import Client

        client = Client()
        try:
            print("training the replicas' models ...", flush=True)
            digits, mnist = digits_split(), mnist_split()
            datasets = {
                "digits": (make_models(work / "digits", digits, 16.0), 64, digits[2], digits[3]),
                "mnist": (make_models(work / "mnist", mnist, 255.0), 784, mnist[2], mnist[3]),
            }
            print("accuracy ...", flush=True)
            acc = accuracy_part(client, work, datasets)
            print("latency and throughput ...", flush=True)
            lat = latency_part(client, work, datasets["digits"][0], 64, digits[2], args.runs, args.requests)
        finally:
            subprocess.run([sys.executable, "-m", "suanli", "agent", "stop"], capture_output=True, check=False)
    doc = {"accuracy": acc, "latency": lat, "runs": args.runs, "requests_per_run": args.requests, "batch_rows": BATCH,
           "cpus": os.cpu_count(), "wall_s": round(time.time() - started, 1)}  # fmt: skip
    tmp_json = RESULTS / ".serve.json.tmp"
    tmp_json.write_text(json.dumps(doc, indent=2))
    os.replace(tmp_json, RESULTS / "serve.json")
    plot(acc, lat)
    print()
    print(table(acc, lat))
    print(f"\n(wall {doc['wall_s']} s; results in benchmarks/results/serve.json and serve.png)")


if __name__ == "__main__":
    main()
