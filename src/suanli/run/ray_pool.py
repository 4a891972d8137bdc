"""A Ray cluster as suanli's pool: its nodes become the pool's nodes, so the scheduler's policy decides
which job starts on which of them (Ray itself has no job queue).

Everything that talks to Ray runs on this module's own thread: connecting (which can take seconds, or
fail), and reading the node table once a second. The agent's loop only reads the last snapshot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from suanli.catalog.accelerators import accelerator_from_device_name, accelerator_names
from suanli.core.errors import SuanliError
from suanli.run.pool import PoolConfig
from suanli.store.records import NodeRecord

log = logging.getLogger("suanli.agent")

REFRESH_S = 1.0
RECONNECT_S = 5.0
# Ray's accelerator_type names (ray.util.accelerators) that are spelled differently in the catalog.
_RAY_NAMES = {"A100-40G": "A100", "A100-80G": "A100-80GB", "V100-32G": "V100-32GB"}
_LABELS = ("accelerator", "ray.io/accelerator-type")


@dataclass(frozen=True)
class PoolNode:
    """One Ray node as the pool sees it."""

    name: str
    node_id: str
    alive: bool
    cpus: float
    memory_bytes: int
    gpus: int
    accelerator: str | None


def node_name(entry: dict) -> str:
    """A name that stays the node's own: its address and the start of Ray's node id (several nodes
    may share one address, e.g. on one machine)."""
    return f"{entry.get('NodeManagerAddress') or 'ray'}-{entry['NodeID'][:8]}"


def _catalog_name(raw: str) -> str:
    name = _RAY_NAMES.get(raw, raw)
    known = {n.lower(): n for n in accelerator_names()}
    return known.get(name.lower()) or accelerator_from_device_name(name)


def read_nodes(entries: list[dict], accelerators: dict[str, str] | None = None) -> list[PoolNode]:
    """Ray's node table (`ray.nodes()`) as pool nodes. The GPU type is the pool.yaml mapping for the
    node's name, address or id when there is one, else a node label (`accelerator`), else Ray's
    `accelerator_type:*` resource; an unknown type keeps Ray's spelling."""
    accelerators = accelerators or {}
    out = []
    for e in entries:
        resources = e.get("Resources") or {}
        labels = e.get("Labels") or {}
        name = node_name(e)
        gpus = int(resources.get("GPU", 0))
        kind = next(
            (accelerators[k] for k in (name, e["NodeID"], e.get("NodeManagerAddress")) if k in accelerators),
            None,
        )
        if kind is None:
            raw = next((labels[k] for k in _LABELS if labels.get(k)), None) or next(
                (k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")), None
            )
            kind = _catalog_name(raw) if raw else None
        out.append(
            PoolNode(
                name=name,
                node_id=e["NodeID"],
                alive=bool(e.get("Alive")),
                cpus=float(resources.get("CPU", 0.0)),
                memory_bytes=int(resources.get("memory", 0)),
                gpus=gpus,
                accelerator=kind if gpus else None,
            )
        )
    return out


class RayPool:
    """Connects to the cluster and keeps a snapshot of its nodes, on its own thread."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.address = config.ray
        self.nodes: list[PoolNode] = []
        self.read_at = 0.0  # when `nodes` was last read (0: never)
        self.error: str | None = None
        self.connected = threading.Event()
        self.first_read = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray-pool", daemon=True)

    def start(self) -> RayPool:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait_read(self, timeout_s: float) -> None:
        """Block until the node table was read once; SuanliError with Ray's answer if it was not."""
        if not self.first_read.wait(timeout_s):
            raise SuanliError(
                f"the Ray cluster at {self.address} did not answer within {timeout_s:.0f} s"
                + (f": {self.error}" if self.error else "")
            )

    def records(self) -> list[NodeRecord]:
        """The nodes alive at the last read, as the store would list them (capacity only)."""
        return [
            NodeRecord(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus, "UP", self.read_at)
            for n in self.nodes
            if n.alive
        ]

    def node_id(self, name: str) -> str | None:
        return next((n.node_id for n in self.nodes if n.name == name), None)

    def alive(self, name: str) -> bool:
        return any(n.alive for n in self.nodes if n.name == name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.connected.is_set():
                    connect(self.address)
                    self.connected.set()
                    log.info("connected to the Ray cluster at %s", self.address)
                self.nodes = read_nodes(_ray_nodes(), self.config.accelerators)
                self.read_at, self.error = time.time(), None
                self.first_read.set()
                wait = REFRESH_S
            except Exception as e:  # the cluster is down or unreachable: say so, try again
                message = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
                if not self.connected.is_set() and "RAY_AUTH_MODE" not in os.environ:
                    message += (
                        " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token,"
                        " ~/.ray/auth_token or RAY_AUTH_TOKEN, where the agent starts)"
                    )
                if message != self.error:
                    log.error("Ray cluster at %s: %s", self.address, message)
                self.error = message
                wait = RECONNECT_S
            self._stop.wait(wait)


def _ray_nodes() -> list[dict]:
    import ray

    return ray.nodes()


_connect_lock = threading.Lock()


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` (None: start a local one) once per process."""
    import ray

    with _connect_lock:
        if ray.is_initialized():
            return
        ray.init(address=address, namespace="suanli", log_to_driver=False, include_dashboard=False)
