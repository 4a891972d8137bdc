"""Alert rules and notifiers: SUANLI_HOME/alerts.yaml over the defaults below.

    sample_interval: 5s          # how often every running attempt is sampled
    rules:
      - name: gpu-idle           # a default's name replaces that default; a new name adds a rule
        kind: idle               # idle | stalled | memory | overdue | cost | project_cost | node_lost
        threshold: 0.05
        window: 30m
        action: cancel           # notify (default) | cancel | requeue
        grace: 10m               # cancel/requeue this long after the alert opened, if it still holds
      - name: memory
        enabled: false
    notifiers:
      - webhook: https://hooks.example.com/T000/B000
        headers: {Authorization: "Bearer ..."}
        send_resolved: false

Every alert also goes to the agent's log. What each kind measures is in docs/monitoring.md.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from suanli.core.errors import BadInput
from suanli.core.specfile import bad_input_from, read_yaml, with_line
from suanli.core.units import parse_duration
from suanli.store.paths import home

KINDS = ("idle", "stalled", "memory", "overdue", "cost", "project_cost", "node_lost")
ACTIONS = ("notify", "cancel", "requeue")
DEFAULT_SAMPLE_INTERVAL_S = 5.0
# threshold: (default, low, high, low excluded, what it means)
THRESHOLDS: dict[str, tuple[float | None, float, float, bool, str]] = {
    "idle": (0.05, 0.0, 1.0, False, "a utilisation ratio 0-1 of what the job holds"),
    "stalled": (0.02, 0.0, 1.0, False, "a utilisation ratio 0-1 counted as no work"),
    "memory": (0.9, 0.0, 1.0, True, "a fraction 0-1 of the memory the job requested"),
    "overdue": (2.0, 1.0, math.inf, False, "a factor >= 1 of the job's expected_duration"),
    "cost": (None, 0.0, math.inf, True, "US dollars > 0 per job"),
    "project_cost": (None, 0.0, math.inf, True, "unused: give `budgets`"),
    "node_lost": (None, 0.0, math.inf, False, "unused"),
}
DEFAULT_WINDOWS = {"idle": 1800.0, "stalled": 1800.0}


def _duration(value: object, field: str, *, zero: bool = True) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0 and zero:
        return 0.0
    if isinstance(value, str) and value.strip() in ("0", "0s") and zero:
        return 0.0
    try:
        seconds = parse_duration(value, field)  # type: ignore[arg-type]
    except (BadInput, OverflowError):
        raise ValueError(
            f'must be a duration {">= 0" if zero else "> 0"} such as 30, "90s" or "30m"'
        ) from None
    if not math.isfinite(seconds):
        raise ValueError("must be finite")
    return seconds


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    kind: Literal["idle", "stalled", "memory", "overdue", "cost", "project_cost", "node_lost"]
    threshold: float | None = None
    window_s: float = Field(0.0, alias="window")
    action: Literal["notify", "cancel", "requeue"] = "notify"
    grace_s: float = Field(0.0, alias="grace")
    enabled: bool = True
    budgets: dict[str, float] = Field(default_factory=dict)  # project_cost: project -> USD per period
    period: Literal["day", "week", "month"] = "month"

    @field_validator("window_s", "grace_s", mode="before")
    @classmethod
    def _durations(cls, v: object) -> float:
        return _duration(v, "window")

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")
        if v is None or kind is None:
            return v
        _, lo, hi, lo_open, meaning = THRESHOLDS[kind]
        if not math.isfinite(v) or v < lo or (lo_open and v == lo) or v > hi:
            raise ValueError(f"is out of range: the {kind} threshold is {meaning}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: dict[str, float]) -> dict[str, float]:
        for project, usd in v.items():
            if not (math.isfinite(usd) and usd > 0):
                raise ValueError(f"budget of {project} must be US dollars > 0")
        return v

    @model_validator(mode="after")
    def _by_kind(self) -> Rule:
        if self.threshold is None:
            self.threshold = THRESHOLDS[self.kind][0]
        if self.kind == "cost" and self.threshold is None:
            raise ValueError("a cost rule needs a threshold: US dollars per job")
        if self.kind == "project_cost" and not self.budgets:
            raise ValueError("a project_cost rule needs budgets: {project: US dollars per period}")
        if self.kind in DEFAULT_WINDOWS and self.window_s == 0:
            self.window_s = DEFAULT_WINDOWS[self.kind]
        if self.action != "notify" and self.kind in ("project_cost", "node_lost"):
            raise ValueError(f"action={self.action}: a {self.kind} alert is not about one job; only notify")
        return self

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "threshold": self.threshold,
            "window_s": self.window_s,
            "action": self.action,
            "grace_s": self.grace_s,
            "enabled": self.enabled,
            **({"budgets": self.budgets, "period": self.period} if self.kind == "project_cost" else {}),
        }


class Notifier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook: str
    headers: dict[str, str] = Field(default_factory=dict)
    send_resolved: bool = False
    timeout: float = Field(5.0, gt=0, le=60)

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: str) -> str:
        if (
            not (v.startswith("http://") or v.startswith("https://"))
            or len(v) > 2000
            or any(c.isspace() for c in v)
        ):
            raise ValueError("must be an http:// or https:// URL")
        return v

    def shown(self) -> str:
        """The URL without its path and query: a webhook's path is often its secret."""
        scheme, _, rest = self.webhook.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}/***"


DEFAULT_RULES = (
    Rule(name="idle", kind="idle"),
    Rule(name="stalled", kind="stalled"),
    Rule(name="memory", kind="memory"),
    Rule(name="overdue", kind="overdue"),
    Rule(name="node_lost", kind="node_lost"),
)


class MonitorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sample_interval_s: float = Field(DEFAULT_SAMPLE_INTERVAL_S, alias="sample_interval")
    rules: list[Rule] = Field(default_factory=lambda: list(DEFAULT_RULES))
    notifiers: list[Notifier] = Field(default_factory=list)

    @field_validator("sample_interval_s", mode="before")
    @classmethod
    def _interval(cls, v: object) -> float:
        seconds = _duration(v, "sample_interval")
        if seconds and seconds < 0.1:
            raise ValueError("must be 0 (no sampling) or at least 0.1 s")
        return seconds

    @field_validator("rules", mode="before")
    @classmethod
    def _over_defaults(cls, v: object) -> object:
        """A rule named like a default is merged into it; the defaults not named stay."""
        if not isinstance(v, list):
            return v
        defaults = {r.name: r for r in DEFAULT_RULES}
        out: list[object] = []
        named = set()
        for item in v:
            if isinstance(item, dict) and item.get("name") in defaults:
                base = defaults[item["name"]].model_dump(by_alias=True, exclude={"threshold"})
                if "kind" in item and item["kind"] != base["kind"]:
                    base = {"name": item["name"]}
                out.append({**base, **item})
                named.add(item["name"])
            else:
                out.append(item)
        out.extend(r for name, r in defaults.items() if name not in named)
        return out

    @model_validator(mode="after")
    def _unique(self) -> MonitorConfig:
        seen = set()
        for r in self.rules:
            if r.name in seen:
                raise ValueError(f"two rules are named {r.name}; names must be unique")
            seen.add(r.name)
        return self

    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def to_json(self) -> dict:
        return {
            "sample_interval_s": self.sample_interval_s,
            "rules": [r.to_json() for r in self.rules],
            "notifiers": [{"webhook": n.shown(), "send_resolved": n.send_resolved} for n in self.notifiers],
        }


def config_path():
    return home() / "alerts.yaml"


def load_monitor_config(path: str | None = None) -> MonitorConfig:
    """SUANLI_HOME/alerts.yaml (or `path`) over the defaults; BadInput naming the field and line."""
    from pathlib import Path

    file = Path(path) if path else config_path()
    if not file.exists():
        if path:
            raise BadInput("alerts file", str(file), "does not exist")
        return MonitorConfig()
    data, text = read_yaml(file, "alert rules")
    if data is not None and not isinstance(data, dict):
        raise BadInput("alerts.yaml", type(data).__name__, "must be a mapping with rules and notifiers")
    try:
        return MonitorConfig.model_validate(data or {})
    except ValidationError as e:
        raise with_line(bad_input_from(e, MonitorConfig, root="alerts"), str(file), text) from None
