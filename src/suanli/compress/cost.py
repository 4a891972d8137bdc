"""The inference cost of a compressed model beside its original, from what `suanli compress` measured
on the target (not modelled): latency, throughput, size, and the price of a million inferences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suanli.core.errors import BadInput

FIELDS = (
    "parameters", "size_bytes", "latency_b1_p50_ms", "latency_b1_p95_ms", "throughput_b32_per_s",
    "quality_heldout",
)  # fmt: skip


def _side(row: dict, price_per_hour: float | None) -> dict[str, Any]:
    side = {"name": row["name"], **{k: row.get(k) for k in FIELDS}}
    per_hour = row["throughput_b32_per_s"] * 3600
    side["inferences_per_hour_b32"] = per_hour
    side["cost_per_million_inferences_usd"] = (
        None if price_per_hour is None else price_per_hour / per_hour * 1e6
    )
    return side


def inference_cost(out_dir: str | Path, price_per_hour: float | None = None) -> dict[str, Any]:
    """Original vs compressed from OUT/report.json; `price_per_hour` is the target machine's USD/hour."""
    path = Path(out_dir) / "report.json"
    try:
        report = json.loads(path.read_text())
        rows = report["candidates"]
        original = next(r for r in rows if r.get("reference"))
        chosen = report["chosen_candidate"]
    except (FileNotFoundError, NotADirectoryError):
        raise BadInput(
            "--compressed", str(out_dir), "must be an output directory of `suanli compress`"
        ) from None
    except (ValueError, KeyError, StopIteration):
        raise BadInput("--compressed", str(path), "is not a `suanli compress` report") from None
    if price_per_hour is not None and not price_per_hour > 0:
        raise BadInput("--price", price_per_hour, "must be a price per hour > 0")
    a, b = _side(original, price_per_hour), _side(chosen, price_per_hour)
    return {
        "model": report["model"],
        "target": report["target"],
        "threads": report["threads"],
        "task": report["task"],
        "original": a,
        "compressed": b,
        "size_ratio": a["size_bytes"] / b["size_bytes"],
        "latency_b1_speedup": a["latency_b1_p50_ms"] / b["latency_b1_p50_ms"],
        "throughput_b32_speedup": b["throughput_b32_per_s"] / a["throughput_b32_per_s"],
        "price_per_hour_usd": price_per_hour,
        "assumptions": [
            f"measured by suanli compress on {report['target']} with {report['threads']} threads",
            "cost per inference at batch 32 throughput on one machine at the given hourly price",
        ],
    }
