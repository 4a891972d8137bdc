"""The pool: this machine (the embedded default) or a Ray cluster (SUANLI_HOME/pool.yaml,
RAY_ADDRESS or `--ray-address`), and the check that a request can ever fit it.

    pool:
      ray: 10.0.0.1:6379            # the cluster's GCS address, ray://HOST:PORT, or auto
      accelerators:                 # optional: GPU type per node name, address or Ray node id, for
        10.0.0.7: A100-80GB         # nodes that declare none (otherwise Ray's accelerator_type:*)
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from suanli.catalog.accelerators import accelerator_from_device_name, canonical_accelerator
from suanli.core.errors import BadInput, unknown_node
from suanli.core.resources import Resources
from suanli.core.specfile import bad_input_from, read_yaml, with_line
from suanli.jobs.spec import JobSpec
from suanli.store.paths import home
from suanli.store.records import NodeRecord

_ADDRESS = re.compile(r"(ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
CONNECT_CHECK_S = 3.0


class PoolConfig(BaseModel):
    """Where jobs run: `ray` None is this machine alone."""

    model_config = ConfigDict(extra="forbid")

    ray: str | None = None
    accelerators: dict[str, str] = Field(default_factory=dict)
    # Compute shared between owners: the project that brings this pool's nodes (SUANLI_NODE_OWNER
    # overrides it), and per node where a Ray pool's nodes belong to different owners.
    owner: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    owners: dict[str, str] = Field(default_factory=dict)

    def owner_of(self, node: str) -> str | None:
        return self.owners.get(node) or os.environ.get("SUANLI_NODE_OWNER") or self.owner

    @field_validator("ray")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or _ADDRESS.fullmatch(value):
            return value
        raise ValueError("must be HOST:PORT, ray://HOST:PORT or auto")

    @field_validator("accelerators")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        return {n: canonical_accelerator(kind, f"pool.accelerators.{n}") for n, kind in value.items()}


class _PoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: PoolConfig = Field(default_factory=PoolConfig)


def load_pool_config(ray_address: str | None = None) -> PoolConfig:
    """The pool: `ray_address` (--ray-address) over RAY_ADDRESS over SUANLI_HOME/pool.yaml."""
    path = home() / "pool.yaml"
    config = PoolConfig()
    if path.exists():
        data, text = read_yaml(path, "pool config")
        try:
            config = _PoolFile.model_validate(data or {}).pool
        except ValidationError as e:
            raise with_line(bad_input_from(e, _PoolFile, root="pool.yaml"), str(path), text) from None
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if address:
        field = "--ray-address" if ray_address else "RAY_ADDRESS"
        try:
            config = config.model_copy(update={"ray": PoolConfig(ray=address).ray})
        except ValidationError:
            raise BadInput(field, address, "must be HOST:PORT, ray://HOST:PORT or auto") from None
    return config


def check_reachable(address: str, field: str = "pool.ray") -> None:
    """BadInput in one line when nothing answers at a Ray address (rather than Ray's own minute of
    retries and a page of log). `auto` finds a cluster started on this machine; Ray checks that."""
    match = _ADDRESS.fullmatch(address)
    if match is None:
        return
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        with socket.create_connection((host, port), timeout=CONNECT_CHECK_S):
            return
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise BadInput(field, address, f"no Ray cluster answers there ({why})") from None


@dataclass(frozen=True)
class LocalNode:
    name: str
    cpus: float
    memory_bytes: int
    accelerator: str | None
    gpus: int


def _nvml_gpus() -> tuple[str | None, int]:
    """(catalog name, count) of this machine's NVIDIA GPUs through NVML; (None, 0) without a driver."""
    try:
        import pynvml
    except ImportError:
        return None, 0
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None, 0
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return None, 0
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        name = name.decode() if isinstance(name, bytes) else name
        return accelerator_from_device_name(name), count
    finally:
        pynvml.nvmlShutdown()


def discover_local_node() -> LocalNode:
    import psutil

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    accelerator, gpus = _nvml_gpus()
    return LocalNode(
        name=os.environ.get("SUANLI_NODE_NAME") or socket.gethostname(),
        cpus=float(cpus),
        memory_bytes=psutil.virtual_memory().total,
        accelerator=accelerator,
        gpus=gpus,
    )


def node_resources(node: NodeRecord) -> Resources:
    return Resources(node.cpus, node.memory_bytes, {node.accelerator: node.gpus} if node.accelerator else {})


def check_fits_pool(spec: JobSpec, nodes: Sequence[NodeRecord]) -> None:
    """BadInput, naming what the pool has, when no set of its nodes (those UP) could ever hold the job."""
    nodes = [n for n in nodes if n.up]
    if spec.nodes:
        names = {n.name for n in nodes}
        for i, name in enumerate(spec.nodes):
            if name not in names:
                raise unknown_node(f"nodes[{i}]", name, names, "is not a node of the pool that is up")
        nodes = [n for n in nodes if n.name in spec.nodes]
    want: Resources = spec.resources.to_resources()
    most_cpus = max((n.cpus for n in nodes), default=0)
    if spec.num_workers > most_cpus:
        raise BadInput(
            "num_workers",
            spec.num_workers,
            f"each worker needs a CPU; the largest node has {most_cpus:g}",
            hint="lower num_workers or use more nodes (num_nodes)",
        )
    fitting = [n for n in nodes if want.fits_in(node_resources(n))]
    if len(fitting) >= spec.num_nodes:
        return
    has = "; ".join(f"{n.name}: {node_resources(n).describe()}" for n in nodes)
    asked = want.describe() + (f" on each of {spec.num_nodes} nodes" if spec.num_nodes > 1 else "")
    field = "num_nodes" if fitting else "resources"
    value = spec.num_nodes if fitting else asked
    allowed = (
        f"{len(fitting)} node(s) can hold {want.describe()}"
        if fitting
        else "is larger than any node in the pool"
    )
    raise BadInput(field, value, allowed, hint=f"the pool has {len(nodes)} node(s): {has or 'none'}")


def choose_fitting(spec: JobSpec, nodes: Sequence[NodeRecord]) -> JobSpec:
    """`spec` with the first of its accelerator choices (SkyPilot's `{L4: 8, A100: 8}` or a preference
    list) that the pool could ever hold as its `resources.accelerators`; BadInput naming every choice
    when none could. A spec with one choice is only checked."""
    choices = spec.resources.accelerator_choices
    if len(choices) <= 1:
        check_fits_pool(spec, nodes)
        return spec
    for choice in choices:
        resources = spec.resources.model_copy(update={"accelerators": dict(choice)})
        candidate = spec.model_copy(update={"resources": resources})
        try:
            check_fits_pool(candidate, nodes)
        except BadInput:
            continue
        return candidate
    try:
        check_fits_pool(spec, nodes)
    except BadInput as e:
        asked = ", ".join(":".join(f"{k}:{v}" for k, v in c.items()) for c in choices)
        raise BadInput("resources.accelerators", f"any of {asked}", "none of these fits any node of the pool",
                       hint=e.hint) from None  # fmt: skip
    return spec
