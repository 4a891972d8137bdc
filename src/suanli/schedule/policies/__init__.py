"""Scheduling policies, one module each, registered by name."""

from __future__ import annotations

from suanli.core.errors import BadInput, did_you_mean
from suanli.schedule.policies.backfill import EasyBackfill
from suanli.schedule.policies.drf import DominantResourceFair
from suanli.schedule.policies.fifo import Fifo
from suanli.schedule.policies.gavel import HeterogeneityAware
from suanli.schedule.policies.priority import StrictPriority
from suanli.schedule.policies.sjf import Sjf, SjfOracle
from suanli.schedule.policies.srtf import Srtf, SrtfOracle
from suanli.schedule.policies.suanli import Suanli
from suanli.schedule.policies.tiresias import Tiresias
from suanli.schedule.policy import Policy

POLICIES: dict[str, type] = {
    p.name: p
    for p in (
        Fifo,
        EasyBackfill,
        Sjf,
        SjfOracle,
        Srtf,
        SrtfOracle,
        Tiresias,
        DominantResourceFair,
        StrictPriority,
        HeterogeneityAware,
        Suanli,
    )
}
DEFAULT_POLICY = "suanli"


def get_policy(name: str | None = None, **options: object) -> Policy:
    """The policy registered as `name` (the default policy when None)."""
    key = name or DEFAULT_POLICY
    if key not in POLICIES:
        raise BadInput(
            "policy",
            key,
            f"must be one of {', '.join(sorted(POLICIES))}",
            hint=did_you_mean(key, POLICIES),
        )
    return POLICIES[key](**options)
