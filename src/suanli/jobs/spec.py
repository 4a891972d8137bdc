"""The job spec: what a user writes in job.yaml. A SkyPilot task file's common fields load unchanged.

Validation happens here, once, with errors that name the field, the value, what is allowed and
(from the YAML) the line, so nothing invalid reaches the store.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from suanli.catalog.accelerators import canonical_accelerator
from suanli.core.errors import BadInput
from suanli.core.resources import Resources
from suanli.core.specfile import bad_input_from, read_yaml, with_line
from suanli.core.units import parse_accelerators, parse_bytes, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, populate_by_name=True)


class ResourcesSpec(_Strict):
    """Per node. `cpus: 4+` and `memory: 32+` are SkyPilot's "at least"; we reserve that amount."""

    cpus: float = 1.0
    memory_bytes: int = Field(0, alias="memory")
    accelerators: dict[str, int] = Field(default_factory=dict)
    # SkyPilot placement fields: kept for the planner, not used by the local pool.
    cloud: str | None = None
    infra: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    use_spot: bool = False
    disk_size: int | None = None
    disk_tier: str | None = None
    image_id: str | None = None
    ports: int | str | list[int | str] | None = None
    accelerator_args: dict[str, Any] | None = None
    job_recovery: str | dict[str, Any] | None = None

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus(cls, v: object) -> float:
        allowed = 'must be a number of CPUs > 0, such as 2, 0.5 or "4+"'
        raw = v.rstrip().rstrip("+") if isinstance(v, str) else v
        try:
            n = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadInput("resources.cpus", v, allowed) from None
        if isinstance(v, bool) or not n > 0:
            raise BadInput("resources.cpus", v, allowed)
        return n

    @field_validator("memory_bytes", mode="before")
    @classmethod
    def _memory(cls, v: object) -> int:
        if v is None:
            return 0
        if isinstance(v, str):
            v = v.rstrip().rstrip("+")
        return parse_bytes(v, "resources.memory")  # type: ignore[arg-type]

    @field_validator("accelerators", mode="before")
    @classmethod
    def _accelerators(cls, v: object) -> dict[str, int]:
        parsed = parse_accelerators(v)
        return {canonical_accelerator(name): n for name, n in parsed.items()}

    def to_resources(self) -> Resources:
        return Resources(cpus=self.cpus, memory_bytes=self.memory_bytes, accelerators=dict(self.accelerators))


class TrainSpec(_Strict):
    """Options for jobs that use suanli.train; passed to every worker as SUANLI_TRAIN_* variables."""

    gradient_compression: Literal["none", "fp16", "bf16", "powersgd"] = "none"
    powersgd_rank: int = Field(2, ge=1)
    local_sgd_steps: int = Field(0, ge=0, description="0 = synchronise gradients every step")
    grad_accum_steps: int = Field(1, ge=1)
    mixed_precision: Literal["auto", "none", "bf16", "fp16"] = "auto"
    seed: int = 0

    def env(self) -> dict[str, str]:
        return {f"SUANLI_TRAIN_{k.upper()}": str(v) for k, v in self.model_dump().items()}


class JobSpec(_Strict):
    """A job. Paths are resolved against the directory of the YAML file that defined them."""

    name: str = "job"
    run: str
    setup: str | None = None
    workdir: str | None = None
    envs: dict[str, str] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    num_nodes: int = Field(1, ge=1)
    num_workers: int = Field(1, ge=1, description="processes per node; each gets RANK/WORLD_SIZE")
    priority: int = 0
    # How long the job runs, as its user expects it ("2h", like Slurm's --time but never enforced): the
    # default policy runs jobs with less expected time left first. Without it, a `workload:` block is
    # timed by the estimator; else the user's history guesses.
    expected_duration_s: float | None = Field(None, alias="expected_duration")
    retries: int = Field(0, ge=0)
    user: str = Field(default_factory=lambda: os.environ.get("SUANLI_USER") or getpass.getuser())
    labels: dict[str, str] = Field(default_factory=dict)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # backend ray: the cluster; else RAY_ADDRESS, else a local Ray
    train: TrainSpec = Field(default_factory=TrainSpec)
    workload: dict[str, Any] | None = None

    @field_validator("envs", mode="before")
    @classmethod
    def _envs(cls, v: object) -> dict[str, str]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise BadInput("envs", v, "must be a mapping of NAME: value")
        out = {}
        for key, value in v.items():
            if value is None:
                raise BadInput(f"envs.{key}", "null", "needs a value (give it with --env KEY=VALUE)")
            out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    @field_validator("expected_duration_s", mode="before")
    @classmethod
    def _expected_duration(cls, v: object) -> float | None:
        return None if v is None else parse_duration(v, "expected_duration")  # type: ignore[arg-type]

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: object) -> dict[str, str]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise BadInput("labels", v, "must be a mapping of key: value")
        return {str(k): str(x) for k, x in v.items()}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise BadInput("name", v, "must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _run_not_empty(self) -> JobSpec:
        if not self.run.strip():
            raise BadInput("run", self.run, "must be a shell command")
        return self

    @property
    def world_size(self) -> int:
        return self.num_nodes * self.num_workers


_ALIASES = {"memory_bytes": "memory", "expected_duration_s": "expected_duration"}


def parse_spec(data: object, *, base_dir: Path | None = None, source: str = "spec") -> JobSpec:
    """A JobSpec from already-parsed data; resolves and checks `workdir` against `base_dir`."""
    if not isinstance(data, dict):
        allowed = "must be a mapping with at least a `run:` field"
        raise BadInput("spec", type(data).__name__, allowed, source=source)
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as e:
        raise bad_input_from(e, JobSpec, aliases=_ALIASES) from None
    base = base_dir or Path.cwd()
    if spec.workdir is not None:
        workdir = (base / os.path.expanduser(spec.workdir)).resolve()
        if not workdir.is_dir():
            hint = f"looked in {workdir}"
            raise BadInput("workdir", spec.workdir, "must be an existing directory", hint=hint)
    else:
        workdir = base.resolve()
    return spec.model_copy(update={"workdir": str(workdir)})


def load_spec(
    path: str | Path, *, env_overrides: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> JobSpec:
    """Read and validate a job YAML file; `overrides` replace top-level fields (CLI flags). Errors carry
    the file and line."""
    path = Path(path)
    source = str(path)
    data, text = read_yaml(path, "job file")
    if isinstance(data, dict) and "name" not in data:
        data["name"] = path.stem
    if isinstance(data, dict):
        if env_overrides:
            data["envs"] = {**(data.get("envs") or {}), **env_overrides}
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return parse_spec(data, base_dir=path.parent, source=source)
    except BadInput as e:
        if e.source and e.source != "spec":
            raise
        raise with_line(e, source, text) from None
