"""The tune file: what to search, for which objective, on which trial job, within which budget.

Validated here, once, with errors naming the file, line, field, value and what is allowed, so a bad
tune file stores nothing and starts no job.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from suanli.core.errors import BadInput, did_you_mean
from suanli.core.specfile import bad_input_from, read_yaml, with_line
from suanli.jobs.spec import JobSpec, load_spec

PARAM_TYPES = ("float", "int", "categorical")
PRUNERS = ("median", "successive_halving", "none")
SAMPLERS = ("tpe", "random")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    """The metric a trial job prints (as JSON lines) and whether bigger is better."""

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if not v.strip():
            raise BadInput("objective.metric", v, "must name the metric the trial job prints")
        return v.strip()


class FloatParam(_Strict):
    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    step: float | None = None


class IntParam(_Strict):
    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = 1


class CategoricalParam(_Strict):
    type: Literal["categorical"] = "categorical"
    choices: list[str | int | float | bool] = Field(min_length=1)


Param = FloatParam | IntParam | CategoricalParam
_PARAM_MODELS: dict[str, type[BaseModel]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
}


class PrunerSpec(_Strict):
    """`median` stops a trial worse than the median of finished ones at the same step;
    `successive_halving` keeps the best 1/reduction_factor at each rung."""

    type: Literal["median", "successive_halving", "none"] = "median"
    startup_trials: int = Field(5, ge=0, description="median: finished trials before any pruning")
    warmup_steps: int = Field(0, ge=0, description="median: steps of each trial never pruned")
    min_resource: int = Field(1, ge=1, description="successive_halving: steps before the first rung")
    reduction_factor: int = Field(3, ge=2, description="successive_halving: keep 1 in this many")


class TuneSpec(_Strict):
    """A hyper-parameter search whose trials are suanli jobs. Paths are resolved against the tune file."""

    job: str
    objective: Objective
    params: dict[str, Param]
    trials: int = Field(10, ge=1)
    parallel: int = 1
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = None
    budget_device_hours: float | None = None
    study: str = "tune"
    enqueue: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, v: object) -> dict[str, Param]:
        if not isinstance(v, dict) or not v:
            raise BadInput("params", v, "must be a mapping of name: {type: float|int|categorical, ...}")
        out: dict[str, Param] = {}
        for name, raw in v.items():
            name = str(name)
            field = f"params.{name}"
            if not _NAME.match(name):
                raise BadInput(field, name, "must be letters, digits and _ (it becomes an env var)")
            if not isinstance(raw, dict):
                raise BadInput(field, raw, "must be a mapping such as {type: float, low: 0.001, high: 0.1}")
            kind = raw.get("type")
            if kind not in _PARAM_MODELS:
                hint = did_you_mean(str(kind), PARAM_TYPES) if kind is not None else None
                raise BadInput(
                    f"{field}.type",
                    kind if kind is not None else "(missing)",
                    "must be one of " + ", ".join(PARAM_TYPES),
                    hint=hint,
                )
            model = _PARAM_MODELS[kind]
            try:
                param = model.model_validate(raw)
            except ValidationError as e:
                raise bad_input_from(e, model, prefix=(field,)) from None
            _check_range(field, param)
            out[name] = param  # type: ignore[assignment]
        return out

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner(cls, v: object) -> object:
        if v is None:
            return {"type": "none"}
        kind = v if isinstance(v, str) else v.get("type", "median") if isinstance(v, dict) else v
        if kind not in PRUNERS:
            field = "pruner" if isinstance(v, str) else "pruner.type"
            raise BadInput(
                field, kind, "must be one of " + ", ".join(PRUNERS), hint=did_you_mean(str(kind), PRUNERS)
            )
        return {"type": v} if isinstance(v, str) else v

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, v: object) -> object:
        if v not in SAMPLERS:
            raise BadInput(
                "sampler", v, "must be one of " + ", ".join(SAMPLERS), hint=did_you_mean(str(v), SAMPLERS)
            )
        return v

    @field_validator("parallel")
    @classmethod
    def _parallel(cls, v: int) -> int:
        if v < 1:
            raise BadInput("parallel", v, "must be at least 1 (trials running at once)")
        return v

    @field_validator("budget_device_hours")
    @classmethod
    def _budget(cls, v: float | None) -> float | None:
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise BadInput("budget_device_hours", v, "must be a positive number of device-hours")
        return v

    @field_validator("study")
    @classmethod
    def _study(cls, v: str) -> str:
        if not v.strip():
            raise BadInput("study", v, "must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _enqueued(self) -> TuneSpec:
        for i, point in enumerate(self.enqueue):
            for name, value in point.items():
                field = f"enqueue.{i}.{name}"
                if name not in self.params:
                    raise BadInput(
                        field,
                        value,
                        "is not a param",
                        hint=did_you_mean(name, self.params) or "params: " + ", ".join(self.params),
                    )
                param = self.params[name]
                if isinstance(param, CategoricalParam):
                    if value not in param.choices:
                        raise BadInput(field, value, f"must be one of {param.choices}")
                elif (
                    not isinstance(value, int | float)
                    or isinstance(value, bool)
                    or not (param.low <= value <= param.high)
                ):
                    raise BadInput(field, value, f"must be a number in [{param.low:g}, {param.high:g}]")
        return self


def _check_range(field: str, param: BaseModel) -> None:
    if isinstance(param, FloatParam | IntParam):
        if not param.low < param.high:
            raise BadInput(f"{field}.low", param.low, f"must be less than high ({param.high:g})")
        if param.log and param.low <= 0:
            raise BadInput(f"{field}.low", param.low, "must be > 0 when log: true")
        if param.step is not None and not param.step > 0:
            raise BadInput(f"{field}.step", param.step, "must be > 0")
        if param.log and isinstance(param, FloatParam) and param.step is not None:
            raise BadInput(f"{field}.step", param.step, "cannot be combined with log: true")


def parse_tune_spec(data: object, *, source: str = "tune") -> TuneSpec:
    """A TuneSpec from parsed data (paths are not resolved here)."""
    if not isinstance(data, dict):
        raise BadInput(
            "tune", type(data).__name__, "must be a mapping with job, objective and params", source=source
        )
    try:
        return TuneSpec.model_validate(data)
    except ValidationError as e:
        raise bad_input_from(e, TuneSpec, root="tune") from None


def load_tune_spec(path: str | Path, *, overrides: dict[str, Any] | None = None) -> TuneSpec:
    """Read and validate a tune file and its trial job; `job` comes back as an absolute path.

    `overrides` (from the command line) replace top-level fields before validation. The study name
    defaults to the tune file's directory name when the file is called tune.yaml, else its stem.
    """
    path = Path(path)
    source = str(path)
    data, text = read_yaml(path, "tune file")
    if isinstance(data, dict):
        if "study" not in data:
            stem = path.stem
            data["study"] = path.resolve().parent.name if stem in ("tune", "study") else stem
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        spec = parse_tune_spec(data, source=source)
    except BadInput as e:
        if e.source and e.source != "tune":
            raise
        raise with_line(e, source, text) from None
    job_path = (path.parent / spec.job).resolve()
    if not job_path.is_file():
        err = BadInput("job", spec.job, "must be an existing job file", hint=f"looked in {job_path}")
        raise with_line(err, source, text)
    job = load_spec(job_path)
    try:
        check_placeholders(job, spec)
    except BadInput as e:
        raise BadInput(e.field, e.value, e.allowed, hint=e.hint, source=str(job_path)) from None
    return spec.model_copy(update={"job": str(job_path)})


def check_placeholders(job: JobSpec, spec: TuneSpec) -> None:
    """Every `{{name}}` in the job's run/setup must be a param of the search."""
    for field in ("run", "setup"):
        for name in PLACEHOLDER.findall(getattr(job, field) or ""):
            if name not in spec.params:
                hint = did_you_mean(name, spec.params) or "params: " + ", ".join(spec.params)
                raise BadInput(field, "{{" + name + "}}", "is not a param of the search", hint=hint)


def render(text: str | None, params: dict[str, Any]) -> str | None:
    """Substitute `{{name}}` placeholders with shell-quoted parameter values."""
    if text is None:
        return None
    return PLACEHOLDER.sub(lambda m: shlex.quote(param_text(params[m.group(1)])), text)


def param_text(value: Any) -> str:
    """A parameter as a job sees it (env var or command-line argument)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def param_env(params: dict[str, Any]) -> dict[str, str]:
    return {f"SUANLI_PARAM_{name.upper()}": param_text(value) for name, value in params.items()}
