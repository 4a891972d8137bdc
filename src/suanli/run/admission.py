"""Admission: the checks a job passes before it is stored, in one place for the API and the agent."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.core.workload import workload_from_dict
from suanli.jobs.spec import JobSpec
from suanli.run.pool import choose_fitting, discover_local_node
from suanli.run.quotas import QuotaGate, check_can_ever_fit
from suanli.store.records import NodeRecord
from suanli.store.store import Store


def pool(store: Store) -> list[NodeRecord]:
    """The pool's nodes; this machine is registered first if no machine is (a new database, or one
    only a Ray pool used)."""
    nodes = store.nodes()
    if not any(n.pool == "local" for n in nodes):
        n = discover_local_node()
        store.register_node(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus)
        nodes = store.nodes()
    return nodes


def admit(
    store: Store,
    specs: Sequence[JobSpec],
    nodes: Sequence[NodeRecord] | None = None,
    key: str | None = None,
    audit: dict | None = None,
) -> list[int]:
    """Store the jobs as PENDING if every one has a valid `workload:` block (when it has one) and can
    ever fit the pool (its nodes that are UP); all or none. A submission retried with the same
    idempotency `key` returns the ids stored the first time."""
    nodes = pool(store) if nodes is None else nodes
    gate = QuotaGate.load(store, with_usage=False)  # the limits: usage is the scheduler's to count
    chosen = []
    for spec in specs:
        if spec.workload:  # the scheduler times it with the estimator: a typo is named now, not ignored
            workload_from_dict(spec.workload.to_dict())
        # Of several accelerator choices, the first the pool can hold is the one it queues for.
        chosen.append(choose_fitting(spec, nodes))
        check_can_ever_fit(gate, chosen[-1])
    return store.submit_many(chosen, key, audit)
