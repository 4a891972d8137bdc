"""Evaluate one candidate in its own process (`python -m suanli.compress.evaluate ...`): quality on the
validation and held-out splits, drift from the original's outputs, latency at batch 1, throughput at
batch 32, size and parameters. Running variants in the process that exported them has been seen to
corrupt the baseline, so the search never does."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from suanli.compress.data import Data, load_eval
from suanli.compress.models import Runner, model_bytes, read_manifest
from suanli.compress.tasks import cosines, measure


def outputs_for(runner: Runner, data: Data, batch: int = 64) -> np.ndarray:
    """Model outputs for a split: arrays for tensor data; (n, d) or (n, 2, d) embeddings for sentences."""
    if data.kind == "tensor":
        return np.concatenate([runner(data.x[i : i + batch]) for i in range(0, len(data.x), batch)])
    emb_a = np.concatenate([runner(data.a[i : i + batch]) for i in range(0, len(data.a), batch)])
    if data.b is None:
        return emb_a
    emb_b = np.concatenate([runner(data.b[i : i + batch]) for i in range(0, len(data.b), batch)])
    return np.stack([emb_a, emb_b], axis=1)


def timings(runner: Runner, data: Data, repeats: int) -> dict:
    """p50/p95 latency at batch 1 and p50 latency / throughput at batch 32, after warm-up."""
    rows = data.x if data.kind == "tensor" else data.a
    n = len(rows)

    def one(i: int) -> float:
        item = rows[i % n : i % n + 1]
        t = time.perf_counter()
        runner(item)
        return time.perf_counter() - t

    for i in range(5):
        one(i)
    single = np.array([one(i) for i in range(repeats)]) * 1000
    big = (
        rows[:32]
        if n >= 32
        else np.concatenate([rows] * (32 // n + 1))[:32]
        if data.kind == "tensor"
        else (list(rows) * (32 // n + 1))[:32]
    )
    for _ in range(2):
        runner(big)
    batch_times = []
    for _ in range(max(5, repeats // 3)):
        t = time.perf_counter()
        runner(big)
        batch_times.append(time.perf_counter() - t)
    p50_32 = float(np.median(batch_times)) * 1000
    return {
        "latency_b1_p50_ms": float(np.percentile(single, 50)),
        "latency_b1_p95_ms": float(np.percentile(single, 95)),
        "latency_b32_p50_ms": p50_32,
        "throughput_b32_per_s": 32 / (p50_32 / 1000),
    }


def evaluate(
    candidate: Path,
    data_file: Path,
    task: str,
    *,
    threads: int = 2,
    device: str = "cpu",
    repeats: int = 30,
    reference: Path | None = None,
    save_outputs: Path | None = None,
) -> dict:
    """Everything the report needs about one candidate (call it in a fresh process)."""
    val, hold = load_eval(data_file)
    runner = Runner(candidate, threads=threads, device=device)
    ref = dict(np.load(reference)) if reference is not None and Path(reference).exists() else {}
    result: dict = {}
    outs = {}
    for name, split in (("val", val), ("heldout", hold)):
        out = outputs_for(runner, split)
        outs[name] = out
        result[f"quality_{name}"] = measure(task, split, out, ref.get(name))
        if name in ref:
            cos = cosines(out, ref[name])
            result[f"cosine_mean_{name}"] = float(cos.mean())
            result[f"cosine_min_{name}"] = float(cos.min())
    if save_outputs is not None:
        np.savez(save_outputs, **outs)
    result.update(timings(runner, val, repeats))
    manifest = read_manifest(candidate)
    result["size_bytes"] = model_bytes(candidate)
    result["parameters"] = manifest.get("parameters")
    result["pid"] = os.getpid()
    return result


def run_evaluation(
    candidate: Path,
    data_file: Path,
    task: str,
    out: Path,
    *,
    threads: int = 2,
    device: str = "cpu",
    repeats: int = 30,
    reference: Path | None = None,
    save_outputs: Path | None = None,
    timeout: float = 1800,
) -> dict:
    """Evaluate in a fresh process limited to `threads` threads; returns its result or {'error': ...}."""
    cmd = [
        sys.executable,
        "-m",
        "suanli.compress.evaluate",
        str(candidate),
        "--data",
        str(data_file),
        "--task",
        task,
        "--threads",
        str(threads),
        "--device",
        device,
        "--repeats",
        str(repeats),
        "--out",
        str(out),
    ]
    if reference is not None:
        cmd += ["--reference", str(reference)]
    if save_outputs is not None:
        cmd += ["--save-outputs", str(save_outputs)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    src_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"evaluation timed out after {timeout:.0f} s"}
    if out.exists():
        return json.loads(out.read_text())
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    return {"error": f"evaluation process exited {proc.returncode}: " + " | ".join(tail)[:300]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate one compression candidate (run by suanli compress).")
    p.add_argument("candidate", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--reference", type=Path)
    p.add_argument("--save-outputs", type=Path)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    try:
        result = evaluate(
            a.candidate,
            a.data,
            a.task,
            threads=a.threads,
            device=a.device,
            repeats=a.repeats,
            reference=a.reference,
            save_outputs=a.save_outputs,
        )
    except Exception as e:
        traceback.print_exc()
        result = {
            "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
        }
    a.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
