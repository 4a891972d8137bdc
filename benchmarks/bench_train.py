"""Distributed-training figures: suanli.train against a plain PyTorch DDP loop, communication bytes
with and without compression (with the final accuracy of each), and the time one worker failure costs.

    python benchmarks/bench_train.py [--repeats 5]

Everything runs on this machine's CPUs with gloo: two worker processes per run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suanli import Client

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER = r"""
import os, sys, time, json
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, DistributedSampler
sys.path.insert(0, sys.argv[3])
from train import DigitsCNN, load_data
variant, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(1)
x, _, y, _ = load_data(0)
data = TensorDataset(x[:1408], y[:1408])
model = DigitsCNN()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
loss_fn = nn.CrossEntropyLoss()
if variant == "plain":
    dist.init_process_group("gloo")
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    model = nn.parallel.DistributedDataParallel(model)
    epochs = iter(range(10**6))
    def next_epoch():
        sampler.set_epoch(next(epochs))
else:
    import suanli.train as st
    loader = DataLoader(data, batch_size=32, shuffle=True)
    model, opt, loader = st.prepare(model, opt, loader)
    epochs = st.epochs(10**6)
    def next_epoch():
        next(epochs)
done, started = 0, None
while done < steps:
    next_epoch()
    for xb, yb in loader:
        if done == 20:
            started = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
        done += 1
        if done == steps:
            break
rate = (steps - 20) / (time.perf_counter() - started)
if int(os.environ["RANK"]) == 0:
    print(json.dumps({"steps_per_second": rate}))
dist.barrier()
dist.destroy_process_group()
"""


def steps_per_second(variant: str, steps: int) -> float:
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, variant, str(steps), str(EXAMPLES / "digits")],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    out = [p.communicate()[0] for p in procs]
    return json.loads(out[0].strip().splitlines()[-1])["steps_per_second"]


def run_job(client, compression: str, extra: str = "", retries: int = 0, local_sgd: int = 0) -> dict:
    from suanli.jobs import parse_spec

    spec = parse_spec({
        "name": f"bench-{compression}", "workdir": str(EXAMPLES), "num_workers": 2, "retries": retries,
        "resources": {"cpus": 2},
        "train": {"gradient_compression": compression, "powersgd_rank": 2, "local_sgd_steps": local_sgd},
        "run": f"python digits-ddp/train.py --epochs 12 {extra}",
    })  # fmt: skip
    job_id = client.submit(spec)
    record = client.wait(job_id, timeout_s=900)
    return record.to_json() | {"events": [e.to_json() for e in client.events(job_id)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=220)
    parser.add_argument("--parts", default="speed,comm,failure", help="which tables to print")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "speed" in parts:
        speed(args)
    if parts & {"comm", "failure"}:
        jobs(parts)


def speed(args: argparse.Namespace) -> None:
    plain, ours = [], []
    for _ in range(args.repeats):  # alternate, so drift in machine load hits both alike
        plain.append(steps_per_second("plain", args.steps))
        ours.append(steps_per_second("suanli", args.steps))
    p, s = statistics.median(plain), statistics.median(ours)
    print("steps/s, digits CNN, 2 workers x 1 thread, gloo, batch 32 per worker")
    print(f"  plain DDP loop   {p:8.1f}   (runs: {', '.join(f'{v:.1f}' for v in plain)})")
    print(f"  suanli.train     {s:8.1f}   (runs: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"  ratio            {s / p:8.3f}   (goal: within 3%, i.e. >= 0.970)")


def jobs(parts: set[str]) -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["SUANLI_HOME"] = home
        from suanli import Client

        client = Client()
        if "comm" in parts:
            comm(client)
        if "failure" in parts:
            failure(client)
        from suanli.run.control import stop_agent

        stop_agent()


def comm(client: Client) -> None:
    print("\ncommunication per optimizer step (steady state), digits-ddp 12 epochs, 2 workers")
    print(f"  {'variant':<22}{'bytes/step':>12}{'vs none':>9}{'total bytes':>14}{'test acc':>10}")
    base = None
    variants = [("none", "none", 0), ("bf16", "bf16", 0), ("powersgd rank 2", "powersgd", 0),
                ("local SGD, k=4", "none", 4)]  # fmt: skip
    for name, comp, local in variants:
        doc = run_job(client, comp, local_sgd=local)
        m = doc["metrics"]
        per = m["comm_bytes_mean_per_step"] if local else m["comm_bytes_per_step"]
        base = base or per
        print(f"  {name:<22}{per:>12,.0f}{base / per:>8.1f}x{m['comm_bytes_total']:>14,.0f}"
              f"{m['test_accuracy']:>10.4f}")  # fmt: skip


def failure(client: Client) -> None:
    clean = run_job(client, "none")
    failed = run_job(client, "none", extra="--fail-at-epoch 6 --fail-rank 1", retries=1)
    a1, a2 = failed["attempts"]
    from datetime import datetime

    def ts(iso: str) -> float:
        return datetime.fromisoformat(iso).timestamp()

    lost = failed["wall_seconds"] - clean["wall_seconds"]
    restart = ts(a2["start"]) - ts(a1["end"])
    print("\none injected worker failure (SIGKILL to worker 1 halfway through epoch 6 of 12)")
    print(f"  uninterrupted run        {clean['wall_seconds']:7.1f} s")
    print(f"  run with the failure     {failed['wall_seconds']:7.1f} s  -> {lost:.1f} s lost")
    print(f"  failure recorded -> new attempt started   {restart:.2f} s (agent reaction)")
    print("  the rest: the new workers' start (Python + torch import, process group) and replaying")
    print("  half an epoch since the last checkpoint (checkpoints every epoch)")
    print(f"  final accuracy: clean {clean['metrics']['test_accuracy']:.4f}, "
          f"resumed {failed['metrics']['test_accuracy']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
