"""The job spec: what a user writes in job.yaml. A SkyPilot task file loads unchanged (jobs/skypilot.py
says what each of its fields means on a pool).

Validation happens here, once, with errors that name the field, the value, what is allowed and
(from the YAML) the line, so nothing invalid reaches the store, and nothing that could not start: an
environment a process cannot be given (a bad variable name, a NUL byte, more than Linux passes to exec)
is refused at submit time, not found out by the job's first attempt.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from suanli.catalog.accelerators import canonical_accelerator
from suanli.core.errors import BadInput
from suanli.core.resources import Resources
from suanli.core.specfile import bad_input_from, read_yaml, shorten, with_line
from suanli.core.units import parse_accelerators, parse_bytes, parse_duration
from suanli.core.workload import WorkloadSpec, workload_from_dict
from suanli.jobs.skypilot import PIPELINE_HINT, mount_notes, translate

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ENV_NAME_RULE = "is not a valid environment variable name: letters, digits and _, not starting with a digit"
# Linux refuses to exec a single argument or "NAME=value" string longer than MAX_ARG_STRLEN (32 pages,
# 128 KiB, counting its NUL), and arguments plus environment beyond ARG_MAX (a quarter of the stack
# limit: 2 MiB by default). `run` and `setup` are each one argument (bash -c), envs and secrets are
# the environment; half of ARG_MAX is left to what every job also gets (suanli's and the node's).
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_EXEC_BYTES = 1024 * 1024
POINTER_BYTES = 8  # each string also costs its pointer in argv/envp
MAX_ACCELERATORS_PER_NODE = 65_536  # a whole TPU v5p pod is 8,960 chips; counts are stored as integers
MAX_NAME_CHARS = 128
MAX_LABELS = 64
MAX_LABEL_KEY_CHARS = 128
MAX_LABEL_VALUE_CHARS = 256
DEFAULT_GRACE_S = 10.0  # SIGTERM to SIGKILL when a job states no grace_period
MAX_GRACE_S = 24 * 3600.0
# TPU slices are named by TensorCores for v2, v3, v4 and v5p (two per chip) and by chips for v5e and
# v6e (cloud.google.com/tpu/docs); the catalog counts chips.
_TPU_SLICE = re.compile(r"(tpu-(v2|v3|v4|v5p|v5e|v5litepod|v6e))-(\d+)\Z", re.IGNORECASE)
_TPU_CORES_PER_CHIP = {"v2": 2, "v3": 2, "v4": 2, "v5p": 2}
_BY_MEMORY = re.compile(r"\d+(\.\d+)?[GMT]B\+?\Z", re.IGNORECASE)


T = TypeVar("T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, populate_by_name=True)


def _bounded(parse: Callable[[], T], field: str, value: object) -> T:
    """`parse()` (a parser of core.units), with a number too large for a float (a 300-digit integer)
    refused like any bad value, and the value in its error kept to one short line."""
    try:
        return parse()
    except OverflowError:
        raise BadInput(field, shorten(value), "is too large") from None
    except BadInput as e:
        raise BadInput(e.field, shorten(e.value), e.allowed, hint=e.hint, source=e.source) from None


def _scalar_text(value: object, field: str) -> str:
    """A YAML scalar as text (booleans as YAML writes them); BadInput for a mapping or a list, which
    would otherwise become the text of a whole (possibly huge) structure."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float | dt.date):  # a date too: YAML reads 2024-01-01 as one
        return str(value)
    raise BadInput(field, shorten(value), "must be a string, a number or a boolean")


