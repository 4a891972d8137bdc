"""Admission: the checks a job passes before it is stored, in one place for the API and the agent."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.estimate.workload_spec import workload_from_dict
from suanli.jobs.spec import JobSpec
from suanli.run.pool import choose_fitting, discover_local_node
from suanli.store.records import NodeRecord
from suanli.store.store import Store


def pool(store: Store) -> list[NodeRecord]:
    """The pool's nodes; this machine is registered first if the pool is empty."""
    nodes = store.nodes()
    if not nodes:
        n = discover_local_node()
        store.register_node(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus)
        nodes = store.nodes()
    return nodes


def admit(
    store: Store,
    specs: Sequence[JobSpec],
    nodes: Sequence[NodeRecord] | None = None,
    key: str | None = None,
) -> list[int]:
    """Store the jobs as PENDING if every one has a valid `workload:` block (when it has one) and can
    ever fit the pool; all or none. Jobs for a Ray cluster are checked against it when they are
    placed (a placement group per attempt). A submission retried with the same idempotency `key`
    returns the ids stored the first time."""
    nodes = pool(store) if nodes is None else nodes
    chosen = []
    for spec in specs:
        if spec.workload:  # the scheduler times it with the estimator: a typo is named now, not ignored
            workload_from_dict(dict(spec.workload))
        # Of several accelerator choices, the first the pool can hold is the one it queues for.
        chosen.append(choose_fitting(spec, nodes) if spec.backend == "local" else spec)
    return store.submit_many(chosen, key)
