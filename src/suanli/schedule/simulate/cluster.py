"""Cluster specs for the simulator: `16x4` (16 nodes of 4 GPUs), `16x8xA100,8x4xV100` (node groups
with GPU types), or a YAML file:

    nodes:
      - {count: 16, gpus: 8, gpu_type: A100, cpus: 96, memory_gb: 1024}
      - {count: 8, gpus: 4, gpu_type: V100}

CPUs and memory default to 8 CPUs and 64 GiB per GPU (trace jobs rarely say what they used)."""

from __future__ import annotations

import re
from pathlib import Path

from suanli.core.errors import BadInput, read_text
from suanli.core.specfile import load_yaml_text
from suanli.schedule.policy import NodeState

GIB = 1024**3
_GROUP = re.compile(r"^\s*(\d{1,12})\s*[xX]\s*(\d{1,12})\s*(?:[xX]\s*([A-Za-z][\w.-]*))?\s*$")
FORMAT_HINT = "write NODESxGPUS[xTYPE][,...] such as 16x4 or 16x8xA100,8x4xV100, or a YAML file"
# Bounds checked before any node is built (a typo such as 1000000000x8 would otherwise exhaust memory):
# far above the largest clusters the public traces describe, and about 10 s to build and replay.
MAX_NODES = 100_000
MAX_GPUS_PER_NODE = 1024


def _check_size(groups: list[tuple[int, int, str | None, float | None, float | None]], spec: str) -> None:
    """Refuse a cluster larger than MAX_NODES nodes or MAX_GPUS_PER_NODE GPUs a node, before building it."""
    most_gpus = max(g[1] for g in groups)
    if most_gpus > MAX_GPUS_PER_NODE:
        allowed = f"must have at most {MAX_GPUS_PER_NODE} GPUs per node (this has {most_gpus})"
        raise BadInput("cluster", spec, allowed)
    total = sum(g[0] for g in groups)
    if total > MAX_NODES:
        raise BadInput("cluster", spec, f"must have at most {MAX_NODES} nodes in all (this has {total})")


def _nodes(groups: list[tuple[int, int, str | None, float | None, float | None]]) -> list[NodeState]:
    nodes: list[NodeState] = []
    seen: dict[str, int] = {}
    for count, gpus, gpu_type, cpus, mem_gb in groups:
        prefix = (gpu_type or "node").lower()
        for _ in range(count):
            k = seen.get(prefix, 0)
            seen[prefix] = k + 1
            nodes.append(
                NodeState(
                    name=f"{prefix}-{k:04d}",
                    gpus=gpus,
                    cpus=float(cpus if cpus is not None else max(8 * gpus, 8)),
                    memory_bytes=int((mem_gb if mem_gb is not None else max(64 * gpus, 64)) * GIB),
                    gpu_type=gpu_type,
                )
            )
    return nodes


def _looks_inline(text: str) -> bool:
    return all(_GROUP.match(part) for part in text.split(","))


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # a name too long to be a path
        return False


def parse_cluster(spec: str) -> list[NodeState]:
    """Nodes described by `spec` (inline groups or a YAML file path)."""
    text = spec.strip()
    if text.endswith((".yaml", ".yml")) or (not _looks_inline(text) and _is_file(text)):
        return _from_yaml(Path(text))
    groups = []
    for part in text.split(","):
        m = _GROUP.match(part)
        if not m:
            raise BadInput("cluster", spec, f"cannot parse {part.strip()!r}", hint=FORMAT_HINT)
        count, gpus = int(m.group(1)), int(m.group(2))
        if count < 1:
            raise BadInput("cluster", spec, "each node group needs at least 1 node", hint=FORMAT_HINT)
        groups.append((count, gpus, m.group(3).upper() if m.group(3) else None, None, None))
    if not any(g[1] for g in groups):
        raise BadInput("cluster", spec, "the cluster has no GPUs", hint=FORMAT_HINT)
    _check_size(groups, spec)
    return _nodes(groups)


def _from_yaml(path: Path) -> list[NodeState]:

    text = read_text(path, "cluster")
    doc = load_yaml_text(text, str(path))  # bounded: size, depth and aliases are checked first
    entries = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BadInput(
            "cluster", str(path), "needs a non-empty 'nodes:' list of node groups", hint=FORMAT_HINT
        )
    groups = []
    for i, entry in enumerate(entries):
        where = f"nodes[{i}]"
        if not isinstance(entry, dict):
            raise BadInput(where, entry, "must be a mapping with count and gpus", source=str(path))
        unknown = set(entry) - {"count", "gpus", "gpu_type", "cpus", "memory_gb"}
        if unknown:
            raise BadInput(
                f"{where}.{sorted(unknown)[0]}",
                entry,
                "allowed keys: count, gpus, gpu_type, cpus, memory_gb",
                source=str(path),
            )
        try:
            count, gpus = int(entry.get("count", 1)), int(entry["gpus"])
            cpus = float(entry["cpus"]) if "cpus" in entry else None
            mem = float(entry["memory_gb"]) if "memory_gb" in entry else None
        except (KeyError, TypeError, ValueError):
            raise BadInput(where, entry, "needs integer count and gpus", source=str(path)) from None
        if count < 1 or gpus < 0:
            raise BadInput(where, entry, "count must be >= 1 and gpus >= 0", source=str(path))
        if (cpus is not None and not cpus > 0) or (mem is not None and not mem > 0):
            raise BadInput(where, entry, "cpus and memory_gb must be > 0", source=str(path))
        gpu_type = entry.get("gpu_type")
        groups.append((count, gpus, str(gpu_type).upper() if gpu_type else None, cpus, mem))
    _check_size(groups, str(path))
    return _nodes(groups)
