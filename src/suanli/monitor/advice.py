"""Right-sizing: what a job should ask for, from what its earlier runs used.

Memory: the highest peak of the last runs plus a margin (15%, the Kubernetes Vertical Pod Autoscaler's
default safety margin over its 90th-percentile target; the peak rather than a percentile, because a job
that passes its request is stopped). CPU: the most cores the runs kept busy on average, plus the same
margin, rounded up to whole cores. Advice is given when the request differs from it by more than a
quarter (within that, the difference is noise); it lowers a request only where the spec allows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MARGIN = 0.15
HISTORY_RUNS = 5
SLACK = 0.25  # a request within this share of the advice is left alone
MIB = 2**20


@dataclass(frozen=True)
class Advice:
    field: str  # resources.memory | resources.cpus
    requested: float
    recommended: float
    peak: float  # bytes for memory, cores for CPUs
    runs: int
    message: str

    def to_json(self) -> dict:
        unit = "bytes" if self.field == "resources.memory" else "cores"
        return {
            "field": self.field,
            f"requested_{unit}": self.requested,
            f"recommended_{unit}": self.recommended,
            f"peak_{unit}": self.peak,
            "runs": self.runs,
            "margin": MARGIN,
            "message": self.message,
        }


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / MIB:.0f} MiB"


def _runs(n: int) -> str:
    return "this job" if n == 1 else f"your last {n} runs of this job"


def memory_advice(requested_bytes: int, peaks: list[int], margin: float = MARGIN) -> Advice | None:
    """Advice on a memory request from measured peaks (None: no request, no history, or close enough)."""
    peaks = [p for p in peaks if p]
    if not requested_bytes or not peaks:
        return None
    peak = max(peaks)
    recommended = math.ceil(peak * (1 + margin) / MIB) * MIB
    if abs(requested_bytes - recommended) <= SLACK * recommended and requested_bytes >= peak:
        return None
    who = _runs(len(peaks))
    verb = "used at most" if len(peaks) == 1 else "peaked at"
    return Advice(
        "resources.memory",
        requested_bytes,
        recommended,
        peak,
        len(peaks),
        f"{who} {verb} {gib(peak)} of the {gib(requested_bytes)} it asked for; ask for {gib(recommended)}"
        f" (peak + {margin:.0%})",
    )


def cpu_advice(requested_cpus: float, cores_used: list[float], margin: float = MARGIN) -> Advice | None:
    """Advice on a CPU request from the mean cores each run kept busy."""
    cores_used = [c for c in cores_used if c is not None]
    if not requested_cpus or not cores_used:
        return None
    peak = max(cores_used)
    recommended = max(1.0, math.ceil(peak * (1 + margin)))
    if recommended >= requested_cpus * (1 - SLACK):
        return None
    return Advice(
        "resources.cpus",
        requested_cpus,
        recommended,
        peak,
        len(cores_used),
        f"{_runs(len(cores_used))} kept {peak:.1f} of its {requested_cpus:g} CPUs busy on average; "
        f"ask for {recommended:g}",
    )