def _env_mapping(v: object, field: str) -> dict[str, str]:
    """envs or secrets: valid variable names, scalar values without NUL; a null value must be given on
    the command line (--env NAME=VALUE, or --env NAME to pass the submitter's own)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadInput(field, shorten(v), "must be a mapping of NAME: value")
    out = {}
    for key, value in v.items():
        name = str(key)
        if not ENV_NAME.match(name):
            raise BadInput(f"{field}.{shorten(name, 40)}", "", ENV_NAME_RULE)
        if value is None:
            how = f"give it with --env {name}=VALUE, or --env {name} to pass yours"
            raise BadInput(f"{field}.{name}", "null", f"needs a value ({how})")
        text = _scalar_text(value, f"{field}.{name}")
        if "\0" in text:
            raise BadInput(
                f"{field}.{name}", shorten(text), "must not contain a NUL byte (an environment cannot)"
            )
        out[name] = text
    return out


def _one_accelerator(text: str, field: str) -> dict[str, int]:
    """{catalog name: count} from one "NAME[:COUNT]"; a TPU slice (tpu-v5p-8) is read as its chips."""
    if not text.isprintable():
        raise BadInput(field, shorten(text), "is not a known accelerator (control characters in its name)")
    name, _, count = text.partition(":")
    if _BY_MEMORY.match(name.strip()) or _BY_MEMORY.match(count.strip()):
        allowed = "is SkyPilot's choice by GPU memory, which suanli does not expand: name the accelerators"
        raise BadInput(field, shorten(text), allowed, hint="such as {L40S: 1, A100-80GB: 1}")
    tpu = _TPU_SLICE.match(name.strip())
    if tpu:
        if count.strip() not in ("", "1"):
            raise BadInput(
                field, shorten(text), "a TPU slice's size is in its name (tpu-v5p-8); give no count"
            )
        chips = int(tpu.group(3)) // _TPU_CORES_PER_CHIP.get(tpu.group(2).lower(), 1)
        if chips < 1:
            raise BadInput(field, shorten(text), "is not a TPU slice size")
        return {canonical_accelerator(tpu.group(1), field): chips}
    parsed = parse_accelerators(text, field)
    return {canonical_accelerator(n, field): c for n, c in parsed.items()}


def parse_accelerator_choices(
    value: object, field: str = "resources.accelerators"
) -> tuple[list[dict[str, int]], bool]:
    """(choices, whether several were given without an order) from every form SkyPilot reads: "A100:8",
    {A100: 8}, a set {L4: 8, A100: 8} or {L4, A100} (any of them), a list ["V100:1", "T4:1"] (in this
    order). Each choice is {catalog name: count}; repeats are dropped."""
    return _bounded(lambda: _choices_of(value, field), field, value)


def _choices_of(value: object, field: str) -> tuple[list[dict[str, int]], bool]:
    if value is None or value == {} or value == "" or value == []:
        return [], False
    any_order = False
    if isinstance(value, str):
        found = [_one_accelerator(value, field)]
    elif isinstance(value, dict):
        found = []
        for name, count in value.items():
            if count is None:  # {L4:8, A100} is a YAML mapping of "L4:8" and "A100" to null
                found.append(_one_accelerator(str(name), field))
            elif isinstance(name, str) and _TPU_SLICE.match(name.strip()) and count == 1:
                found.append(_one_accelerator(name, field))
            else:
                if not str(name).isprintable():
                    raise BadInput(
                        field, shorten(name), "is not a known accelerator (control characters in it)"
                    )
                parsed = parse_accelerators({name: count}, field)
                found.append({canonical_accelerator(n, field): c for n, c in parsed.items()})
        any_order = len(found) > 1
    elif isinstance(value, list):
        found = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                found.append(_one_accelerator(item, f"{field}.{i}"))
            elif isinstance(item, dict) and len(item) == 1:
                found.extend(_choices_of(item, f"{field}.{i}")[0])
            else:
                raise BadInput(f"{field}.{i}", shorten(item), 'must be "NAME:COUNT" or {NAME: COUNT}')
    else:
        raise BadInput(
            field, shorten(value), 'must be NAME, "NAME:COUNT", {NAME: COUNT}, a set or a list of them'
        )
    unique: list[dict[str, int]] = []
    for choice in found:
        for name, count in choice.items():
            if count > MAX_ACCELERATORS_PER_NODE:
                allowed = f"is more than {MAX_ACCELERATORS_PER_NODE} accelerators on one node"
                raise BadInput(field, f"{name}:{count}", allowed)
        if choice not in unique:
            unique.append(choice)
    return unique, any_order


class ResourcesSpec(_Strict):
    """Per node. `cpus: 4+` and `memory: 32+` are SkyPilot's "at least"; we reserve that amount.

    `accelerators` is the preferred (first) choice, what the pool checks and the estimator uses;
    `accelerator_choices` lists every acceptable one, first included. `accelerator_preference` says how
    to pick: "ordered" tries them in order (a SkyPilot list, or `ordered:`), "any" takes whichever is
    free or cheapest (a SkyPilot set {A: n, B: m}, `any_of:` or `candidates:`).
    """

    cpus: float = 1.0
    memory_bytes: int = Field(0, alias="memory")
    accelerators: dict[str, int] = Field(default_factory=dict)
    accelerator_choices: list[dict[str, int]] = Field(default_factory=list)
    accelerator_preference: Literal["ordered", "any"] = "ordered"
    # SkyPilot placement fields: kept for the planner, not used by the local pool.
    cloud: str | None = None
    infra: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    use_spot: bool = False
    disk_size: int | str | None = None
    disk_tier: str | None = None
    image_id: str | dict[str, str] | None = None
    ports: int | str | list[int | str] | None = None
    accelerator_args: dict[str, Any] | None = None
    job_recovery: str | dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _choices(cls, data: object) -> object:
        """Derive `accelerators` and `accelerator_choices` from each other: from a file, the choices come
        from `accelerators` (any form) or from any_of/ordered (jobs/skypilot.py); a stored spec has both."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        raw_choices = data.pop("accelerator_choices", None)
        if raw_choices is None:
            choices, any_order = parse_accelerator_choices(data.get("accelerators"))
            if any_order:
                data.setdefault("accelerator_preference", "any")
        else:
            field = "resources.accelerator_choices"
            if not isinstance(raw_choices, list):
                raise BadInput(field, shorten(raw_choices), "must be a list of accelerator choices")
            choices = []
            for i, raw in enumerate(raw_choices):
                for choice in parse_accelerator_choices(raw, f"{field}.{i}")[0]:
                    if choice not in choices:
                        choices.append(choice)
            first = parse_accelerator_choices(data.get("accelerators"))[0] if data.get("accelerators") else []
            if first and (not choices or first[0] != choices[0]):
                allowed = "must be the first of resources.accelerator_choices when both are given"
                raise BadInput("resources.accelerators", shorten(data.get("accelerators")), allowed)
        data["accelerators"] = choices[0] if choices else {}
        data["accelerator_choices"] = choices
        return data

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus(cls, v: object) -> float:
        allowed = 'must be a number of CPUs > 0, such as 2, 0.5 or "4+"'
        raw = v.rstrip().rstrip("+") if isinstance(v, str) else v
        try:
            n = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise BadInput("resources.cpus", shorten(v), allowed) from None
        if isinstance(v, bool) or not 0 < n < float("inf"):
            raise BadInput("resources.cpus", shorten(v), allowed)
        return n

    @field_validator("memory_bytes", mode="before")
    @classmethod
    def _memory(cls, v: object) -> int:
        if v is None:
            return 0
        if isinstance(v, str):
            v = v.rstrip().rstrip("+")
        return _bounded(lambda: parse_bytes(v, "resources.memory"), "resources.memory", v)  # type: ignore[arg-type]

    def to_resources(self) -> Resources:
        """The preferred choice as one request."""
        return Resources(cpus=self.cpus, memory_bytes=self.memory_bytes, accelerators=dict(self.accelerators))

    def choice_resources(self) -> list[Resources]:
        """One request per accelerator choice, preferred first (the CPU and memory request alone when the
        job names no accelerator): what the pool check and the scheduler try."""
        return [
            Resources(cpus=self.cpus, memory_bytes=self.memory_bytes, accelerators=dict(choice))
            for choice in self.accelerator_choices
        ] or [self.to_resources()]


