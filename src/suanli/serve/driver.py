"""`suanli serve`: check an ensemble completely, start its replicas and its front as suanli jobs, wait until
it answers.

    from suanli import Client
    from suanli.serve.driver import prepare, start
    from suanli.serve.spec import load_ensemble_spec
    spec = load_ensemble_spec("ensemble.yaml")
    service = start(spec, client=Client(), jobs=prepare(spec, Client()))   # service.endpoint: http://...

Everything that can be refused is refused before a job is stored: the file, each replica's node (a node of
the pool that is up), its model files (there), room for every part at once, addresses every part can
reach, and the models themselves (loaded and run on a zero batch in a child process, as that imports
torch or onnxruntime; they must answer the same classes). Then one job per replica, pinned to its node,
and the front's job are submitted in one transaction. This module imports neither torch, onnxruntime nor
FastAPI.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from suanli.api import Client
from suanli.core.childcheck import ask
from suanli.core.errors import BadInput, SuanliError, unknown_node
from suanli.core.net import free_port, is_loopback
from suanli.jobs.spec import JobSpec, parse_spec
from suanli.serve.spec import INDEX_ENV, SPEC_ENV, EnsembleSpec
from suanli.store.records import NodeRecord

LABEL = "suanli/serve"
CHECK_TIMEOUT_S = 300.0
POLL_S = 0.2


@dataclass
class ServeResult:
    name: str
    endpoint: str
    front_job_id: int
    job_ids: list[int]
    replicas: list[dict] = field(default_factory=list)
    state: str = "SUBMITTED"  # READY once the front answers with its replicas loaded
    live: int | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name, "endpoint": self.endpoint, "state": self.state,
            "front_job_id": self.front_job_id, "job_ids": self.job_ids, "live": self.live,
            "replicas": self.replicas,
            "stop": f"suanli serve --down {self.name}",
        }  # fmt: skip


def check_nodes(spec: EnsembleSpec, nodes: list[NodeRecord]) -> None:
    """Each replica's node (and the front's) is a node of the pool that is up, and its model files are
    there (the pool's nodes read the same paths as this machine: one machine, or a shared file system)."""
    up = {n.name for n in nodes if n.up}
    known = {n.name for n in nodes}
    places = [(f"replicas[{i}].node", r.node) for i, r in enumerate(spec.replicas)]
    for where, node in [*places, ("front.node", spec.front.node)]:
        if node is None or node in up:
            continue
        raise unknown_node(where, node, up, "is a node of the pool that is down" if node in known
                           else "is not a node of the pool")  # fmt: skip
    for i, r in enumerate(spec.replicas):
        for path in spec.model_files(r):
            if not path.is_file():
                where = f"on node {r.node}" if r.node else "here"
                field_name = "weights" if r.weights and path == spec.path(r.weights) else "model"
                raise BadInput(f"replicas[{i}].{field_name}", getattr(r, field_name),
                               f"is not a file {where}", hint=f"looked in {path}")  # fmt: skip


def check_placement(spec: EnsembleSpec, nodes: list[NodeRecord]) -> None:
    """Addresses every part can reach, and room for every part at once (the front waits for them all)."""
    up = [n for n in nodes if n.up]
    used = {r.node for r in spec.replicas} | {spec.front.node}
    spread = len(up) > 1 and (None in used or len(used) > 1)
    parts = [(f"replicas[{i}].address", r.address) for i, r in enumerate(spec.replicas)]
    for where, address in [*parts, ("front.address", spec.front.address)]:
        if spread and is_loopback(address):
            raise BadInput(
                where, address or "(loopback)",
                "must be an address every node can reach when the parts may run on different nodes",
                hint="state host:port of the part's node, or pin every part to one node",
            )  # fmt: skip
    need = sum(r.cpus for r in spec.replicas) + spec.front.cpus
    total = sum(n.cpus for n in up)
    if need > total + 1e-9:
        raise BadInput("replicas[].cpus", f"{need:g} in all",
                       f"is more than the pool's {total:g} CPUs; every replica and the front run at once",
                       hint="lower replicas[].cpus or front.cpus")  # fmt: skip
    by_node: dict[str, float] = {}
    for r in spec.replicas:
        if r.node:
            by_node[r.node] = by_node.get(r.node, 0.0) + r.cpus
    if spec.front.node:
        by_node[spec.front.node] = by_node.get(spec.front.node, 0.0) + spec.front.cpus
    for n in up:
        if by_node.get(n.name, 0.0) > n.cpus + 1e-9:
            raise BadInput("replicas[].node", n.name, f"is given {by_node[n.name]:g} CPUs of parts; it has "
                           f"{n.cpus:g}", hint="spread the replicas, or lower their cpus")  # fmt: skip


def check_models(spec: EnsembleSpec) -> int:
    """Each distinct model loads and answers a zero batch, all with the same classes, checked in a child
    process (it imports onnxruntime or torch). Returns the number of classes."""
    env = {**os.environ, SPEC_ENV: spec.model_dump_json()}
    doc = ask("suanli.serve.models", env=env, cwd=spec.base_dir, timeout_s=CHECK_TIMEOUT_S,
              field="replicas[].model", what="the ensemble's models")  # fmt: skip
    return int(doc["classes"])


def resolve(spec: EnsembleSpec) -> EnsembleSpec:
    """The spec with every address stated: 127.0.0.1 and a free port where the file gave none."""
    ports: set[int] = set()

    def fresh() -> str:
        while (port := free_port()) in ports:
            pass
        ports.add(port)
        return f"127.0.0.1:{port}"

    replicas = [r if r.address else r.model_copy(update={"address": fresh()}) for r in spec.replicas]
    front = spec.front if spec.front.address else spec.front.model_copy(update={"address": fresh()})
    return spec.model_copy(update={"replicas": replicas, "front": front})


def jobs_of(spec: EnsembleSpec) -> list[JobSpec]:
    """One job per replica, pinned to its node, and the front's job last (`spec` resolved)."""
    resolved = spec.model_dump_json()
    base = {SPEC_ENV: resolved, "PYTHONUNBUFFERED": "1"}

    def job(name: str, module: str, cpus: float, node: str | None, envs: dict) -> JobSpec:
        doc = {
            "name": name, "run": f"{sys.executable} -m suanli.serve.{module}", "workdir": spec.base_dir,
            "envs": {**spec.envs, **base, **envs}, "resources": {"cpus": cpus},
            "nodes": [node] if node else [], "labels": {LABEL: spec.name}, "grace_period": 5,
        }  # fmt: skip
        if spec.project:
            doc["project"] = spec.project
        return parse_spec(doc, source="ensemble")

    jobs = [
        job(f"serve-{spec.name}-{r.name}", "replica", r.cpus, r.node, {INDEX_ENV: str(i)})
        for i, r in enumerate(spec.replicas)
    ]
    jobs.append(job(f"serve-{spec.name}", "front", spec.front.cpus, spec.front.node, {}))
    return jobs


def prepare(spec: EnsembleSpec, client: Client) -> list[JobSpec]:
    """Every check, then the jobs to submit, the front last (nothing is stored here)."""
    nodes = client.pool()
    check_nodes(spec, nodes)
    check_placement(spec, nodes)
    running = running_jobs(client, spec.name)
    if running:
        jobs = ", ".join(map(str, running))
        hint = f"suanli serve --down {spec.name}, or give the ensemble another name"
        raise BadInput("name", spec.name, f"is already being served (jobs {jobs})", hint=hint)
    check_models(spec)
    return jobs_of(resolve(spec))


def _spec_of(job: JobSpec) -> EnsembleSpec:
    return EnsembleSpec.model_validate_json(job.envs[SPEC_ENV])


def _get_json(url: str, timeout: float = 1.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None


def start(
    spec: EnsembleSpec, *, client: Client, jobs: list[JobSpec] | None = None, wait: bool = True
) -> ServeResult:
    """Submit the ensemble's jobs at once (`jobs` from `prepare`, else prepared here); with `wait`, return
    once the front answers with its replicas loaded. If a part fails or the front is not ready within
    wait_s, every part is cancelled and SuanliError says why."""
    jobs = jobs or prepare(spec, client)
    resolved = _spec_of(jobs[-1])
    ids = client.submit_many(jobs)
    result = ServeResult(
        spec.name, f"http://{resolved.front.address}", ids[-1], ids,
        [{"name": r.name, "node": r.node, "address": r.address, "model": r.model, "weight": r.weight,
          "attack": r.attack, "job_id": i} for r, i in zip(resolved.replicas, ids, strict=False)],
    )  # fmt: skip
    if not wait:
        return result
    try:
        health = wait_ready(client, result, resolved.wait_s)
    except BaseException:
        for i in ids:
            client.cancel(i, wait=False)
        raise
    result.state, result.live = "READY", int(health["live"])
    return result


def wait_ready(client: Client, result: ServeResult, wait_s: float) -> dict:
    """The front's /health once it is ready; SuanliError as soon as any part has ended."""
    deadline = time.monotonic() + wait_s + 30.0  # the front itself gives its replicas wait_s
    while time.monotonic() < deadline:
        for i in result.job_ids:
            record = client.get(i)
            if record.is_terminal:
                tail = "".join(client.follow(i, follow=False)).strip().splitlines()[-1:] or [""]
                why = record.reason or tail[0][:200]
                raise SuanliError(
                    f"serving {result.name}: job {i} ({record.name}) ended {record.state}: {why}"
                )
        health = _get_json(f"{result.endpoint}/health")
        if health and health.get("ready"):
            return health
        time.sleep(POLL_S)
    raise SuanliError(f"serving {result.name}: the front was not ready within {wait_s:g} s")


def running_jobs(client: Client, name: str) -> list[int]:
    """The ids of the service `name`'s jobs that have not ended."""
    found = []
    for record in client.jobs(all=True, limit=1000, name="serve-"):
        if not record.is_terminal and record.spec.labels.get(LABEL) == name:
            found.append(record.id)
    return sorted(found)


def down(name: str, client: Client) -> list[int]:
    """Stop the service `name`: cancel its front and replicas; returns the jobs cancelled."""
    ids = running_jobs(client, name)
    if not ids:
        raise BadInput("--down", name, "is not being served", hint="suanli status lists the running jobs")
    for i in reversed(ids):  # the front first: nothing is asked of a replica that is going
        client.cancel(i, wait=False)
    for i in ids:
        client.wait(i, timeout_s=60.0)
    return ids
