"""The ensemble file: the replicas (each one owner's node and model), how their answers are combined, and
when a replica is dropped. Validated here, once, before anything starts, with errors naming the file,
line, field, value and what is allowed.

    name: digits
    vote: majority                      # or soft: the weighted mean of the replicas' probabilities
    input_shape: [64]                   # one request row; the front refuses any other shape
    timeout_s: 1.0                      # a replica slower than this is skipped for that request
    drop: {timeouts: 3, window: 50, disagreement: 0.5}
    replicas:
      - {name: a, node: host-a, model: models/a.onnx}
      - {name: b, node: host-b, model: models/b.pt, weight: 2}          # TorchScript
      - {name: c, node: host-c, model: net.py:make_model, weights: models/c-state.pt}

Importing this module needs neither torch, onnxruntime nor FastAPI: the CLI validates a file without them,
and the checks that need them (the models load and agree on their output) run in a child process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from suanli.core.errors import BadInput
from suanli.core.net import Address
from suanli.core.specfile import Name, bad_input_from, check_unique, read_yaml, with_line

SPEC_ENV = "SUANLI_SERVE_SPEC"  # the resolved spec (JSON), as the front and each replica read it
INDEX_ENV = "SUANLI_SERVE_REPLICA"  # which replica a replica job is
_REF = re.compile(r"^[^:\s]+\.py:[A-Za-z_][A-Za-z0-9_.]*$")
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
MAX_INPUT_VALUES = 1_000_000  # one row's values; a larger row is not what this serves


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def model_kind(model: str) -> str:
    """ "onnx", "torchscript" or "factory", from how the model is named (the loader is chosen by it)."""
    if _REF.match(model):
        return "factory"
    return "onnx" if model.lower().endswith(".onnx") else "torchscript"


class Replica(_Strict):
    """One owner's copy of a model on one node. `weight` counts in both votes; `attack` emulates a
    malicious replica (tests and benchmarks only): `wrong_labels` answers a label other than its model's,
    confidently; `no_answer` holds every request past the front's timeout."""

    name: Name
    node: str | None = None
    model: str = Field(description="file.onnx, a TorchScript file (.pt/.pth/.ts), or file.py:factory")
    weights: str | None = Field(None, description="a state dict for a file.py:factory model")
    weight: float = Field(1.0, gt=0, le=1e6)
    address: Address | None = Field(None, description="host:port it serves at")
    cpus: float = Field(0.25, gt=0, le=1024)
    attack: Literal["none", "wrong_labels", "no_answer"] = "none"

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if ":" in v and not _REF.match(v):
            raise ValueError("must be a .onnx file, a TorchScript file (.pt/.pth/.ts) or file.py:factory")
        if ":" not in v and not (v.lower().endswith(".onnx") or v.lower().endswith(TORCHSCRIPT_SUFFIXES)):
            raise ValueError("must be a .onnx file, a TorchScript file (.pt/.pth/.ts) or file.py:factory")
        return v


class DropRule(_Strict):
    """When the front stops asking a replica: after `timeouts` requests in a row it did not answer in time
    (or answered with an error), or once, over its last `window` answered rows, it disagreed with the
    ensemble's answer on more than `disagreement` of them. A dropped replica stays dropped until the
    service is restarted; it is flagged in /status, the front's log and its metrics."""

    timeouts: int = Field(3, ge=1, le=1_000_000)
    window: int = Field(50, ge=1, le=1_000_000)
    disagreement: float = Field(0.5, gt=0, le=1)
    enabled: bool = True


class Front(_Strict):
    """The service users call: where it listens and what it reserves."""

    address: Address | None = Field(None, description="host:port (default 127.0.0.1:<free>)")
    node: str | None = None
    cpus: float = Field(0.5, gt=0, le=1024)
    max_rows: int = Field(1024, ge=1, le=1_000_000, description="rows in one request at most")
    report_s: float = Field(5.0, gt=0, description="how often latency and throughput are logged")


