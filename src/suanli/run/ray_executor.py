"""Runs attempts on a Ray cluster: one actor per worker, pinned to the node the scheduler chose for it
(Ray's node-affinity scheduling, not soft), running the job's `setup`/`run` as a process group; logs
pulled back into the attempt's local log file (so metrics, `suanli logs` and `suanli status` work as
for local jobs); stopping sends SIGTERM, then SIGKILL, to every worker's process group.

A gang starts whole or not at all: every worker's actor must be up on its node before any worker
runs the job's commands; if one cannot start (something outside suanli took the node), all are
removed and the job goes back to the queue.

Nothing here blocks the agent's loop: starting, watching, pulling logs and stopping run on this
executor's own threads, and `poll` only reads what they found.

Without a Ray pool (a `backend: ray` job on the local pool) the cluster is a local Ray the agent
starts on demand and a placement group holds the job's resources. Ray is imported only when used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanli.core.errors import SuanliError
from suanli.core.files import open_private, private_dir
from suanli.monitor.collect import Reading
from suanli.run.executor import Handle, Outcome
from suanli.run.ray_pool import RayPool, connect
from suanli.run.worker_env import DEFAULT_PATH, attempt_environment, describe_exit, rank_environment
from suanli.store.paths import home
from suanli.store.records import AttemptRecord, JobRecord, attempt_slices

log = logging.getLogger("suanli.agent")

RAY_NODE = "ray"  # the node recorded for attempts of a local pool's Ray jobs (Ray places them there)
PLACEMENT_TIMEOUT_S = float(os.environ.get("SUANLI_RAY_PLACEMENT_TIMEOUT_S", 60))
STOP_TIMEOUT_S = 10.0
WATCH_S = 0.25
MAX_WORKDIR_BYTES = 256 * 2**20


def _worker_class() -> Any:
    import ray

    @ray.remote(max_concurrency=4)
    class Worker:
        """One worker process of a job, on the node the scheduler chose."""

        def __init__(self, code: bytes | None) -> None:
            import io
            import tempfile
            import zipfile

            self.proc: Any = None
            self.stopped = False
            self.dir = tempfile.mkdtemp(prefix="suanli-workdir-")
            if code:
                zipfile.ZipFile(io.BytesIO(code)).extractall(self.dir)
            self.log = Path(self.dir).parent / (Path(self.dir).name + ".log")
            self.log.touch()

        def address(self) -> tuple[str, int, str]:
            import socket

            with socket.socket() as s:
                s.bind(("", 0))
                port = s.getsockname()[1]
            return ray.util.get_node_ip_address(), port, ray.get_runtime_context().get_node_id()

        def execute(self, script: str, env: dict[str, str], gate: Any = 0) -> int:
            """Run a bash script as its own process group; returns its exit code (-N for signal N)."""
            import subprocess

            if gate or self.stopped:  # the node's setup failed, or the attempt was stopped: do not run
                return int(gate) or -15
            path = os.path.dirname(sys.executable) + os.pathsep + DEFAULT_PATH
            env = {**env, "PATH": path}  # a clean environment, as local jobs get
            gpu_ids = ray.get_gpu_ids()
            if gpu_ids:  # the GPUs Ray assigned to this worker
                env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(i)) for i in gpu_ids)
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=self.dir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                return self.proc.wait()

        def read_log(self, offset: int) -> bytes:
            with self.log.open("rb") as f:
                f.seek(offset)
                data = f.read(1 << 20)
            end = data.rfind(b"\n")
            return data[: end + 1] if end >= 0 else b""

        def sample(self) -> dict | None:
            """What this worker's process tree uses now, read on its own node."""
            if self.proc is None:
                return None
            try:
                from suanli.monitor.collect import Collector
            except ImportError:  # suanli is not installed on this node: no samples from it
                return None
            if not hasattr(self, "collector"):
                self.collector = Collector()
            gpus = [int(i) for i in ray.get_gpu_ids()]
            found = self.collector.sample({0: self.proc.pid}, {0: gpus})
            return found[0].to_json() if 0 in found else None

        def cleanup(self) -> None:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)
            self.log.unlink(missing_ok=True)

        def stop(self, force: bool = False) -> None:
            import signal

            self.stopped = True
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL if force else signal.SIGTERM)

    return Worker


def _pack(workdir: str | None) -> bytes | None:
    """The job's workdir as a zip, shipped to every worker through Ray's object store (workers on
    other machines need the code too); hidden directories and files over 256 MiB in all are refused."""
    import io
    import zipfile

    if not workdir:
        return None
    root = Path(workdir)
    state = home().resolve()
    buffer, total = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            # Never suanli's own state: reading (and closing) the live database file would drop this
            # process's SQLite locks on it, and the agent's writes would go where nobody reads them.
            if path.resolve().is_relative_to(state):
                continue
            total += path.stat().st_size
            if total > MAX_WORKDIR_BYTES:
                raise SuanliError(f"workdir {root} holds more than 256 MiB; Ray jobs ship their workdir")
            zf.write(path, rel)
    return buffer.getvalue()