class VerifySpec(_Strict):
    """`verify: replicate`: the job runs on two nodes of different owners and their outputs are compared:
    its `artifacts` bit for bit (by their ledger digests), or its final metrics within `rtol`; a mismatch
    runs it a third time on a third owner, and the owner outside the majority is flagged in the ledger."""

    mode: Literal["replicate"] = "replicate"
    compare: Literal["artifacts", "metrics"] = "artifacts"
    rtol: float = Field(0.0, ge=0, le=1, description="metrics: the relative difference still equal")


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


class FileMount(_Strict):
    """A local file or folder the job reaches at `target` (SkyPilot's file_mounts with a local source).
    `source` is absolute once loaded; jobs/skypilot.py `prepare_mounts` says where the job finds it."""

    target: str
    source: str


class JobSpec(_Strict):
    """A job. Paths are resolved against the directory of the YAML file that defined them."""

    name: str = "job"
    run: str
    setup: str | None = None
    workdir: str | None = None
    envs: dict[str, str] = Field(default_factory=dict)
    # Like envs, kept apart so that what is stored and printed can show "***" (see `redacted`).
    secrets: dict[str, str] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    num_nodes: int = Field(1, ge=1)
    num_workers: int = Field(1, ge=1, description="processes per node; each gets RANK/WORLD_SIZE")
    # Run only on these nodes of the pool (Kubernetes' nodeSelector by name): a federation's participant
    # runs where its data is. Empty: any node.
    nodes: list[str] = Field(default_factory=list, max_length=1000)
    priority: int = 0
    # How long the job runs, as its user expects it ("2h", like Slurm's --time but never enforced): the
    # default policy runs jobs with less expected time left first. Without it, a `workload:` block is
    # timed by the estimator; else the user's history guesses.
    expected_duration_s: float | None = Field(None, alias="expected_duration")
    retries: int = Field(0, ge=0)
    # A preempted or cancelled attempt gets SIGTERM, then this long to save a checkpoint and exit before
    # SIGKILL ("30s"; 0 kills at once).
    grace_period_s: float = Field(DEFAULT_GRACE_S, alias="grace_period")
    # Lower resources.memory to what the last runs of this job (same name and user) used at most, plus a
    # margin (monitor/advice.py); without it, that advice is only shown at submission.
    right_size: bool = False
    user: str = Field(default_factory=lambda: os.environ.get("SUANLI_USER") or getpass.getuser())
    # The team the job is accounted to and scheduled with (a server's project; the server sets it from
    # the submitter's token). Its fair share and quotas are the project's.
    project: str | None = Field(None, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # backend ray: the cluster; else RAY_ADDRESS, else a local Ray
    train: TrainSpec = Field(default_factory=TrainSpec)
    # What the job has to get done (`workload:`), for the estimator: the scheduler times the job with it.
    workload: WorkloadSpec | None = None
    mounts: list[FileMount] = Field(default_factory=list)
    # For the provenance ledger: the datasets (files or folders) the job reads, and the artifacts it
    # writes besides its checkpoints, relative to the workdir unless absolute (SkyPilot's `inputs` and
    # `outputs` are sizes for its optimizer, not these). Their digests go into the entry each attempt's
    # end appends.
    datasets: list[str] = Field(default_factory=list, max_length=64)
    artifacts: list[str] = Field(default_factory=list, max_length=64)
    # Files or folders under the workdir that suanli itself never reads, not even to hash them as code:
    # data that must stay with its owner (a federation's participants' partitions).
    private: list[str] = Field(default_factory=list, max_length=10_000)
    # Compute shared between owners who do not trust each other: run it twice and compare (run/verify.py).
    verify: VerifySpec | None = None
    # What loading the file left out or changed (SkyPilot fields with no effect on a pool); set by
    # parse_spec, never read from a job file.
    notes: list[str] = Field(default_factory=list)

    @field_validator("envs", mode="before")
    @classmethod
    def _envs(cls, v: object) -> dict[str, str]:
        return _env_mapping(v, "envs")

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, v: object) -> object:
        return {"mode": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _verifiable(self) -> JobSpec:
        if self.verify is not None and self.verify.compare == "artifacts":
            if not self.artifacts:
                raise BadInput(
                    "verify",
                    "replicate",
                    "compares the job's artifacts: list them in `artifacts:`",
                    hint="or compare its final metrics: verify: {mode: replicate, compare: metrics}",
                )
            for i, a in enumerate(self.artifacts):
                if Path(a).is_absolute() or ".." in Path(a).parts:
                    raise BadInput(
                        f"artifacts[{i}]",
                        a,
                        "must be relative to $SUANLI_OUTPUT_DIR under verify",
                        hint="each replica writes its artifacts into its own $SUANLI_OUTPUT_DIR",
                    )
        return self

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, v: object) -> dict[str, str]:
        return _env_mapping(v, "secrets")

    @field_validator("expected_duration_s", mode="before")
    @classmethod
    def _expected_duration(cls, v: object) -> float | None:
        if v is None:
            return None
        return _bounded(lambda: parse_duration(v, "expected_duration"), "expected_duration", v)  # type: ignore[arg-type]

    @field_validator("workload", mode="before")
    @classmethod
    def _workload(cls, v: object) -> WorkloadSpec | None:
        """Names and values checked when the file is read (typos get near names); whether the block
        is complete is checked when the job is submitted (`suanli plan` may complete it with flags)."""
        if v is None or isinstance(v, WorkloadSpec):
            return v
        return workload_from_dict(v, complete=False)  # type: ignore[arg-type]

    @field_serializer("workload")
    def _workload_out(self, v: WorkloadSpec | None) -> dict[str, Any] | None:
        return None if v is None else v.to_dict()

    @field_validator("grace_period_s", mode="before")
    @classmethod
    def _grace(cls, v: object) -> float:
        allowed = 'must be a duration >= 0 such as 0, 30 or "2m"'
        if v in (0, 0.0, "0", "0s"):
            return 0.0
        if v is None:
            raise BadInput("grace_period", "null", allowed)
        try:
            seconds = _bounded(lambda: parse_duration(v, "grace_period"), "grace_period", v)  # type: ignore[arg-type]
        except BadInput:
            raise BadInput("grace_period", shorten(v), allowed) from None
        if seconds > MAX_GRACE_S:
            raise BadInput("grace_period", shorten(v), f"must be at most {MAX_GRACE_S / 3600:g} h")
        return seconds

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: object) -> dict[str, str]:
        """At most MAX_LABELS short, printable labels: they are stored with every job and shown in lists."""
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise BadInput("labels", shorten(v), "must be a mapping of key: value")
        if len(v) > MAX_LABELS:
            raise BadInput("labels", f"{len(v)} labels", f"must be at most {MAX_LABELS} labels")
        out = {}
        for key, value in v.items():
            name = _scalar_text(key, "labels")
            if not name or len(name) > MAX_LABEL_KEY_CHARS or not name.isprintable():
                allowed = f"a label key must be 1 to {MAX_LABEL_KEY_CHARS} printable characters"
                raise BadInput("labels", shorten(name), allowed)
            text = _scalar_text(value, f"labels.{name}")
            if len(text) > MAX_LABEL_VALUE_CHARS or not text.isprintable():
                allowed = f"must be at most {MAX_LABEL_VALUE_CHARS} printable characters"
                raise BadInput(f"labels.{name}", shorten(text), allowed)
            out[name] = text
        return out

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise BadInput("name", v, "must not be empty")
        if len(v) > MAX_NAME_CHARS or not v.isprintable():
            raise BadInput("name", shorten(v), f"must be at most {MAX_NAME_CHARS} printable characters")
        return v

    @model_validator(mode="after")
    def _can_start(self) -> JobSpec:
        if not self.run.strip():
            raise BadInput("run", shorten(self.run), "must be a shell command")
        if set(self.envs) & set(self.secrets):
            both = sorted(set(self.envs) & set(self.secrets))[0]
            raise BadInput(f"secrets.{both}", "", "is also under envs; a name is either an env or a secret")
        check_exec_size(self)
        return self

    @property
    def world_size(self) -> int:
        return self.num_nodes * self.num_workers


