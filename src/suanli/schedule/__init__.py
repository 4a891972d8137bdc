"""Scheduling: the policy interface, placement, the policies, and the trace simulator."""

from suanli.schedule.placement import FreeSpace
from suanli.schedule.policies import DEFAULT_POLICY, POLICIES, get_policy
from suanli.schedule.policy import (
    ClusterState,
    Decisions,
    JobRequest,
    NodeState,
    Policy,
    Preempt,
    RunningJob,
    Slice,
    Start,
)

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "ClusterState",
    "Decisions",
    "FreeSpace",
    "JobRequest",
    "NodeState",
    "Policy",
    "Preempt",
    "RunningJob",
    "Slice",
    "Start",
    "get_policy",
]