class EnsembleSpec(_Strict):
    name: Name = "ensemble"
    vote: Literal["majority", "soft"] = "majority"
    input_shape: list[int] = Field(min_length=1, max_length=8)
    input_dtype: Literal["float32"] = "float32"
    timeout_s: float = Field(2.0, gt=0, le=3600)
    quorum: int = Field(1, ge=1, description="replicas that must answer, else the request fails (503)")
    drop: DropRule = Field(default_factory=DropRule)
    replicas: list[Replica] = Field(min_length=1, max_length=256)
    front: Front = Field(default_factory=Front)
    wait_s: float = Field(300.0, gt=0, description="how long starting may take (jobs queued, models load)")
    project: str | None = None
    envs: dict[str, str] = Field(default_factory=dict)
    base_dir: str = Field(".", description="set from the file's folder; relative paths start here")

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        size = 1
        for d in v:
            if d < 1:
                raise ValueError("must be positive sizes, one per dimension of a row")
            size *= d
        if size > MAX_INPUT_VALUES:
            raise ValueError(f"must hold at most {MAX_INPUT_VALUES} values per row")
        return v

    @model_validator(mode="after")
    def _whole(self) -> EnsembleSpec:
        check_unique([r.name for r in self.replicas], "replicas", "replicas")
        for i, r in enumerate(self.replicas):
            if r.weights is not None and model_kind(r.model) != "factory":
                raise BadInput(
                    f"replicas[{i}].weights", r.weights, "is read only for a file.py:factory model",
                    hint="a .onnx or TorchScript file holds its own weights",
                )  # fmt: skip
        if self.quorum > len(self.replicas):
            raise BadInput(
                "quorum", self.quorum, f"must be at most the number of replicas ({len(self.replicas)})"
            )
        return self

    def path(self, value: str) -> Path:
        """A path of the file (a model, its weights), relative to the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def model_files(self, replica: Replica) -> list[Path]:
        """The files a replica's model is read from."""
        if model_kind(replica.model) == "factory":
            files = [self.path(replica.model.split(":", 1)[0])]
            return files + ([self.path(replica.weights)] if replica.weights else [])
        return [self.path(replica.model)]


def parse_ensemble_spec(data: object, *, source: str = "ensemble") -> EnsembleSpec:
    if not isinstance(data, dict):
        raise BadInput("ensemble", type(data).__name__, "must be a mapping with input_shape and replicas",
                       source=source)  # fmt: skip
    try:
        return EnsembleSpec.model_validate(data)
    except ValidationError as e:
        raise bad_input_from(_typos_first(e), EnsembleSpec, root="ensemble") from None


def _typos_first(e: ValidationError) -> ValidationError:
    """The same errors with unknown fields first: `modle:` is better reported as a typo of `model` (with
    the near name) than as `model` missing."""
    errors = e.errors()
    ordered = sorted(errors, key=lambda d: d["type"] != "extra_forbidden")
    if ordered == errors:
        return e
    details = [{k: d[k] for k in ("type", "loc", "input", "ctx") if k in d} for d in ordered]
    try:
        return ValidationError.from_exception_data(e.title, details)  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError):
        return e


def load_ensemble_spec(path: str | Path) -> EnsembleSpec:
    """Read and validate an ensemble file; relative paths in it are taken from the file's folder."""
    path = Path(path)
    source = str(path)
    data, text = read_yaml(path, "ensemble file")
    if isinstance(data, dict):
        data["base_dir"] = str(path.resolve().parent)
    try:
        return parse_ensemble_spec(data, source=source)
    except BadInput as e:
        if e.source and e.source != "ensemble":
            raise
        raise with_line(e, source, text) from None


def spec_from_env(environ: dict[str, str] | Any) -> EnsembleSpec:
    """The resolved spec a front or replica job was given."""
    return EnsembleSpec.model_validate_json(environ[SPEC_ENV])