def check_exec_size(spec: JobSpec) -> None:
    """BadInput unless every process of the job can be exec'd: `run` and `setup` (each passed to bash as
    one argument) and every NAME=value of envs and secrets under MAX_ARG_BYTES, no NUL byte in them,
    and all of it together under MAX_EXEC_BYTES."""
    commands = {"run": spec.run, "setup": spec.setup or ""}
    for field, text in commands.items():
        if "\0" in text:
            raise BadInput(field, shorten(text), "must not contain a NUL byte (bash cannot be given one)")
        size = len(text.encode())
        if size > MAX_ARG_BYTES:
            allowed = (
                f"is {size} bytes; Linux passes at most {MAX_ARG_BYTES} bytes as one argument "
                "(MAX_ARG_STRLEN): put the commands in a script in the workdir and run that"
            )
            raise BadInput(field, shorten(text, 40), allowed)
    total = max(len(t.encode()) for t in commands.values()) + 1 + POINTER_BYTES
    for field, mapping in (("envs", spec.envs), ("secrets", spec.secrets)):
        for name, value in mapping.items():
            size = len(name.encode()) + 1 + len(value.encode())
            if size > MAX_ARG_BYTES:
                shown = "***" if field == "secrets" else shorten(value, 40)
                allowed = (
                    f"is {size} bytes with its name; Linux refuses an environment variable over "
                    f"{MAX_ARG_BYTES} bytes (MAX_ARG_STRLEN): pass a file path instead"
                )
                raise BadInput(f"{field}.{name}", shown, allowed)
            total += size + 1 + POINTER_BYTES
    if total > MAX_EXEC_BYTES:
        allowed = (
            f"envs, secrets and the longer of run/setup come to {total} bytes; together they must stay "
            f"under {MAX_EXEC_BYTES} (Linux refuses to start a process past ARG_MAX, 2 MiB by default, "
            "and a job also gets suanli's and the node's variables)"
        )
        raise BadInput("envs", "", allowed, hint="pass large values in a file")


