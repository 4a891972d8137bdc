"""The demand file for portfolio planning: expected GPU-hours (and peak concurrency) per month.

```yaml
accelerator: H100
gpus_per_server: 8            # purchases and commitments come in whole servers (default 8)
spot_share: 0.2               # at most this share of a month's demand may run on spot (default 0)
months:                       # one entry per month, in order
  - {gpu_hours: 20000, peak_gpus: 48}
  - {gpu_hours: 26000, peak_gpus: 64}
```
or the compact form `monthly_gpu_hours: [...]` with `peak_gpus: [...]`. A horizon longer than the file
repeats the last month (stated in the assumptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.core.errors import BadInput, did_you_mean, read_text
from suanli.core.specfile import load_yaml_text

HOURS_PER_MONTH = 730.0
_KEYS = ("accelerator", "gpus_per_server", "spot_share", "months", "monthly_gpu_hours", "peak_gpus", "name")


@dataclass(frozen=True, slots=True)
class Demand:
    """Monthly GPU-hours and peak concurrent GPUs for one accelerator type."""

    accelerator: str
    gpu_hours: tuple[float, ...]
    peak_gpus: tuple[float, ...]
    gpus_per_server: int = 8
    spot_share: float = 0.0
    extended_from: int | None = None  # months given in the file when the horizon repeated the last one

    @property
    def months(self) -> int:
        return len(self.gpu_hours)

    def over(self, horizon_months: int) -> Demand:
        """The same demand cut or extended (repeating the last month) to `horizon_months`."""
        n = self.months
        if horizon_months <= n:
            return Demand(
                self.accelerator,
                self.gpu_hours[:horizon_months],
                self.peak_gpus[:horizon_months],
                self.gpus_per_server,
                self.spot_share,
            )
        pad = horizon_months - n
        return Demand(
            self.accelerator,
            self.gpu_hours + (self.gpu_hours[-1],) * pad,
            self.peak_gpus + (self.peak_gpus[-1],) * pad,
            self.gpus_per_server,
            self.spot_share,
            n,
        )


def _num(v: Any, field: str, src: str, *, positive: bool = False) -> float:
    """A number (20000, 20k, "20,000"), >= 0 (> 0 when `positive`), finite."""
    from suanli.core.units import parse_count

    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise BadInput(field, v, "must be a number", source=src)
    try:
        return parse_count(v, field, allow_zero=not positive)
    except BadInput as e:
        raise BadInput(e.field, e.value, e.allowed, source=src) from None


def demand_from_dict(d: dict[str, Any], src: str = "demand") -> Demand:
    """Validate a demand mapping (see the module docstring)."""
    from suanli.catalog.accelerators import canonical_accelerator

    if d is None:
        raise BadInput(
            "demand", "", "is empty: give accelerator and months (see docs/planner.md)", source=src
        )
    if not isinstance(d, dict):
        raise BadInput("demand", type(d).__name__, "must be a mapping", source=src)
    for k in d:
        if k not in _KEYS:
            raise BadInput(k, d[k], "is not a demand field", hint=did_you_mean(str(k), _KEYS), source=src)
    if "accelerator" not in d:
        raise BadInput("accelerator", None, "is required (the device the demand is for)", source=src)
    acc = canonical_accelerator(str(d["accelerator"]), field="accelerator")
    hours: list[float] = []
    peaks: list[float | None] = []
    if "months" in d:
        if not isinstance(d["months"], list) or not d["months"]:
            raise BadInput("months", d["months"], "must be a non-empty list", source=src)
        for i, m in enumerate(d["months"]):
            if not isinstance(m, dict) or "gpu_hours" not in m:
                raise BadInput(
                    f"months[{i}]", m, "must be a mapping with gpu_hours (and peak_gpus)", source=src
                )
            hours.append(_num(m["gpu_hours"], f"months[{i}].gpu_hours", src))
            peaks.append(
                _num(m["peak_gpus"], f"months[{i}].peak_gpus", src, positive=True)
                if "peak_gpus" in m
                else None
            )
    elif "monthly_gpu_hours" in d:
        raw = d["monthly_gpu_hours"]
        if not isinstance(raw, list) or not raw:
            raise BadInput("monthly_gpu_hours", raw, "must be a non-empty list", source=src)
        hours = [_num(x, f"monthly_gpu_hours[{i}]", src) for i, x in enumerate(raw)]
        pk = d.get("peak_gpus")
        if pk is None:
            peaks = [None] * len(hours)
        elif isinstance(pk, list) and len(pk) == len(hours):
            peaks = [_num(x, f"peak_gpus[{i}]", src, positive=True) for i, x in enumerate(pk)]
        else:
            raise BadInput(
                "peak_gpus", pk, f"must be a list of {len(hours)} numbers (one per month)", source=src
            )
    else:
        raise BadInput("months", None, "give `months:` or `monthly_gpu_hours:`", source=src)
    out_peaks = []
    for i, (h, p) in enumerate(zip(hours, peaks, strict=True)):
        flat = h / HOURS_PER_MONTH
        if p is None:
            p = max(flat, 1e-9)
        elif p + 1e-9 < flat:
            raise BadInput(
                f"months[{i}].peak_gpus",
                p,
                f"is below the month's average of {flat:.1f} GPUs ({h:g} GPU-hours / {HOURS_PER_MONTH:g} h)",
                source=src,
            )
        out_peaks.append(p)
    per = d.get("gpus_per_server", 8)
    if not isinstance(per, int) or per < 1:
        raise BadInput("gpus_per_server", per, "must be a whole number >= 1", source=src)
    share = _num(d.get("spot_share", 0.0), "spot_share", src)
    if share > 1:
        raise BadInput("spot_share", share, "must be in [0, 1]", source=src)
    return Demand(acc, tuple(hours), tuple(out_peaks), per, share)


def load_demand(path: Path | str) -> Demand:
    """Read and validate a demand YAML file."""

    p = Path(path)
    text = read_text(p, "demand")
    data = load_yaml_text(text, str(p))  # bounded: size, depth and aliases are checked first
    return demand_from_dict(data, p.name)
