"""`suanli federate`: check a federation completely, run it as a suanli job on the pool, report its rounds.

    from suanli import Client
    from suanli.federate.driver import federate
    from suanli.federate.spec import load_fed_spec
    result = federate(load_fed_spec("fed.yaml"), client=Client())

Everything that can be refused is refused before a job is stored: the file, the participants' nodes and
data, the strategy and its options, the aggregator's tolerance, the privacy budget, and the app's imports
(checked in a child process, as they import torch, Flower and the user's code). The federation is then
one job (Flower's simulation engine inside, sized to the CPUs the scheduler grants), so it has a log,
metrics per round, retries and cancel like any other. This module imports neither torch nor Flower.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from suanli.api import Client
from suanli.core.childcheck import ask
from suanli.core.errors import BadInput, SuanliError, unknown_node
from suanli.core.net import free_port
from suanli.federate.runner import CPUS_ENV, SPEC_ENV
from suanli.federate.spec import BuiltinApp, FedSpec
from suanli.jobs.spec import JobSpec, parse_spec
from suanli.store.records import JobRecord, NodeRecord

POLL_SECONDS = 0.5
PARTS_GRACE_S = 60.0  # a SuperNode notices the SuperLink has gone within a few probes
CHECK_TIMEOUT_S = 300.0
ROUND_FIELDS = (
    "accuracy", "loss", "train_loss", "clients_used", "clients_late", "round_time_s", "clock_s",
    "round_wall_s", "wall_s", "bytes", "epsilon",
)  # fmt: skip

RoundFn = Callable[[dict], None]


@dataclass
class FederationResult:
    name: str
    job_id: int
    state: str
    simulation: bool
    cpus: float
    rounds: list[dict] = field(default_factory=list)
    stopped_because: str | None = None
    accuracy: float | None = None
    epsilon: float | None = None
    output: str | None = None
    error: str | None = None
    job_ids: list[int] = field(default_factory=list)  # every job of the federation, the followed one last
    traffic_bytes: int | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name, "job_id": self.job_id, "state": self.state, "simulation": self.simulation,
            "cpus": self.cpus, "rounds_run": len(self.rounds), "stopped_because": self.stopped_because,
            "accuracy": self.accuracy, "epsilon": self.epsilon, "output": self.output, "error": self.error,
            "job_ids": self.job_ids, "traffic_bytes": self.traffic_bytes, "rounds": self.rounds,
        }  # fmt: skip


def _up_nodes(client: Client) -> list[NodeRecord]:
    return [n for n in client.nodes() if n.up]  # a team server's client has nodes() too


def check_participants(spec: FedSpec, nodes: list[NodeRecord]) -> None:
    """Each participant's node is a node of the pool, and its data is there."""
    names = {n.name for n in nodes}
    for i, p in enumerate(spec.participants):
        if p.node is not None and p.node not in names:
            raise unknown_node(f"participants[{i}].node", p.node, names)
        path = spec.path(p.data)
        if not path.exists():
            where = f"on node {p.node}" if p.node else "here"
            raise BadInput(
                f"participants[{i}].data", p.data, f"holds no data {where}", hint=f"looked in {path}"
            )
    if (
        isinstance(spec.app, BuiltinApp)
        and spec.app.server_data
        and not spec.path(spec.app.server_data).exists()
    ):
        raise BadInput("app.server_data", spec.app.server_data, "must be an existing file",
                       hint=f"looked in {spec.path(spec.app.server_data)}")  # fmt: skip


def check_app(spec: FedSpec) -> None:
    """The checks that import torch, Flower or the user's code, in a child process."""
    import importlib.util

    missing = [m for m in ("torch", "flwr", "opacus") if importlib.util.find_spec(m) is None]
    if missing:
        raise SuanliError(f"federated learning needs {', '.join(missing)}: pip install 'suanli[federate]'")
    env = {**os.environ, SPEC_ENV: spec.model_dump_json()}
    ask("suanli.federate.runner", env=env, cwd=spec.base_dir, timeout_s=CHECK_TIMEOUT_S, field="app",
        what="the federation")  # fmt: skip


