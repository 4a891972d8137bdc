"""Verification by replication, for a pool shared by owners who do not trust each other (BOINC's
redundant computing, in the shape of a suanli job).

A job marked `verify: replicate` is stored as two replicas pinned to nodes of two different owners chosen
at random (owners the ledger has flagged are not chosen). Each replica writes its artifacts into its own
`$SUANLI_OUTPUT_DIR`; the agent that runs it hashes them into the attempt's ledger entry, so outputs are
compared by their signed digests, never copied. When both replicas have ended (`settle`, called by the
agent at each replica's end):

- equal outputs (every artifact bit for bit, or every final metric within `rtol`): verified;
- different outputs, or a replica that failed: a third replica runs on a node of a third owner;
- with three: the outputs that at least two replicas agree on are the result, and the owner of a replica
  outside that majority is flagged; no two agreeing: unresolved, nobody flagged.

Each verdict is a signed `verification` entry in the ledger (its replicas, their nodes, owners and
digests, and who was flagged); `suanli report --owners` counts each owner's flags.

What it catches: an owner returning a wrong or careless result (perturbed numbers, skipped work, a
faulty machine) on a job it shares with an honest owner. What it does not: two colluding owners returning
the same wrong result (random pairing makes it unlikely, not impossible), an owner who reads the job's
inputs or code (replication protects integrity, not confidentiality), and jobs that are not
deterministic (their replicas differ: compare metrics with a tolerance instead). It costs twice the
compute, plus a third run for each mismatch.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from suanli.core.errors import BadInput
from suanli.jobs.spec import JobSpec
from suanli.monitor.owners import flag_counts
from suanli.store.records import JobRecord, NodeRecord

if TYPE_CHECKING:
    from suanli.store.ledger import LedgerLog
    from suanli.store.store import Store

GROUP = "suanli/verify"
REPLICA = "suanli/replica"
OUTPUTS = ".replicas"  # under the job's workdir: one folder per replica
MKDIR = 'mkdir -p "$SUANLI_OUTPUT_DIR"'


@dataclass
class Replica:
    """One replica as the verdict sees it: who ran it, whether it ended well, and what it produced."""

    job_id: int
    owner: str | None
    node: str | None
    ok: bool
    outputs: dict[str, object] = field(default_factory=dict)


@dataclass
class Verdict:
    status: str  # "waiting", "verified", "rerun", "majority", "unresolved"
    flagged: list[str] = field(default_factory=list)
    agreed: list[int] = field(default_factory=list)  # job ids of the replicas whose result stands


def _fits(spec: JobSpec, node: NodeRecord) -> bool:
    from suanli.run.pool import check_fits_pool

    try:
        check_fits_pool(spec.model_copy(update={"nodes": [node.name], "num_nodes": 1}), [node])
    except BadInput:
        return False
    return True


def choose_nodes(
    spec: JobSpec, nodes: Sequence[NodeRecord], k: int, *, exclude_owners: Sequence[str | None] = (),
    flagged: Sequence[str] = (), rng: random.Random | None = None,
) -> list[NodeRecord]:  # fmt: skip
    """`k` nodes of `k` different owners, none in `exclude_owners` or `flagged`, each able to hold the
    job, chosen at random (so that no owner can arrange to be paired with a friend)."""
    rng = rng or random.SystemRandom()
    by_owner: dict[str | None, list[NodeRecord]] = {}
    for n in nodes:
        if n.up and n.owner not in exclude_owners and n.owner not in flagged and _fits(spec, n):
            by_owner.setdefault(n.owner, []).append(n)
    owners = sorted(by_owner, key=str)
    if len(owners) < k:
        everyone = sorted({str(n.owner) for n in nodes if n.up})
        raise BadInput(
            "verify", "replicate", f"needs nodes of {k} different owners that can hold the job; "
            f"the pool has {len(owners)} ({', '.join(map(str, owners)) or 'none'})",
            hint="owners of nodes up: " + (", ".join(everyone) or "none") + "; a node's owner is set in "
            "pool.yaml (owner) or SUANLI_NODE_OWNER" + ("; flagged owners are left out" if flagged else ""),
        )  # fmt: skip
    return [rng.choice(by_owner[o]) for o in rng.sample(owners, k)]


def replica_spec(spec: JobSpec, token: str, number: int, node: NodeRecord) -> JobSpec:
    """Replica `number` of the job, pinned to `node`, writing its artifacts into its own folder."""
    out = f"{OUTPUTS}/{token}-{number}"
    workdir = spec.workdir or "."
    setup = MKDIR + (f"\n{spec.setup}" if spec.setup else "")
    return spec.model_copy(update={
        "nodes": [node.name], "setup": setup, "artifacts": [f"{out}/{a}" for a in spec.artifacts],
        "envs": {**spec.envs, "SUANLI_OUTPUT_DIR": f"{workdir}/{out}", "SUANLI_REPLICA": str(number)},
        "labels": {**spec.labels, GROUP: token, REPLICA: str(number)},
    })  # fmt: skip


def original(replica: JobSpec) -> JobSpec:
    """The job as its user wrote it, from one of its replicas (to make another)."""
    labels = {k: v for k, v in replica.labels.items() if k not in (GROUP, REPLICA)}
    envs = {k: v for k, v in replica.envs.items() if k not in ("SUANLI_OUTPUT_DIR", "SUANLI_REPLICA")}
    setup = (replica.setup or "").removeprefix(MKDIR).removeprefix("\n") or None
    artifacts = [a.split("/", 2)[2] for a in replica.artifacts]
    return replica.model_copy(update={"nodes": [], "labels": labels, "envs": envs, "setup": setup,
                                      "artifacts": artifacts})  # fmt: skip


def replicas(spec: JobSpec, nodes: Sequence[NodeRecord], flagged: Sequence[str] = ()) -> list[JobSpec]:
    """The two replicas a `verify: replicate` job is stored as."""
    token = secrets.token_hex(6)
    chosen = choose_nodes(spec, nodes, 2, flagged=flagged)
    return [replica_spec(spec, token, i + 1, n) for i, n in enumerate(chosen)]


def same(a: Replica, b: Replica, rtol: float) -> bool:
    if a.outputs.keys() != b.outputs.keys() or not a.outputs:
        return False
    for key, x in a.outputs.items():
        y = b.outputs[key]
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=rtol, abs_tol=0.0) and not (math.isnan(x) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


def verdict(reps: Sequence[Replica], rtol: float = 0.0) -> Verdict:
    """What the replicas so far say (the decision `settle` acts on, and the benchmark replays)."""
    if len(reps) < 2:
        return Verdict("waiting")
    ok = [r for r in reps if r.ok]
    if len(reps) == 2:
        if len(ok) == 2 and same(ok[0], ok[1], rtol):
            return Verdict("verified", agreed=[r.job_id for r in ok])
        return Verdict("rerun")
    groups: list[list[Replica]] = []
    for r in ok:
        for g in groups:
            if same(g[0], r, rtol):
                g.append(r)
                break
        else:
            groups.append([r])
    best = max(groups, key=len, default=[])
    if len(best) < 2:
        return Verdict("unresolved")
    flagged = sorted({str(r.owner) for r in ok if r not in best and r.owner is not None})
    return Verdict("majority", flagged=flagged, agreed=[r.job_id for r in best])


# ---------------------------------------------------------------------------------------------------------
# The live side: the agent calls `settle` when a replica ends


def _outputs(ledger: LedgerLog, job: JobRecord) -> dict[str, object]:
    """What a replica made: its artifacts' digests from its last attempt's ledger entry (names relative
    to its own output folder), or its final metrics."""
    from suanli.store.ledger import summary

    spec = job.spec
    if spec.verify is not None and spec.verify.compare == "metrics":
        return {k: float(v) for k, v in job.metrics.items()}
    prefix = f"{OUTPUTS}/{spec.labels[GROUP]}-{spec.labels[REPLICA]}/"
    for index in reversed(ledger.find("job", str(job.id))):
        entry = ledger.entry(index)
        if entry["kind"] == "run":
            subjects = summary(index, entry["kind"], entry["body"])["subjects"]
            return {s["name"][len(prefix) :]: s["sha256"] for s in subjects if s["name"].startswith(prefix)}
    return {}


def settle(store: Store, ledger: LedgerLog, job: JobRecord) -> Verdict | None:
    """Act on a replica's end: wait for the others, run a third replica on a mismatch, record the verdict
    in the ledger (once). None for a job that is no replica."""
    from suanli.jobs.states import JobState

    token = job.spec.labels.get(GROUP)
    if token is None or job.spec.verify is None:
        return None
    listed = store.list_jobs(name=job.name, limit=2000, with_attempts=True)
    members = sorted((j for j in listed if j.spec.labels.get(GROUP) == token), key=lambda j: j.id)
    if not all(j.is_terminal for j in members):
        return Verdict("waiting")
    owners = {n.name: n.owner for n in store.nodes(usage=False)}
    reps = []
    for j in members:
        node = j.attempts[-1].node if j.attempts else None
        ok = j.state == JobState.SUCCEEDED
        reps.append(Replica(j.id, owners.get(node or ""), node, ok, _outputs(ledger, j) if ok else {}))
    decided = verdict(reps, job.spec.verify.rtol)
    if decided.status == "rerun":
        nodes = store.nodes()
        base = members[0].spec
        try:
            exclude = [r.owner for r in reps]
            third = choose_nodes(base, nodes, 1, exclude_owners=exclude, flagged=list(flag_counts(store)))[0]
        except BadInput:
            decided = Verdict("unresolved")
        else:
            from suanli.run.admission import admit

            admit(store, [replica_spec(original(base), token, 3, third)], nodes, key=f"verify:{token}:3")
            return decided
    _record(ledger, job.name, token, reps, decided)
    return decided


def _record(ledger: LedgerLog, name: str, token: str, reps: Sequence[Replica], decided: Verdict) -> None:
    import time

    from suanli.ledger import provenance as P
    from suanli.store.ledger import Item

    doc = {
        "group": token, "job": name, "status": decided.status, "flagged_owners": decided.flagged,
        "agreed_job_ids": decided.agreed,
        "replicas": [{"job_id": r.job_id, "node": r.node, "owner": r.owner, "ok": r.ok,
                      "outputs_digest": P.spec_digest({"outputs": r.outputs})} for r in reps],
    }  # fmt: skip
    statement = P.provenance(
        "verification", {f"verify/{token}": P.spec_digest(doc)}, external=doc, builder="suanli verify",
        invocation=f"verify/{token}", finished=time.time(),
    )  # fmt: skip
    ledger.append_statements([Item("verification", statement, source=f"verify:{token}")])
