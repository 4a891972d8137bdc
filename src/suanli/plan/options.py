"""Enumerate offers x instance counts x (estimator) layouts x modes into costed options.

The estimator is asked once per (accelerator, device count) and the answer is reused for every provider,
region and acquisition mode that offers that hardware, so planning cost grows with the number of
distinct devices, not with the number of catalog rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from suanli.catalog.offers import Offer
from suanli.core.errors import BadInput
from suanli.core.workload import WorkloadSpec
from suanli.plan import modes


@dataclass(slots=True)
class Estimate:
    """The estimator's answer for one (accelerator, device count), as the planner uses it."""

    wall_hours: float
    device_hours: float
    energy_kwh: float | None
    co2_kg: float | None
    layout: dict
    params: float
    memory_per_device_bytes: int
    mfu: float | None = None
    replicas: int | None = None  # serving
    tp: int | None = None  # serving


@dataclass(slots=True)
class Option:
    """One way to do the job: an offer, an instance count, a layout, a mode; its time, cost and risks."""

    provider: str
    instance_type: str
    accelerator: str
    instances: int
    devices: int
    mode: str
    layout: dict
    wall_hours: float
    cost_usd: float
    energy_kwh: float | None
    co2_kg: float | None
    price_usd_per_hour: float | None
    regions: tuple[str, ...]
    source: str
    date: str
    risk: list[str]
    p_miss: float | None = None
    breakdown: dict[str, float] = field(default_factory=dict)
    checkpoint_interval_hours: float | None = None
    meets_deadline: bool = True
    within_budget: bool = True
    pareto: bool = False

    @property
    def feasible(self) -> bool:
        return self.meets_deadline and self.within_budget

    def label(self) -> str:
        what = f"{self.devices}x {self.accelerator}, {self.mode}"
        return f"{self.provider} {self.instances}x {self.instance_type} ({what})"

    def to_json(self) -> dict:
        return {
            "provider": self.provider,
            "instance_type": self.instance_type,
            "accelerator": self.accelerator,
            "instances": self.instances,
            "devices": self.devices,
            "mode": self.mode,
            "layout": self.layout,
            "wall_hours": self.wall_hours,
            "wall_days": self.wall_hours / 24,
            "cost_usd": self.cost_usd,
            "energy_kwh": self.energy_kwh,
            "co2_kg": self.co2_kg,
            "pareto": self.pareto,
            "price_usd_per_hour": self.price_usd_per_hour,
            "regions": list(self.regions),
            "p_miss_deadline": self.p_miss,
            "checkpoint_interval_hours": self.checkpoint_interval_hours,
            "cost_breakdown_usd": self.breakdown,
            "meets_deadline": self.meets_deadline,
            "within_budget": self.within_budget,
            "risk": self.risk,
            "source": self.source,
            "date": self.date,
        }


class Estimator:
    """Memoised estimator calls: one per (accelerator, device count); failures are remembered too."""

    def __init__(self, wl: WorkloadSpec, pue: float, region: str, grid: float | None) -> None:
        self.wl = wl
        self.energy = {"pue": pue, "region": region, "grid_gco2_per_kwh": grid}
        self.cache: dict[tuple[str, int], Estimate | None] = {}
        self.reasons: dict[str, str] = {}
        self.calls = 0
        self.twins: dict[str, str] = {}
        self.min_fit: dict[str, int] = {}

    def _twin(self, acc: str) -> str:
        """Devices with identical sourced figures (H100 / H100-SXM) share one estimate."""
        if acc not in self.twins:
            from suanli.catalog.accelerators import accelerator_specs

            spec = {s.name: s for s in accelerator_specs()}.get(acc)
            self.twins[acc] = acc
            if spec is not None:
                figures = _figures(spec)
                for other in accelerator_specs():
                    if _figures(other) == figures:
                        self.twins[acc] = other.name
                        break
        return self.twins[acc]

    def train(self, acc: str, devices: int) -> Estimate | None:
        acc = self._twin(acc)
        key = (acc, devices)
        if key in self.cache:
            return self.cache[key]
        if devices < self.min_fit.get(acc, 0):
            return None
        from suanli.estimate.train import estimate_train

        self.calls += 1
        try:
            e = estimate_train(accelerator=acc, count=devices, **self.energy, **self.wl.args)
        except BadInput as err:
            self._fail(acc, devices, err)
            m = re.search(r"smallest device count that fits: (\d+)", str(err))
            if m:
                self.min_fit[acc] = int(m.group(1))
            return None
        out = Estimate(
            e.wall_hours,
            e.device_hours,
            e.energy_kwh,
            e.co2_kg,
            e.layout,
            float(e.params),
            e.memory_per_device_bytes,
            e.mfu,
        )
        self.cache[key] = out
        return out

    def infer(self, acc: str, tp: int) -> tuple[float, Any] | None:
        """(decode tokens/s of one replica, the estimate) on `tp` devices, or None when it does not fit."""
        key = (acc, -tp)
        if key in self.cache:
            return self.cache[key]  # type: ignore[return-value]
        from suanli.estimate.infer import estimate_infer

        self.calls += 1
        try:
            e = estimate_infer(accelerator=acc, count=tp, **self.wl.args)
        except BadInput as err:
            self._fail(acc, tp, err)
            return None
        out = (e.decode_tokens_per_second, e)
        self.cache[key] = out  # type: ignore[assignment]
        return out

    def _fail(self, acc: str, devices: int, err: BadInput) -> None:
        self.cache[(acc, devices)] = None
        if err.field in ("accelerator", "precision"):
            self.reasons.setdefault(acc, str(err))
        else:
            self.reasons.setdefault(f"{acc} x{devices}", str(err))