@dataclass
class _Attempt:
    job: JobRecord
    attempt: AttemptRecord
    nodes: list[str]  # the pool node of each node rank
    workers: list[Any] = field(default_factory=list)
    worker_nodes: list[str] = field(default_factory=list)  # Ray node id of each worker
    runs: list[Any] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    pg: Any = None
    outcome: Outcome | None = None  # set once the attempt has ended and its actors are gone
    stop: bool | None = None  # None: not asked to stop; else whether the stop is forced
    ending: bool = False  # its other workers are being stopped after one failed
    readings: dict[str, Reading] = field(default_factory=dict)  # by pool node, the newest
    sampled_at: float = 0.0


class RayExecutor:
    name = "ray"

    def __init__(self, pool: RayPool | None = None) -> None:
        self.pool = pool
        self._attempts: dict[str, _Attempt] = {}  # by the attempt's run_dir
        self._lock = threading.Lock()
        self._work = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ray-executor")
        self._watcher: threading.Thread | None = None
        self.sample_interval = 5.0  # the agent sets its monitor's

    # ---- connecting ---------------------------------------------------------------------------

    def _connect(self) -> None:
        """Join the pool's cluster, or (no Ray pool) start a local Ray on demand; once per process."""
        connect(self.pool.address if self.pool else None)

    # ---- launching ----------------------------------------------------------------------------

    def dry_run(self, job: JobRecord, gpu_indices: list[int], nodes: list[str] | None = None) -> dict:
        from suanli.run.local import run_dir_for

        root = run_dir_for(job.id, 1)
        return {
            "executor": self.name,
            "ray_address": self.pool.address if self.pool else "local",
            "nodes": nodes or [],
            "workers_per_node": job.num_workers,
            "worker": {"CPU": job.cpus / job.num_workers, "GPU": job.gpus / job.num_workers},
            "setup": job.spec.setup,
            "run": job.spec.run,
            "env": attempt_environment(job, 1, None, root, node_ips=["<node ip>"] * job.num_nodes),
        }  # fmt: skip

    def launch(self, job: JobRecord, attempt: AttemptRecord, secrets: dict[str, str] | None = None) -> Handle:
        """Record the attempt and start it on the executor's threads; returns at once."""
        root = private_dir(Path(attempt.run_dir), "attempt folder")
        open_private(root / "output.log").close()
        nodes = [s.node for s in attempt_slices(job, attempt)]
        state = _Attempt(job, attempt, nodes)
        with self._lock:
            self._attempts[attempt.run_dir] = state
        self._work.submit(self._start, state, dict(secrets or {}))
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="ray-watch", daemon=True)
            self._watcher.start()
        return Handle(0, time.time())

    def _start(self, state: _Attempt, secrets: dict[str, str]) -> None:
        try:
            self._place(state, secrets)
        except Exception as e:
            log.warning("job %s attempt %s did not start: %s", state.job.id, state.attempt.number, e)
            lost = self._lost_nodes(state)
            reason = f"node lost: {', '.join(lost)}" if lost else f"launch failed: {_words(e)}"
            # It never ran: a node that left before it started, or one that could not take it, does
            # not cost the job a retry.
            requeue = bool(lost) or isinstance(e, _NotPlaced)
            self._finish(state, Outcome(None, None, reason, requeue=requeue, lost_nodes=tuple(lost)))

    def _place(self, state: _Attempt, secrets: dict[str, str]) -> None:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import (
            NodeAffinitySchedulingStrategy,
            PlacementGroupSchedulingStrategy,
        )

        job, attempt = state.job, state.attempt
        self._connect()
        per = job.num_workers
        node_ids = [self.pool.node_id(n) for n in state.nodes] if self.pool else []
        if self.pool and None in node_ids:
            gone = [n for n, i in zip(state.nodes, node_ids, strict=True) if i is None]
            raise _NotPlaced(f"nodes {', '.join(gone)} are not in the Ray cluster")
        if not self.pool:
            bundle = {"CPU": float(job.cpus), **({"GPU": float(job.gpus)} if job.gpus else {})}
            state.pg = placement_group([dict(bundle) for _ in range(job.num_nodes)],
                                       strategy="STRICT_SPREAD" if job.num_nodes > 1 else "PACK")  # fmt: skip
            try:
                ray.get(state.pg.ready(), timeout=PLACEMENT_TIMEOUT_S)
            except Exception:
                raise SuanliError(
                    f"Ray could not place {job.num_nodes} x {bundle} within {PLACEMENT_TIMEOUT_S:.0f} s "
                    f"(cluster resources: {ray.cluster_resources()})"
                ) from None
        code = ray.put(_pack(job.spec.workdir))
        worker_cls = _worker_class()
        slices = attempt_slices(job, attempt)
        for node in range(job.num_nodes):
            if self.pool:
                strategy: Any = NodeAffinitySchedulingStrategy(node_ids[node], soft=False)
                cpus, gpus = slices[node].cpus, slices[node].gpus
            else:
                strategy = PlacementGroupSchedulingStrategy(state.pg, placement_group_bundle_index=node)
                cpus, gpus = job.cpus, job.gpus
            for _ in range(per):
                state.workers.append(
                    worker_cls.options(
                        num_cpus=cpus / per, num_gpus=gpus / per, scheduling_strategy=strategy, max_restarts=0
                    ).remote(code)
                )
        state.offsets = [0] * len(state.workers)
        # The gang gate: no worker runs the job's commands until every worker is up on its node.
        try:
            addresses = ray.get([w.address.remote() for w in state.workers], timeout=PLACEMENT_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise _NotPlaced(
                f"its workers could not all start on {', '.join(dict.fromkeys(state.nodes))} within "
                f"{PLACEMENT_TIMEOUT_S:.0f} s (resources held outside suanli?)"
            ) from None
        state.worker_nodes = [a[2] for a in addresses]
        if state.stop is not None:
            raise SuanliError("stopped before it started")
        master_addr, master_port = addresses[0][0], addresses[0][1]
        node_ips = [addresses[node * per][0] for node in range(job.num_nodes)]
        world = len(state.workers)
        runs = []
        for rank, worker in enumerate(state.workers):
            env = attempt_environment(job, attempt.number, None, attempt.run_dir, node_rank=rank // per,
                                      node_ips=node_ips, node=state.nodes[rank // per])  # fmt: skip
            env.pop("PATH", None)
            env.update(secrets)
            if world > 1:
                env.update(rank_environment(rank, per, world, master_addr, master_port))
            gate = 0
            if job.spec.setup:  # once per node, on its first worker; the others wait for it
                if rank % per == 0:
                    node_setup = worker.execute.remote(job.spec.setup, env)
                gate = node_setup
            runs.append(worker.execute.remote(job.spec.run, env, gate))
        state.runs = runs

    # ---- watching -----------------------------------------------------------------------------

    def _watch(self) -> None:
        while True:
            with self._lock:
                states = [s for s in self._attempts.values() if s.runs and not s.ending and s.outcome is None]
            for state in states:
                try:
                    self._check(state)
                except Exception:
                    log.exception("watching job %s attempt %s", state.job.id, state.attempt.number)
            time.sleep(WATCH_S)

    def _check(self, state: _Attempt) -> None:
        import ray

        self._pull_logs(state)
        if self.sample_interval and time.time() - state.sampled_at >= self.sample_interval:
            state.sampled_at = time.time()
            self._sample(state)
        done, _ = ray.wait(state.runs, num_returns=len(state.runs), timeout=0)
        failure = None
        world = len(state.runs)
        for rank, ref in enumerate(state.runs):
            if ref not in done:
                continue
            try:
                code = ray.get(ref)
            except Exception as e:  # the actor or its node died
                lost = self._lost_nodes(state)
                why = f"node lost: {', '.join(lost)}" if lost else f"worker {rank} lost: {_words(e)}"
                failure = Outcome(None, None, why, lost_nodes=tuple(lost))
                break
            if code != 0:
                exit_code, sig, why = describe_exit(code, f"worker {rank}" if world > 1 else "")
                failure = Outcome(exit_code, sig, why)
                break
        if failure is None and len(done) < world:
            return
        state.ending = True
        if len(done) < world:  # a data-parallel job cannot go on without one worker: stop the others
            self._work.submit(self._stop_rest, state, failure)
            return
        self._pull_logs(state)
        self._finish(state, failure or Outcome(0, None, "exited with code 0"))

    def _stop_rest(self, state: _Attempt, failure: Outcome | None) -> None:
        """SIGTERM the workers still running, SIGKILL them after the job's grace period, then end."""
        import ray

        self._signal(state, force=False)
        with contextlib.suppress(Exception):
            ray.wait(state.runs, num_returns=len(state.runs), timeout=state.job.spec.grace_period_s)
        self._signal(state, force=True)
        self._pull_logs(state)
        self._finish(state, failure or Outcome(0, None, "exited with code 0"))

    def _lost_nodes(self, state: _Attempt) -> list[str]:
        """The attempt's nodes that are no longer alive in the cluster."""
        import ray

        try:
            alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        except Exception:
            return []
        if self.pool:
            return [n for n in dict.fromkeys(state.nodes) if self.pool.node_id(n) not in alive]
        return [f"Ray node {i[:8]}" for i in dict.fromkeys(state.worker_nodes) if i not in alive]

    def _pull_logs(self, state: _Attempt) -> None:
        import ray

        try:
            pairs = zip(state.workers, state.offsets, strict=True)
            chunks = ray.get([w.read_log.remote(off) for w, off in pairs], timeout=STOP_TIMEOUT_S)
        except Exception:
            return  # a lost worker; the check reports it
        with (Path(state.attempt.run_dir) / "output.log").open("ab") as out:
            for i, chunk in enumerate(chunks):
                out.write(chunk)
                state.offsets[i] += len(chunk)

    def _sample(self, state: _Attempt) -> None:
        """Each worker's reading from its node, summed per pool node."""
        import ray

        try:
            found = ray.get([w.sample.remote() for w in state.workers], timeout=STOP_TIMEOUT_S)
        except Exception:
            return  # a lost worker; the check reports it
        per = max(1, state.job.num_workers)
        by_node: dict[str, list[Reading]] = {}
        for rank, doc in enumerate(found):
            if doc:
                by_node.setdefault(state.nodes[rank // per], []).append(Reading(**doc))
        state.readings = {node: _sum(rs) for node, rs in by_node.items()}

    def readings(self, attempt: AttemptRecord) -> dict[str, Reading]:
        """The newest reading of each node the attempt runs on (none before its first sample)."""
        with self._lock:
            state = self._attempts.get(attempt.run_dir)
        return dict(state.readings) if state is not None else {}

    def _signal(self, state: _Attempt, force: bool) -> None:
        import ray

        refs = [w.stop.remote(force) for w in state.workers]
        with contextlib.suppress(Exception):
            ray.get(refs, timeout=STOP_TIMEOUT_S)

    def _finish(self, state: _Attempt, outcome: Outcome) -> None:
        """Stop what is left of the attempt (its processes run in their own sessions: killing an actor
        would not end them), remove its actors and placement group, then publish how it ended."""
        import ray
        from ray.util.placement_group import remove_placement_group

        self._signal(state, force=True)
        with contextlib.suppress(Exception):
            ray.get([w.cleanup.remote() for w in state.workers], timeout=STOP_TIMEOUT_S)
        for w in state.workers:
            with contextlib.suppress(Exception):
                ray.kill(w)
        if state.pg is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(state.pg)
        state.outcome = outcome

    # ---- the executor interface ---------------------------------------------------------------

    def poll(self, job: JobRecord, attempt: AttemptRecord) -> Outcome | None:
        with self._lock:
            state = self._attempts.get(attempt.run_dir)
            if state is None:
                return Outcome(None, None, "the Ray workers were lost (the agent that owned them stopped)")
            if state.outcome is None:
                return None
            del self._attempts[attempt.run_dir]
            return state.outcome

    def cancel(self, attempt: AttemptRecord, *, force: bool = False) -> None:
        with self._lock:
            state = self._attempts.get(attempt.run_dir)
        if state is not None and state.outcome is None:
            state.stop = force
            if state.workers:
                self._work.submit(self._signal, state, force)

    def log_path(self, attempt: AttemptRecord) -> Path:
        return Path(attempt.run_dir) / "output.log"


class _NotPlaced(SuanliError):
    """The workers could not start where the scheduler placed them: the job goes back to the queue."""


def _sum(rs: list[Reading]) -> Reading:
    """One node's reading from its workers' (GPU utilisation: their mean)."""
    utils = [r.gpu_util for r in rs if r.gpu_util is not None]
    mems = [r.gpu_memory_bytes for r in rs if r.gpu_memory_bytes is not None]
    return Reading(
        at=max(r.at for r in rs),
        cpu_seconds=sum(r.cpu_seconds for r in rs),
        rss_bytes=sum(r.rss_bytes for r in rs),
        read_bytes=sum(r.read_bytes for r in rs),
        write_bytes=sum(r.write_bytes for r in rs),
        processes=sum(r.processes for r in rs),
        gpu_util=sum(utils) / len(utils) if utils else None,
        gpu_memory_bytes=sum(mems) if mems else None,
        gpu_energy_j=max((r.gpu_energy_j for r in rs if r.gpu_energy_j is not None), default=None),
        net_bytes=rs[0].net_bytes,
    )


def _words(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}"[:300]
