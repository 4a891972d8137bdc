"""What held compute costs, per hour: one price model for quotas, reports, alerts and the exporter.

A GPU-hour costs the owned-hardware rate of the planner (purchase over depreciation, hosting, power at
full use) when the shipped catalog has an owned offer for that accelerator, else the cheapest on-demand
price per GPU in the catalog: a pool is hardware the team has, priced as what it would otherwise rent.
A GPU's price covers its share of the host (CPUs, memory). A CPU-only job's core-hour is priced at
CPU_USD_PER_CORE_HOUR below.
"""

from __future__ import annotations

import functools

# Nebius cpu-d3 (4 vCPU, 16 GiB) at $0.0992/h in eu-north1, SkyPilot catalog v7 nebius/vms.csv, read
# 2026-12-03: $0.0248 per vCPU-hour, memory included. The shipped catalog holds GPU offers only.
CPU_USD_PER_CORE_HOUR = 0.0992 / 4
CPU_PRICE_SOURCE = "Nebius cpu-d3 4 vCPU/16 GiB $0.0992/h (SkyPilot catalog v7, 2026-12-03)"


@functools.cache
def gpu_price_usd_per_hour(accelerator: str | None) -> float:
    """What one GPU-hour of `accelerator` costs (see the module's note); 0 for no or an unknown GPU."""
    if not accelerator:
        return 0.0
    from suanli.catalog.accelerators import accelerator_spec
    from suanli.catalog.offers import shipped_offers
    from suanli.plan.modes import owned_hourly

    offers = [o for o in shipped_offers() if o.accelerator == accelerator]
    owned = [o for o in offers if o.mode == "owned"]
    if owned:
        o = owned[0]
        spec = accelerator_spec(accelerator) if o.power_w is None else None
        fixed, power = owned_hourly(o, (spec.tdp_w * o.accelerator_count) if spec and spec.tdp_w else None)
        return (fixed + power) / o.accelerator_count
    rented = [
        o.price_usd_per_hour / o.accelerator_count
        for o in offers
        if o.mode == "on-demand" and o.price_usd_per_hour
    ]
    return min(rented, default=0.0)


def hourly_usd(gpus: int, accelerator: str | None, cpus: float) -> float:
    """The price of holding `gpus` x `accelerator` (or, with none, `cpus` cores) for an hour."""
    if gpus:
        return gpus * gpu_price_usd_per_hour(accelerator)
    return cpus * CPU_USD_PER_CORE_HOUR


@functools.cache
def gpu_tdp_w(accelerator: str | None) -> float | None:
    """The accelerator's board power from the catalog (for an energy bound when NVML cannot say)."""
    if not accelerator:
        return None
    from suanli.catalog.accelerators import accelerator_spec

    try:
        return accelerator_spec(accelerator).tdp_w
    except Exception:
        return None