def simulation_cpus(spec: FedSpec, nodes: list[NodeRecord]) -> float:
    """The CPUs the simulation asks for: the file's, else one per client, at most the largest node's."""
    if spec.simulation.cpus is not None:
        return spec.simulation.cpus
    largest = max((n.cpus for n in nodes), default=1.0)
    return float(max(1, min(len(spec.participants) * spec.simulation.cpus_per_client, largest)))


def job_spec(spec: FedSpec, cpus: float) -> JobSpec:
    """The simulation's job: the runner with the spec and the grant in its environment."""
    doc = {
        "name": f"fed-{spec.name}",
        "run": f"{sys.executable} -m suanli.federate.runner",
        "workdir": spec.base_dir,
        "envs": {
            **spec.envs,
            SPEC_ENV: spec.model_dump_json(),
            CPUS_ENV: f"{cpus:g}",
            "PYTHONUNBUFFERED": "1",
        },
        "resources": {"cpus": cpus},
        "labels": {"suanli/federation": spec.name},
        "artifacts": [str(spec.path(spec.output))] if spec.output else [],
        "private": [str(spec.path(p.data)) for p in spec.participants],
    }
    if spec.project:
        doc["project"] = spec.project
    return parse_spec(doc, source="federation")


SUPERLINK_CPUS = 0.1  # Flower's SuperLink relays messages; its ServerApp is the server job's
SERVER_CPUS = 0.25  # the ServerApp aggregates and evaluates


def check_deployment(spec: FedSpec, nodes: list[NodeRecord]) -> None:
    """What deploying needs besides the participants: no emulation, one address every part can reach,
    and room for every part at once (they are separate jobs that wait for each other)."""
    for i, p in enumerate(spec.participants):
        for name, value, plain in (("attack", p.attack, "none"), ("slowdown", p.slowdown, 1.0),
                                   ("step_s", p.step_s, None)):  # fmt: skip
            if value != plain:
                raise BadInput(f"participants[{i}].{name}", value, "is emulated in simulation only",
                               hint="run with --simulation, or remove it")  # fmt: skip
    d = spec.deployment
    names = {n.name for n in nodes}
    if d.superlink_node is not None and d.superlink_node not in names:
        raise unknown_node("deployment.superlink_node", d.superlink_node, names)
    used = {p.node for p in spec.participants} | {d.superlink_node}
    if d.loopback and len(names) > 1 and (None in used or len(used) > 1):
        raise BadInput(
            "deployment.address", d.address or "(loopback)",
            "must be an address every node can reach when the parts may run on different nodes",
            hint="state host:port of deployment.superlink_node, or pin every part to one node",
        )  # fmt: skip
    need = len(spec.participants) * d.cpus_per_node + SUPERLINK_CPUS + SERVER_CPUS
    total = sum(n.cpus for n in nodes)
    if need > total + 1e-9:
        raise BadInput(
            "deployment.cpus_per_node", d.cpus_per_node,
            f"is too much: every part runs at once and needs {need:g} CPUs; the pool has {total:g}",
            hint="lower it, or use --simulation",
        )  # fmt: skip


def deployment_jobs(spec: FedSpec) -> list[JobSpec]:
    """The SuperLink's job, one SuperNode job per participant (on its node, told only its own data path),
    and the ServerApp's job, last (the one to follow)."""
    from suanli.federate import deploy

    d = spec.deployment
    address = d.address or f"127.0.0.1:{free_port()}"
    base = {deploy.ADDRESS_ENV: address, deploy.WAIT_ENV: f"{d.wait_s:g}", "PYTHONUNBUFFERED": "1"}
    module = f"{sys.executable} -m suanli.federate.deploy"
    here = [d.superlink_node] if d.superlink_node else []
    data = [str(spec.path(p.data)) for p in spec.participants]

    def job(name: str, role: str, cpus: float, nodes: list[str], envs: dict, **extra: object) -> JobSpec:
        doc = {
            "name": name, "run": f"{module} {role}", "workdir": spec.base_dir,
            "envs": {**spec.envs, **base, **envs}, "resources": {"cpus": cpus}, "nodes": nodes,
            "labels": {"suanli/federation": spec.name}, "private": data, **extra,
        }  # fmt: skip
        if spec.project:
            doc["project"] = spec.project
        return parse_spec(doc, source="federation")

    jobs = [job(f"fed-{spec.name}-superlink", "superlink", SUPERLINK_CPUS, here, {})]
    for i, p in enumerate(spec.participants):
        envs = {deploy.INDEX_ENV: str(i), deploy.DATA_ENV: data[i]}
        jobs.append(
            job(f"fed-{spec.name}-{p.name}", "supernode", d.cpus_per_node, [p.node] if p.node else [], envs)
        )
    output = [str(spec.path(spec.output))] if spec.output else []
    jobs.append(job(f"fed-{spec.name}", "server", SERVER_CPUS, here, {SPEC_ENV: spec.model_dump_json()},
                    artifacts=output))  # fmt: skip
    return jobs


