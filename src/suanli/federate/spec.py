"""The federation file: the app, the participants and their data, the strategy, selection, robust
aggregation and privacy. Validated here, once, before anything starts, with errors naming the file, line,
field, value and what is allowed.

    name: digits
    rounds: 30
    app:                                  # suanli's built-in app: an ordinary PyTorch model and dataset
      model: task.py:make_model           #   () -> torch.nn.Module
      dataset: task.py:load               #   (path) -> a torch Dataset of (x, y)
      server_data: data/test.npz          #   the server's own held-out data (optional)
    # app: {server_app: pkg.server:app, client_app: pkg.client:app}   # or a Flower app the user wrote
    strategy: {name: FedAvg, options: {fraction_train: 0.5}}
    aggregator: {name: trimmed_mean, f: 1}
    selection: {policy: compute-aware, deadline_s: 5}
    privacy: {mode: central, noise_multiplier: 1.0, clipping_norm: 1.0, delta: 1.0e-5, max_epsilon: 8}
    participants:
      - {name: clinic-a, node: host-a, data: data/part-0.npz}

Importing this module needs neither torch nor Flower: the CLI validates a file without them, and the
checks that need them (strategy options, the app's imports) run in `check`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)  # fmt: skip

from suanli.core.errors import BadInput
from suanli.core.net import Address, is_loopback
from suanli.core.specfile import Name, bad_input_from, check_unique, read_yaml, with_line

_REF = re.compile(r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_ref(value: str) -> str:
    if not _REF.match(value):
        raise ValueError("must be module:attribute or file.py:attribute")
    return value


class BuiltinApp(_Strict):
    """suanli's own ServerApp and ClientApp around an ordinary PyTorch model and dataset."""

    model: str
    dataset: str
    server_data: str | None = None
    batch_size: int = Field(10, ge=1)
    local_epochs: float = Field(1.0, gt=0, description="E; 0 < E < 1 trains a fraction of an epoch")
    full_batch: bool = Field(False, description="FedSGD: one gradient step on the whole partition")
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    optimizer: Literal["sgd", "adam"] = "sgd"

    @field_validator("model", "dataset")
    @classmethod
    def _refs(cls, v: str) -> str:
        return _check_ref(v)


class FlowerApp(_Strict):
    """A ServerApp and ClientApp the user wrote; `config` becomes the run config both read."""

    server_app: str
    client_app: str
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("server_app", "client_app")
    @classmethod
    def _refs(cls, v: str) -> str:
        return _check_ref(v)


class StrategySpec(_Strict):
    """A Flower strategy by its class name and its constructor's options."""

    name: str = "FedAvg"
    options: dict[str, Any] = Field(default_factory=dict)


class AggregatorSpec(_Strict):
    """A rule of suanli.federate.aggregate in place of the strategy's averaging; `f` Byzantine clients
    assumed among those of a round (checked against the rule's limit)."""

    name: str
    f: int = Field(0, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)


class SelectionSpec(_Strict):
    """Which clients train each round: Flower's uniform sampling, or suanli's compute-aware rule."""

    policy: Literal["random", "compute-aware"] = "random"
    deadline_s: float | None = Field(None, gt=0, description="replies later than this are not aggregated")
    explore: float = Field(0.1, ge=0, le=1)
    max_staleness_rounds: int | None = Field(None, ge=1, description="default: 2 N / clients per round")

    @model_validator(mode="after")
    def _deadline(self) -> SelectionSpec:
        if self.policy == "compute-aware" and self.deadline_s is None:
            raise BadInput(
                "selection.deadline_s", "(missing)", "compute-aware selection needs a deadline > 0"
            )
        return self


