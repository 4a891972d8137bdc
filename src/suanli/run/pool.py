"""This machine as a node of the pool, and the check that a request can ever fit the pool."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from suanli.catalog.accelerators import accelerator_from_device_name
from suanli.core.errors import BadInput
from suanli.core.resources import Resources
from suanli.jobs.spec import JobSpec
from suanli.store.records import NodeRecord


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
    """BadInput, naming what the pool has, when no set of nodes could ever hold the job."""
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
