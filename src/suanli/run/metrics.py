"""Metrics a job prints on stdout as JSON lines, read incrementally from its log.

Accepted lines (anything else is ordinary log output):
    {"metric": "loss", "value": 0.31, "step": 100}
    {"metrics": {"loss": 0.31, "accuracy": 0.9}, "step": 100}

A value must be a finite number (as a double); a step an integer within 32 bits (else the point is
kept without its step); a name at most MAX_NAME characters. A line never fails the lines read with it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from suanli.store.store import MetricPoint

MAX_NAME = 255  # the store's column
MAX_LINE = 64 * 1024  # longer lines are log output, never metrics
READ_BYTES = 1 << 20  # a tick reads at most this much of a log: memory stays flat whatever a job prints
_MAX_STEP = 2**31 - 1  # the store's integer column (32 bits in PostgreSQL)


def _step(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    step = int(value)
    return step if -_MAX_STEP <= step <= _MAX_STEP else None


def _value(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # a 400-digit integer does not fit a double
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_line(line: str, at: float) -> list[MetricPoint]:
    line = line.strip()
    if len(line) > MAX_LINE or not (line.startswith("{") and line.endswith("}") and '"metric' in line):
        return []
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return []
    if not isinstance(obj, dict):
        return []
    step = _step(obj.get("step"))
    pairs: list[tuple[object, object]] = []
    if "metric" in obj and "value" in obj:
        pairs.append((obj["metric"], obj["value"]))
    if isinstance(obj.get("metrics"), dict):
        pairs.extend(obj["metrics"].items())
    out = []
    for name, value in pairs:
        number = _value(value)
        if isinstance(name, str) and 0 < len(name) <= MAX_NAME and number is not None:
            out.append(MetricPoint(name, number, step, at))
    return out


class LogTail:
    """Reads new complete lines of a growing log file and returns the metric points in them; `commit`
    once they are stored moves past them (until then, `read` returns them again)."""

    def __init__(self, path: Path, skip_points: int = 0) -> None:
        self.path = path
        self.offset = 0
        self.skip = skip_points
        self._next: tuple[int, int] | None = None

    def read(self) -> list[MetricPoint]:
        self._next = None
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read(READ_BYTES)
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) == READ_BYTES:  # one huge line: log output, not a metric; skip it
                self._next = (self.offset + len(chunk), self.skip)
            return []
        now = time.time()
        points = [
            p
            for line in chunk[: end + 1].decode(errors="replace").splitlines()
            for p in parse_line(line, now)
        ]
        skip = self.skip
        if skip:
            dropped = min(skip, len(points))
            skip -= dropped
            points = points[dropped:]
        self._next = (self.offset + end + 1, skip)
        return points

    def commit(self) -> None:
        if self._next is not None:
            self.offset, self.skip = self._next
            self._next = None


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
