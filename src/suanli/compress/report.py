"""The report: one JSON document (every candidate with size, parameters, latency, throughput, quality on
both splits, drift), table rows for the CLI, and a quality-versus-latency plot (matplotlib, lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from suanli.compress.spec import CompressOptions


def build_report(
    model: str, opts: CompressOptions, candidates: list[Any], chosen: Any, baseline: dict, out_dir: Path
) -> dict:
    """A JSON-ready summary; units are in the field names."""
    rows = [c.row() for c in candidates]
    orig = rows[0]
    for r in rows:
        if "error" in r:
            continue
        r["size_ratio"] = orig["size_bytes"] / max(r["size_bytes"], 1)
        r["speedup_b1_vs_original"] = orig["latency_b1_p50_ms"] / r["latency_b1_p50_ms"]
        r["speedup_b32_vs_original"] = r["throughput_b32_per_s"] / orig["throughput_b32_per_s"]
    chosen_row = next(r for r in rows if r["chosen"])
    return {
        "model": model,
        "task": opts.task,
        "budget": opts.budget.text,
        "budget_relative": opts.budget.relative,
        "budget_value": opts.budget.value,
        "target": opts.target,
        "objective": opts.objective,
        "threads": opts.threads,
        "baseline_quality_val": baseline["quality_val"],
        "baseline_quality_heldout": baseline["quality_heldout"],
        "chosen": chosen_row["name"],
        "chosen_candidate": chosen_row,
        "out_dir": str(out_dir),
        "model_dir": str(out_dir / "model"),
        "candidates": rows,
    }


def table_rows(report: dict) -> list[list[str]]:
    """Rows for a human table: name, size, params, p50/p95 b1, throughput b32, quality val/held-out, drift."""
    rows = []
    for r in report["candidates"]:
        if "error" in r:
            rows.append([r["name"], "-", "-", "-", "-", "-", "-", "-", "error: " + r["error"][:60]])
            continue
        cos = r.get("cosine_mean_heldout")
        status = (
            "chosen"
            if r["chosen"]
            else (
                "reference"
                if r["reference"]
                else ("holds" if r["holds_budget_val"] and r["holds_budget_heldout"] else "breaks budget")
            )
        )
        rows.append(
            [
                r["name"],
                _bytes(r["size_bytes"]),
                f"{r['parameters'] / 1e6:.2f}M" if r.get("parameters") else "-",
                f"{r['latency_b1_p50_ms']:.2f} / {r['latency_b1_p95_ms']:.2f}",
                f"{r['throughput_b32_per_s']:.0f}",
                f"{r['quality_val']:.4f}",
                f"{r['quality_heldout']:.4f}",
                "-" if cos is None else f"{cos:.4f} (min {r['cosine_min_heldout']:.3f})",
                status,
            ]
        )
    return rows


TABLE_HEADER = [
    "candidate",
    "size",
    "params",
    "b1 p50/p95 ms",
    "b32 /s",
    "quality val",
    "quality held-out",
    "cosine to original",
    "status",
]


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def plot_quality_latency(report: dict, path: Path) -> Path:
    """Held-out quality against batch-1 latency, the chosen point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in report["candidates"]:
        if "error" in r:
            continue
        x, y = r["latency_b1_p50_ms"], r["quality_heldout"]
        marker = "*" if r["chosen"] else ("s" if r["reference"] else "o")
        ax.scatter(
            [x],
            [y],
            marker=marker,
            s=200 if r["chosen"] else 40,
            color="tab:red" if r["chosen"] else ("black" if r["reference"] else "tab:blue"),
        )
        ax.annotate(r["name"], (x, y), fontsize=7, xytext=(4, 2), textcoords="offset points")
    base = report["baseline_quality_heldout"]
    floor = (
        base * (1 - report["budget_value"]) if report["budget_relative"] else base - report["budget_value"]
    )
    ax.axhline(floor, color="tab:red", linestyle="--", linewidth=0.8, label=f"budget {report['budget']}")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel("latency at batch 1, p50 (ms, log scale)")
    ax.set_ylabel(f"{report['task']} quality (held-out)")
    ax.set_title(f"suanli compress: budget {report['budget']}, chosen: {report['chosen']}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
