"""The package's shape: imports go one way (DESIGN.md), and the public API is pinned."""

from __future__ import annotations

import ast
from pathlib import Path

import suanli

SRC = Path(suanli.__file__).parent

# Each layer may import only from these layers of ours (and itself).
ALLOWED = {
    "core": set(),
    "catalog": {"core"},
    "jobs": {"core", "catalog"},
    "estimate": {"core", "catalog"},
    "plan": {"core", "catalog", "estimate", "jobs"},
    "store": {"core", "jobs", "ledger"},
    "schedule": {"core", "catalog", "jobs", "estimate"},
    "run": {"core", "catalog", "jobs", "store", "schedule", "estimate", "plan", "monitor", "ledger"},
    "train": {"core", "ledger"},
    "compress": {"core", "catalog", "estimate", "ledger"},
    "monitor": {"core", "catalog", "jobs", "store", "plan", "ledger"},
    "ledger": {"core"},
    "tune": {"core", "catalog", "jobs", "store", "schedule", "run", "estimate", "api", "monitor", "ledger"},
    "federate": {"core", "catalog", "jobs", "store", "schedule", "run", "estimate", "api", "monitor",
                 "ledger", "train"},
    "serve": {"core", "jobs", "store", "api"},
    "fuse": {"core", "federate", "compress"},
    "api": {"core", "catalog", "jobs", "store", "schedule", "run", "estimate", "plan", "monitor"},
    "flow": {"core", "catalog", "jobs", "store", "schedule", "run", "estimate", "plan", "api"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "suanli" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_imports_go_one_way():
    wrong = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        layer = rel.parts[0].removesuffix(".py")
        if layer not in ALLOWED:
            continue  # cli, server, __init__, __main__ sit on top
        for target in _imports(path) - ALLOWED[layer] - {layer}:
            wrong.append(f"{rel} imports suanli.{target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_public_api_is_pinned():
    assert suanli.__all__ == [
        "BadInput",
        "Client",
        "JobSpec",
        "JobState",
        "Resources",
        "Stage",
        "SuanliError",
        "estimate",
        "estimate_infer",
        "estimate_train",
        "load_spec",
        "run",
    ]
    for name in suanli.__all__:
        assert getattr(suanli, name) is not None
    # suanli.estimate is both the estimator package and a call
    result = suanli.estimate(params=7e9, tokens=1e12, accelerator="H100", count=64)
    assert result.to_json()["device_hours"] > 0
    assert callable(suanli.estimate.layout.gemm_size)
