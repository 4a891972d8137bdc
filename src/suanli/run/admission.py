"""Admission: the checks a job passes before it is stored, in one place for the API and the agent."""

from __future__ import annotations

from collections.abc import Sequence

from suanli.core.workload import workload_from_dict
from suanli.jobs.spec import JobSpec
from suanli.monitor.advice import HISTORY_RUNS, Advice, cpu_advice, gib, memory_advice
from suanli.monitor.owners import flag_counts
from suanli.run import verify
from suanli.run.pool import choose_fitting, discover_local_node, load_pool_config
from suanli.run.quotas import QuotaGate, check_can_ever_fit
from suanli.store.monitoring import MonitorStore
from suanli.store.records import NodeRecord
from suanli.store.store import Store


def pool(store: Store) -> list[NodeRecord]:
    """The pool's nodes; this machine is registered first if no machine is (a new database, or one
    only a Ray pool used)."""
    nodes = store.nodes()
    if not any(n.pool == "local" for n in nodes):
        n = discover_local_node()
        owner = load_pool_config().owner_of(n.name)
        store.register_node(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus, owner)
        nodes = store.nodes()
    return nodes


def advise(store: Store, specs: Sequence[JobSpec]) -> tuple[list[JobSpec], list[list[Advice]]]:
    """Right-sizing advice for each spec from the measured use of its earlier runs (same name and
    user); a spec with `right_size: true` gets the smaller memory request (never a larger one: a job
    whose request was too small is told so, not silently given more than it asked for)."""
    history = MonitorStore(store).history({(s.name, s.user) for s in specs}, HISTORY_RUNS)
    out_specs, out_advice = [], []
    for spec in specs:
        runs = history.get((spec.name, spec.user), [])
        advice = [a for a in (
            memory_advice(spec.resources.memory_bytes, [r["rss_peak_bytes"] for r in runs]),
            cpu_advice(spec.resources.cpus, [r["cores_used"] for r in runs]),
        ) if a is not None]  # fmt: skip
        notes = []
        for a in advice:
            if a.field == "resources.memory" and spec.right_size and a.recommended < a.requested:
                resources = spec.resources.model_copy(update={"memory_bytes": int(a.recommended)})
                spec = spec.model_copy(update={"resources": resources})
                notes.append(f"right_size: resources.memory lowered to {gib(a.recommended)}: {a.message}")
            else:
                notes.append(f"advice: {a.message}")
        if notes:
            spec = spec.model_copy(update={"notes": [*spec.notes, *notes]})
        out_specs.append(spec)
        out_advice.append(advice)
    return out_specs, out_advice


def admit(
    store: Store,
    specs: Sequence[JobSpec],
    nodes: Sequence[NodeRecord] | None = None,
    key: str | None = None,
    audit: dict | None = None,
    advice: list[list[Advice]] | None = None,
) -> list[int]:
    """Store the jobs as PENDING if every one has a valid `workload:` block (when it has one) and can
    ever fit the pool (its nodes that are UP); all or none. A submission retried with the same
    idempotency `key` returns the ids stored the first time. `advice` receives each job's right-sizing
    advice."""
    nodes = pool(store) if nodes is None else nodes
    gate = QuotaGate.load(store, with_usage=False)  # the limits: usage is the scheduler's to count
    specs, found = advise(store, specs)
    if advice is not None:
        advice.extend(found)
    chosen, firsts = [], []
    for spec in specs:
        if spec.workload:  # the scheduler times it with the estimator: a typo is named now, not ignored
            workload_from_dict(spec.workload.to_dict())
        # Of several accelerator choices, the first the pool can hold is the one it queues for.
        fitted = choose_fitting(spec, nodes)
        check_can_ever_fit(gate, fitted)
        firsts.append(len(chosen))
        if fitted.verify is not None and verify.GROUP not in fitted.labels:  # two replicas, two owners
            # Owners are across the whole pool, whichever agent admits it (each schedules its own node).
            chosen += verify.replicas(fitted, store.nodes(), list(flag_counts(store)))
        else:
            chosen.append(fitted)
    ids = store.submit_many(chosen, key, audit)
    return [ids[i] for i in firsts]  # a replicated job is known by its first replica