def _stored_fields(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a model_dump by alias) as the model's field values, for model_construct; keys the model
    no longer has are dropped, fields the data predates take their defaults."""
    out = {}
    for name, info in model.model_fields.items():
        for key in (info.alias, name):
            if key and key in data:
                out[name] = data[key]
                break
    return out


def stored_spec(data: dict[str, Any]) -> JobSpec:
    """The spec a job was stored with, as it was stored: it was validated when it was submitted, so no
    validator runs again (stored values are not user input: a bare memory is bytes, not GiB), and a job
    stored by an earlier version loads whatever later versions check when a file is read."""
    values = _stored_fields(JobSpec, data)
    if isinstance(values.get("resources"), dict):
        resources = _stored_fields(ResourcesSpec, values["resources"])
        values["resources"] = ResourcesSpec.model_construct(**resources)
    if isinstance(values.get("train"), dict):
        values["train"] = TrainSpec.model_construct(**_stored_fields(TrainSpec, values["train"]))
    values["mounts"] = [
        FileMount.model_construct(**_stored_fields(FileMount, m)) for m in values.get("mounts") or []
    ]
    if isinstance(values.get("workload"), dict):
        values["workload"] = workload_from_dict(values["workload"], complete=False)
    if isinstance(values.get("verify"), dict):
        values["verify"] = VerifySpec.model_construct(**_stored_fields(VerifySpec, values["verify"]))
    return JobSpec.model_construct(**values)


def redacted(spec: JobSpec) -> dict[str, Any]:
    """The spec as stored and printed (model_dump, JSON-ready, by alias) with every secret's value
    replaced by "***"."""
    doc = spec.model_dump(mode="json", by_alias=True)
    doc["secrets"] = dict.fromkeys(spec.secrets, "***")
    return doc


_ALIASES = {
    "memory_bytes": "memory",
    "expected_duration_s": "expected_duration",
    "grace_period_s": "grace_period",
}
FROM_CWD = "from the current folder, as SkyPilot reads it"


def _probe(path: Path, field: str, written: str, *, folder: bool) -> bool:
    """Whether `path` is an existing folder (or anything, without `folder`); BadInput when the name a job
    file wrote cannot be looked up at all (a component longer than the file system allows)."""
    try:
        return path.is_dir() if folder else path.exists()
    except OSError as e:
        raise BadInput(field, shorten(written), f"cannot be used as a path ({e.strerror or e})") from None


def _resolve_workdir(workdir: str, base: Path) -> tuple[Path, str | None]:
    """(folder, note): `workdir` read relative to the job file's folder, else (SkyPilot's rule, which
    reads it relative to where `sky launch` runs) to the current folder, with a note."""
    if "\0" in workdir:
        raise BadInput("workdir", shorten(workdir), "must not contain a NUL byte")
    path = Path(os.path.expanduser(workdir))
    here = (base / path).resolve()
    if _probe(here, "workdir", workdir, folder=True):
        return here, None
    cwd = (Path.cwd() / path).resolve()
    if not path.is_absolute() and _probe(cwd, "workdir", workdir, folder=True):
        return cwd, f"workdir: {shorten(workdir)} is not in the job file's folder; using {cwd} ({FROM_CWD})"
    hint = f"looked in {shorten(str(here))}"
    raise BadInput("workdir", shorten(workdir), "must be an existing directory", hint=hint)


def _resolve_mount(mount: FileMount, base: Path) -> tuple[FileMount, str | None]:
    """The mount with an absolute, existing source (read like workdir), its target checked."""
    target, source = mount.target, mount.source
    field = f"file_mounts.{shorten(target)}"
    if not target.strip() or not target.isprintable() or not source.isprintable():
        raise BadInput(field, shorten(source), "needs a target and a source path of printable characters")
    if len(target.encode()) > 4095 or any(len(part.encode()) > 255 for part in target.split("/")):
        raise BadInput(field, "", "is longer than a path may be (255 bytes a name, 4095 in all)")
    if target.startswith("~") and not (target == "~" or target.startswith("~/")):
        raise BadInput(field, "", "a target under ~ must be in your own home folder (~/...)")
    if not (target.startswith("~") or os.path.isabs(target)):
        norm = os.path.normpath(target)
        if norm == "." or norm == ".." or norm.startswith("../"):
            raise BadInput(field, "", "a relative target must name a path inside the workdir")
    path = Path(os.path.expanduser(source))
    here = base / path
    if _probe(here, field, source, folder=False):
        return FileMount(target=target, source=str(here.resolve())), None
    cwd = Path.cwd() / path
    if not path.is_absolute() and _probe(cwd, field, source, folder=False):
        found = cwd.resolve()
        note = f"{field}: {shorten(source)} is not in the job file's folder; using {found} ({FROM_CWD})"
        return FileMount(target=target, source=str(found)), note
    hint = f"looked in {shorten(str(here))}"
    raise BadInput(field, shorten(source), "must be an existing local file or folder", hint=hint)


def parse_spec(data: object, *, base_dir: Path | None = None, source: str = "spec") -> JobSpec:
    """A JobSpec from already-parsed data (a job file's mapping, SkyPilot fields included); resolves and
    checks `workdir` and local mounts against `base_dir`, and records what was left out as notes."""
    if not isinstance(data, dict):
        allowed = "must be a mapping with at least a `run:` field"
        raise BadInput("spec", type(data).__name__, allowed, source=source)
    if "notes" in data:
        raise BadInput("notes", "", "is written by suanli (what it left out of the file); remove it")
    native, notes = translate(data)
    try:
        spec = JobSpec.model_validate(native)
    except ValidationError as e:
        raise bad_input_from(e, JobSpec, aliases=_ALIASES) from None
    base = base_dir or Path.cwd()
    if spec.workdir is not None:
        workdir, note = _resolve_workdir(spec.workdir, base)
        notes += [note] if note else []
    else:
        workdir = base.resolve()
    mounts = []
    for mount in spec.mounts:
        resolved, note = _resolve_mount(mount, base)
        mounts.append(resolved)
        notes += [note] if note else []
    notes += mount_notes(mounts)
    datasets = [_resolve_dataset(d, n, workdir) for n, d in enumerate(spec.datasets)]
    for n, out in enumerate(spec.artifacts):
        _check_path(out, f"artifacts[{n}]")
    for n, private in enumerate(spec.private):
        _check_path(private, f"private[{n}]")
    update = {"workdir": str(workdir), "mounts": mounts, "notes": notes, "datasets": datasets}
    return spec.model_copy(update=update)


def _check_path(path: str, field: str) -> None:
    if not path.strip() or "\0" in path or not path.isprintable() or len(path.encode()) > 4095:
        raise BadInput(field, shorten(path), "must be a path of printable characters, at most 4095 bytes")


def _resolve_dataset(path: str, n: int, workdir: Path) -> str:
    """A dataset the job reads: an existing file or folder, read relative to the workdir."""
    field = f"datasets[{n}]"
    _check_path(path, field)
    here = (workdir / os.path.expanduser(path)).resolve()
    if not _probe(here, field, path, folder=False):
        raise BadInput(
            field, shorten(path), "must be an existing file or folder", hint=f"looked in {shorten(str(here))}"
        )
    return str(here)


def load_spec(
    path: str | Path, *, env_overrides: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> JobSpec:
    """Read and validate a job YAML file; `overrides` replace top-level fields (CLI flags). An
    `env_overrides` name that the file lists under `secrets:` fills that secret; any other is an env.
    Errors carry the file and line."""
    path = Path(path)
    source = str(path)
    data, text = read_yaml(path, "job file", documents_hint=PIPELINE_HINT)
    if isinstance(data, dict) and "name" not in data:
        data["name"] = path.stem
    if isinstance(data, dict):
        if env_overrides:
            declared = data.get("secrets") if isinstance(data.get("secrets"), dict) else {}
            secret = {k: v for k, v in env_overrides.items() if k in declared}
            env = {k: v for k, v in env_overrides.items() if k not in declared}
            if secret:
                data["secrets"] = {**declared, **secret}
            if env and isinstance(data.get("envs"), dict | None):  # else the model names what is wrong
                data["envs"] = {**(data.get("envs") or {}), **env}
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return parse_spec(data, base_dir=path.parent, source=source)
    except BadInput as e:
        if e.source and e.source != "spec":
            raise
        raise with_line(e, source, text) from None
