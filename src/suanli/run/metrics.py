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

from suanli.store.store import MetricPoint, storable

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
        if isinstance(name, str) and 0 < len(name) <= MAX_NAME and number is not None and storable(name):
            out.append(MetricPoint(name, number, step, at))
    return out


class LogTail:
    """Reads new complete lines of a growing log file and returns the metric points in them; `commit`
    once they are stored moves past them (until then, `read` returns them again). A line longer than
    READ_BYTES is log output: it is skipped to its end, never read whole."""

    def __init__(self, path: Path, skip_points: int = 0) -> None:
        self.path = path
        self.offset = 0
        self.skip = skip_points
        self.in_long_line = False
        self._next: tuple[int, int, bool] | None = None

    def read(self) -> list[MetricPoint]:
        self._next = None
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read(READ_BYTES)
        except FileNotFoundError:
            return []
        start = 0
        if self.in_long_line:  # the rest of a long line, up to its newline, is not read for metrics
            newline = chunk.find(b"\n")
            if newline < 0:
                if chunk:
                    self._next = (self.offset + len(chunk), self.skip, True)
                return []
            start = newline + 1
        end = chunk.rfind(b"\n")
        if end < start:
            if start:  # the long line ended; what follows is not a complete line yet
                self._next = (self.offset + start, self.skip, False)
            elif len(chunk) == READ_BYTES:  # a line longer than a whole read
                self._next = (self.offset + len(chunk), self.skip, True)
            return []
        now = time.time()
        points = [
            p
            for line in chunk[start : end + 1].decode(errors="replace").splitlines()
            for p in parse_line(line, now)
        ]
        skip = self.skip
        if skip:
            dropped = min(skip, len(points))
            skip -= dropped
            points = points[dropped:]
        self._next = (self.offset + end + 1, skip, False)
        return points

    def commit(self) -> None:
        if self._next is not None:
            self.offset, self.skip, self.in_long_line = self._next
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
