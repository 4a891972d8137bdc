"""Metrics a job prints on stdout as JSON lines, read incrementally from its log.

Accepted lines (anything else is ordinary log output):
    {"metric": "loss", "value": 0.31, "step": 100}
    {"metrics": {"loss": 0.31, "accuracy": 0.9}, "step": 100}
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from suanli.store.store import MetricPoint


def parse_line(line: str, at: float) -> list[MetricPoint]:
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}") and '"metric' in line):
        return []
    try:
        obj = json.loads(line)
    except ValueError:
        return []
    if not isinstance(obj, dict):
        return []
    step = obj.get("step")
    step = int(step) if isinstance(step, int | float) and not isinstance(step, bool) else None
    pairs: list[tuple[object, object]] = []
    if "metric" in obj and "value" in obj:
        pairs.append((obj["metric"], obj["value"]))
    if isinstance(obj.get("metrics"), dict):
        pairs.extend(obj["metrics"].items())
    out = []
    for name, value in pairs:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(name, str) and number and math.isfinite(value):
            out.append(MetricPoint(name, float(value), step, at))
    return out


class LogTail:
    """Reads new complete lines of a growing log file and returns the metric points in them."""

    def __init__(self, path: Path, skip_points: int = 0) -> None:
        self.path = path
        self.offset = 0
        self.skip = skip_points

    def read(self) -> list[MetricPoint]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        now = time.time()
        points = [
            p
            for line in chunk[: end + 1].decode(errors="replace").splitlines()
            for p in parse_line(line, now)
        ]
        if self.skip:
            dropped = min(self.skip, len(points))
            self.skip -= dropped
            points = points[dropped:]
        return points


def tail_text(path: Path, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last lines of a log, for failure reasons."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
