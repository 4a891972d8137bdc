"""The live scheduler's settings: SUANLI_HOME/scheduler.yaml (optional), SUANLI_POLICY overriding its
policy. The agent and `suanli queue` build the same policy object from it.

    policy: drf                  # any name `suanli simulate` knows; default: suanli's default policy
    options:                     # passed to the policy, e.g. DRF's guaranteed quotas and weights
      quotas: {team-a: 4, team-b: 4}
      weights: {team-a: 2}

Jobs name their user with `user:` and their team with `labels: {team: ...}`; priorities come from
`priority:`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suanli.core.errors import BadInput
from suanli.core.specfile import bad_input_from, read_yaml, with_line
from suanli.schedule.policies import DEFAULT_POLICY, get_policy
from suanli.schedule.policy import Policy
from suanli.store.paths import home

# In the live system a preemption costs a real checkpoint and restart (the simulator's default is 0, as
# in published simulators): the default policy does not preempt a job before it has run 10 x this.
LIVE_DEFAULTS: dict[str, dict[str, Any]] = {"suanli": {"preemption_cost_s": 30.0}}


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


def load_scheduler_config() -> SchedulerConfig:
    path = home() / "scheduler.yaml"
    config = SchedulerConfig()
    if path.exists():
        data, text = read_yaml(path, "scheduler config")
        try:
            config = SchedulerConfig.model_validate(data or {})
        except ValidationError as e:
            raise with_line(bad_input_from(e, SchedulerConfig, root="scheduler"), str(path), text) from None
    if os.environ.get("SUANLI_POLICY"):
        config = config.model_copy(update={"policy": os.environ["SUANLI_POLICY"]})
    return config


def make_policy(config: SchedulerConfig | None = None) -> Policy:
    config = config or load_scheduler_config()
    name = config.policy or DEFAULT_POLICY
    try:
        return get_policy(name, **{**LIVE_DEFAULTS.get(name, {}), **config.options})
    except TypeError as e:
        raise BadInput(
            "scheduler.options", config.options, f"do not fit policy {config.policy!r}: {e}"
        ) from None