class PrivacySpec(_Strict):
    """Differential privacy through Flower's wrappers, accounted with opacus's RDP accountant."""

    mode: Literal["central", "central-client-clipping", "local"] = "central"
    noise_multiplier: float = Field(1.0, ge=0)
    clipping_norm: float = Field(1.0, gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_epsilon: float | None = None
    epsilon_per_round: float | None = Field(None, gt=0, description="local mode: each client's ε per round")

    @field_validator("max_epsilon")
    @classmethod
    def _budget(cls, v: float | None) -> float | None:
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ValueError("must be a privacy budget > 0")
        return v

    @model_validator(mode="after")
    def _local(self) -> PrivacySpec:
        if self.mode == "local" and self.epsilon_per_round is None:
            raise BadInput("privacy.epsilon_per_round", "(missing)", "local DP needs each round's ε > 0")
        return self


class Participant(_Strict):
    """One owner's node and its data partition (a path on that node). In simulation, `slowdown` (times
    the measured time) or `step_s` (seconds per local step, deterministic) emulate a slow device, and
    `attack` a Byzantine client, for testing selection and defences."""

    name: Name
    node: str | None = None
    data: str
    slowdown: float = Field(1.0, gt=0)
    step_s: float | None = Field(None, gt=0, description="simulation: a device's seconds per local step")
    attack: Literal["none", "sign_flip", "gaussian", "alie", "ipm", "label_flip"] = "none"


class SimulationSpec(_Strict):
    cpus: float | None = Field(None, gt=0, description="default: one per participant, at most the node's")
    cpus_per_client: float = Field(1.0, gt=0)


class DeploymentSpec(_Strict):
    """Without --simulation: where Flower's SuperLink (and the ServerApp) run, the address its SuperNodes
    reach it at (default: loopback and a free port, for a pool on one machine), what each SuperNode
    reserves, and how long the parts, scheduled as separate jobs, wait for each other."""

    superlink_node: str | None = None
    address: Address | None = Field(None, description="host:port")
    cpus_per_node: float = Field(0.5, gt=0, description="each SuperNode's CPUs (its ClientApps train there)")
    wait_s: float = Field(600.0, gt=0, description="how long the parts wait for each other to start")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address)


def _app_kind(value: Any) -> str:
    """A Flower app names its apps; anything else is read as the built-in app (and checked as one)."""
    if isinstance(value, dict) and ("server_app" in value or "client_app" in value):
        return "flower"
    return "flower" if isinstance(value, FlowerApp) else "builtin"


class FedSpec(_Strict):
    name: Name = "federation"
    rounds: int = Field(10, ge=1, le=100_000)
    app: Annotated[
        Annotated[BuiltinApp, Tag("builtin")] | Annotated[FlowerApp, Tag("flower")], Discriminator(_app_kind)
    ]
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    aggregator: AggregatorSpec | None = None
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    privacy: PrivacySpec | None = None
    participants: list[Participant] = Field(min_length=1, max_length=10_000)
    target_accuracy: float | None = Field(None, gt=0, le=1)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    seed: int = 0
    output: str | None = Field(None, description="where the final model's state dict is written (.pt)")
    project: str | None = None
    envs: dict[str, str] = Field(default_factory=dict, description="added to the federation's environment")
    base_dir: str = Field(".", description="set from the file's folder; relative paths start here")

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _unique(self) -> FedSpec:
        check_unique([p.name for p in self.participants], "participants", "participants")
        return self

    @property
    def builtin(self) -> bool:
        return isinstance(self.app, BuiltinApp)

    def path(self, value: str) -> Path:
        """A path of the file (data, server data, output), relative to the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def parse_fed_spec(data: object, *, source: str = "federation") -> FedSpec:
    if not isinstance(data, dict):
        what = type(data).__name__
        raise BadInput("federation", what, "must be a mapping with app and participants", source=source)
    try:
        return FedSpec.model_validate(data)
    except ValidationError as e:
        raise bad_input_from(e, FedSpec, root="federation") from None


def load_fed_spec(path: str | Path, *, overrides: dict[str, Any] | None = None) -> FedSpec:
    """Read and validate a federation file; relative paths in it are taken from the file's folder."""
    path = Path(path)
    source = str(path)
    data, text = read_yaml(path, "federation file")
    if isinstance(data, dict):
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        data["base_dir"] = str(path.resolve().parent)
    try:
        return parse_fed_spec(data, source=source)
    except BadInput as e:
        if e.source and e.source != "federation":
            raise
        raise with_line(e, source, text) from None