def _figures(spec: Any) -> tuple:
    return (
        spec.generation,
        tuple(sorted(spec.peak_flops.items())),
        spec.memory_bytes,
        spec.memory_bw,
        spec.intra_node_bw,
        spec.inter_node_bw,
        spec.tdp_w,
        spec.devices_per_node,
    )


def instance_counts(per_instance: int, max_devices: int) -> list[int]:
    """Instance counts tried: powers of two while the devices stay within `max_devices`."""
    out, n = [], 1
    while n * per_instance <= max_devices:
        out.append(n)
        n *= 2
    return out


def enumerate_options(
    wl: WorkloadSpec,
    offers: list[Offer],
    est: Estimator,
    settings: modes.ModelSettings,
    *,
    max_devices: int,
    min_devices: int = 1,
) -> list[Option]:
    """Every (offer, instance count) the estimator can run, costed in the offer's mode."""
    out: list[Option] = []
    for o in offers:
        g = o.accelerator_count
        if wl.kind == "train":
            for n in instance_counts(g, max_devices):
                if n * g < min_devices:
                    continue
                e = est.train(o.accelerator, n * g)
                if e is None:
                    continue
                out.append(_option(o, n, e, e.wall_hours, settings, est))
        else:
            assert wl.tokens_per_second and wl.duration_hours
            best: Option | None = None
            tp = 1
            while tp <= g:
                got = est.infer(o.accelerator, tp)
                tp_now, tp = tp, tp * 2
                if got is None or got[0] <= 0:
                    continue
                tps, ie = got
                replicas = math.ceil(wl.tokens_per_second / tps)
                n = math.ceil(replicas / (g // tp_now))
                if n * g > max_devices:
                    continue
                e = _serving_estimate(ie, n * g, wl.duration_hours, est, replicas, tp_now)
                opt = _option(o, n, e, wl.duration_hours, settings, est)
                if best is None or opt.cost_usd < best.cost_usd:
                    best = opt
            if best is not None:
                out.append(best)
    return out


def _serving_estimate(
    ie: Any, devices: int, hours: float, est: Estimator, replicas: int, tp: int
) -> Estimate:
    from suanli.catalog.accelerators import accelerator_spec
    from suanli.estimate import energy as en

    spec = accelerator_spec(ie.accelerator)
    kwh = co2 = None
    if spec.tdp_w is not None:
        kwh = en.energy_kwh(devices * hours, spec.tdp_w, est.energy["pue"])
        g, _ = en.grid_intensity(est.energy["region"], est.energy["grid_gco2_per_kwh"])
        co2 = kwh * g / 1000
    layout = {"tp": tp, "replicas": replicas, "batch": ie.batch, "count": devices}
    return Estimate(
        hours,
        devices * hours,
        kwh,
        co2,
        layout,
        float(ie.params),
        ie.memory_per_device_bytes,
        replicas=replicas,
        tp=tp,
    )


def _option(o: Offer, n: int, e: Estimate, hours: float, s: modes.ModelSettings, est: Estimator) -> Option:
    mc = modes.cost(o, n, hours, s, params=e.params, energy_kwh=e.energy_kwh, est_pue=est.energy["pue"])
    if mc is None:
        return Option(
            o.provider,
            o.instance_type,
            o.accelerator,
            n,
            n * o.accelerator_count,
            o.mode,
            e.layout,
            math.inf,
            math.inf,
            None,
            None,
            o.price_usd_per_hour,
            o.regions,
            o.source,
            o.date,
            ["spot: interrupted faster than it can make progress"],
            meets_deadline=False,
        )
    scale = mc.wall_hours / hours if hours > 0 else 1.0
    energy = None if e.energy_kwh is None else e.energy_kwh * scale
    co2 = None if e.co2_kg is None else e.co2_kg * scale
    if energy is not None and o.pue is not None:
        energy, co2 = energy * o.pue / est.energy["pue"], (co2 or 0.0) * o.pue / est.energy["pue"]
    return Option(
        provider=o.provider,
        instance_type=o.instance_type,
        accelerator=o.accelerator,
        instances=n,
        devices=n * o.accelerator_count,
        mode=o.mode,
        layout=e.layout,
        wall_hours=mc.wall_hours,
        cost_usd=mc.cost_usd,
        energy_kwh=energy,
        co2_kg=co2,
        price_usd_per_hour=o.price_usd_per_hour,
        regions=o.regions,
        source=o.source,
        date=o.date,
        risk=mc.risk,
        p_miss=mc.p_miss,
        breakdown=mc.breakdown,
        checkpoint_interval_hours=mc.checkpoint_interval_hours,
    )
