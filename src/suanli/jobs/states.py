"""Job states and the one place that says which transitions are legal.

PENDING    waiting in the queue for resources
RUNNING    an attempt's processes are running
SUCCEEDED  the last attempt exited 0                      (terminal)
FAILED     an attempt failed and no retries were left     (terminal)
CANCELLED  a user cancelled it                            (terminal)

A failed attempt with retries left, a preempted job and a job whose processes vanished while the
agent was down go RUNNING -> PENDING, with the reason recorded on the attempt and in the event log.
"""

from __future__ import annotations

from enum import StrEnum

from suanli.core.errors import SuanliError


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PENDING}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class IllegalTransition(SuanliError):
    pass


def check_transition(job_id: int, current: JobState, new: JobState) -> None:
    """Raise IllegalTransition unless current -> new is allowed."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"job {job_id}: {current} -> {new} is not a legal transition")