def prepare(spec: FedSpec, client: Client, *, simulation: bool = True) -> list[JobSpec]:
    """Every check, then the jobs to submit, the one to follow last (nothing is stored here)."""
    from suanli.federate import strategy

    nodes = _up_nodes(client)
    check_participants(spec, nodes)
    if not simulation:
        check_deployment(spec, nodes)
    strategy.check(spec)
    check_app(spec)
    if simulation:
        return [job_spec(spec, simulation_cpus(spec, nodes))]
    return deployment_jobs(spec)


def rounds_of(history: list[dict]) -> list[dict]:
    """The per-round metrics of the job's last attempt, one dict per round."""
    last = max((h["attempt"] for h in history), default=None)
    rows: dict[int, dict] = {}
    for h in history:
        if h["attempt"] != last or h["step"] is None or h["name"] not in ROUND_FIELDS:
            continue
        rows.setdefault(int(h["step"]), {"round": int(h["step"])})[h["name"]] = h["value"]
    return [rows[k] for k in sorted(rows)]


def _summary(client: Client, job: JobRecord) -> dict:
    """The runner's last line (`{"federation": ...}`) from the job's log."""
    text = "".join(client.follow(job.id, follow=False))
    for line in reversed(text.splitlines()):
        if line.startswith('{"federation"'):
            try:
                return json.loads(line)["federation"]
            except (ValueError, KeyError):
                break
    return {}


def _end_parts(client: Client, ids: list[int], grace_s: float) -> None:
    """Give a deployment's SuperLink and SuperNodes `grace_s` to end by themselves (they do once the run
    is over), then cancel what is left."""
    deadline = time.monotonic() + grace_s
    left = list(ids)
    while left:
        left = [i for i in left if not client.get(i).is_terminal]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for i in left:
        client.cancel(i, wait=False)


def federate(
    spec: FedSpec, *, client: Client, jobs: list[JobSpec] | None = None, simulation: bool = True,
    on_round: RoundFn | None = None, wait: bool = True,
) -> FederationResult:  # fmt: skip
    """Run the federation on the pool (`jobs` from `prepare`, else prepared here), all its jobs submitted
    at once; with `wait`, follow the last (the simulation, or the ServerApp) to the end, calling
    `on_round` with each round's metrics as they arrive, then cancel any part still running."""
    jobs = jobs or prepare(spec, client, simulation=simulation)
    ids = client.submit_many(jobs)
    job_id = ids[-1]
    cpus = sum(j.resources.cpus for j in jobs)
    result = FederationResult(spec.name, job_id, "PENDING", len(jobs) == 1, cpus, job_ids=ids)
    if not wait:
        return result
    seen = 0
    try:
        while True:
            record = client.get(job_id)
            rounds = rounds_of(client.metric_history(job_id))
            complete = rounds if record.is_terminal else rounds[:-1]  # the newest may still be arriving
            for row in complete[seen:]:
                if on_round is not None:
                    on_round(row)
            seen = max(seen, len(complete))
            if record.is_terminal:
                break
            time.sleep(POLL_SECONDS)
        _end_parts(client, ids[:-1], PARTS_GRACE_S)
    finally:
        _end_parts(client, ids[:-1], 0.0)
    result.state = str(record.state)
    result.rounds = rounds
    summary = _summary(client, record)
    result.stopped_because = summary.get("stopped_because")
    result.accuracy = summary.get("accuracy", rounds[-1].get("accuracy") if rounds else None)
    result.epsilon = summary.get("epsilon")
    result.output = summary.get("output")
    result.traffic_bytes = summary.get("traffic_bytes")
    if not summary:
        result.error = record.reason
    return result
