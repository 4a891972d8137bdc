"""Job specs (validated YAML) and job states with their legal transitions."""

from suanli.jobs.spec import JobSpec, ResourcesSpec, load_spec, parse_spec
from suanli.jobs.states import TRANSITIONS, IllegalTransition, JobState, check_transition

__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "JobSpec",
    "JobState",
    "ResourcesSpec",
    "check_transition",
    "load_spec",
    "parse_spec",
]
