"""Scheduling policies, one module each, registered by name."""

from __future__ import annotations

from suanli.core.errors import BadInput, did_you_mean
from suanli.schedule.policies.fifo import Fifo
from suanli.schedule.policy import Policy

POLICIES: dict[str, type] = {Fifo.name: Fifo}
DEFAULT_POLICY = "fifo"


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
