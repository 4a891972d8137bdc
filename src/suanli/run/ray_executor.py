"""Runs attempts on a Ray cluster: one placement group per attempt (all workers start or none do),
one actor per worker running the job's `setup`/`run` as a process group, logs pulled back into the
attempt's local log file (so metrics, `suanli logs` and `suanli status` work as for local jobs), and
cancel stopping every worker's processes before the actors and the placement group go.

The cluster is RAY_ADDRESS / the job's `ray_address`, or a local Ray started by the agent on demand
(that one lives as long as the agent; its jobs are retried per `retries` if the agent goes).
Ray is imported only when a Ray job runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanli.core.errors import SuanliError
from suanli.core.files import open_private, private_dir
from suanli.jobs.skypilot import skypilot_env
from suanli.run.executor import Handle, Outcome
from suanli.run.local import DEFAULT_PATH, LocalExecutor
from suanli.store.records import AttemptRecord, JobRecord

RAY_NODE = "ray"  # the node name recorded for attempts placed by Ray
PLACEMENT_TIMEOUT_S = float(os.environ.get("SUANLI_RAY_PLACEMENT_TIMEOUT_S", 60))
STOP_GRACE_S = 10.0


def _worker_class() -> Any:
    import ray

    @ray.remote(max_concurrency=4)
    class Worker:
        """One worker process of a job, on whichever node Ray placed it."""

        def __init__(self, code: bytes) -> None:
            import io
            import tempfile
            import zipfile

            self.proc: Any = None
            self.dir = tempfile.mkdtemp(prefix="suanli-workdir-")
            zipfile.ZipFile(io.BytesIO(code)).extractall(self.dir)
            self.log = Path(self.dir).parent / (Path(self.dir).name + ".log")
            self.log.touch()

        def address(self) -> tuple[str, int]:
            import socket

            with socket.socket() as s:
                s.bind(("", 0))
                port = s.getsockname()[1]
            return ray.util.get_node_ip_address(), port

        def execute(self, script: str, env: dict[str, str], gate: Any = 0) -> int:
            """Run a bash script as its own process group; returns its exit code (-N for signal N)."""
            import subprocess

            if gate:  # the node's setup failed: do not run
                return int(gate)
            path = os.path.dirname(sys.executable) + os.pathsep + DEFAULT_PATH
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=self.dir,
                    env={**env, "PATH": path},  # a clean environment, as local jobs get
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                return self.proc.wait()

        def read_log(self, offset: int) -> bytes:
            with self.log.open("rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n")
            return data[: end + 1] if end >= 0 else b""

        def cleanup(self) -> None:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)
            self.log.unlink(missing_ok=True)

        def stop(self, force: bool = False) -> None:
            import signal

            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL if force else signal.SIGTERM)

    return Worker


MAX_WORKDIR_BYTES = 256 * 2**20


def _pack(workdir: Path) -> bytes:
    """The job's workdir as a zip, shipped to every worker through Ray's object store (workers on
    other machines need the code too); hidden directories and files over 256 MiB in all are refused."""
    import io
    import zipfile

    buffer, total = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(workdir.rglob("*")):
            rel = path.relative_to(workdir)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            total += path.stat().st_size
            if total > MAX_WORKDIR_BYTES:
                raise SuanliError(f"workdir {workdir} holds more than 256 MiB; Ray jobs ship their workdir")
            zf.write(path, rel)
    return buffer.getvalue()


@dataclass
class _Attempt:
    pg: Any
    workers: list[Any]
    runs: list[Any]
    offsets: list[int] = field(default_factory=list)
    stop_sent: float | None = None


class RayExecutor:
    name = "ray"

    def __init__(self) -> None:
        self._attempts: dict[str, _Attempt] = {}  # by the attempt's run_dir
        self._address: str | None = None
        self._local = LocalExecutor()

    def _connect(self, address: str | None) -> None:
        import ray

        want = address or os.environ.get("RAY_ADDRESS") or None
        if ray.is_initialized():
            if want != self._address:
                raise SuanliError(
                    f"the agent is connected to Ray at {self._address or 'a local cluster'}, not {want}; "
                    "run one agent per Ray cluster (SUANLI_HOME)"
                )
            return
        ray.init(address=want, namespace="suanli", log_to_driver=False, include_dashboard=False)
        self._address = want

    def dry_run(self, job: JobRecord, gpu_indices: list[int]) -> dict:
        doc = self._local.dry_run(job, gpu_indices)
        doc["executor"] = self.name
        doc["ray_address"] = (
            job.spec.get("ray_address") or os.environ.get("RAY_ADDRESS") or "local (on demand)"
        )
        doc["placement_group"] = self._bundles(job)
        return doc

    @staticmethod
    def _bundles(job: JobRecord) -> list[dict[str, float]]:
        bundle = {"CPU": float(job.cpus)}
        if job.gpus:
            bundle["GPU"] = float(job.gpus)
        return [dict(bundle) for _ in range(job.num_nodes)]

    def launch(self, job: JobRecord, attempt: AttemptRecord, secrets: dict[str, str] | None = None) -> Handle:
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._connect(job.spec.get("ray_address"))
        root = private_dir(Path(attempt.run_dir), "attempt folder")
        open_private(root / "output.log").close()
        bundles = self._bundles(job)
        pg = placement_group(bundles, strategy="STRICT_SPREAD" if job.num_nodes > 1 else "PACK")
        try:
            ray.get(pg.ready(), timeout=PLACEMENT_TIMEOUT_S)
        except Exception as e:
            remove_placement_group(pg)
            raise SuanliError(
                f"Ray could not place {len(bundles)} x {bundles[0]} within {PLACEMENT_TIMEOUT_S:.0f} s "
                f"(cluster resources: {ray.cluster_resources()}): {type(e).__name__}"
            ) from None
        worker_cls = _worker_class()
        code = ray.put(_pack(Path(job.spec["workdir"])))
        per = job.num_workers
        workers = []
        for node in range(job.num_nodes):
            for _ in range(per):
                strategy = PlacementGroupSchedulingStrategy(
                    placement_group=pg, placement_group_bundle_index=node
                )
                workers.append(
                    worker_cls.options(
                        num_cpus=job.cpus / per,
                        num_gpus=job.gpus / per if job.gpus else 0,
                        scheduling_strategy=strategy,
                    ).remote(code)
                )
        addresses = ray.get([w.address.remote() for w in workers])
        master_addr, master_port = addresses[0]
        node_ips = [addresses[node * per][0] for node in range(job.num_nodes)]
        base = {**self._local._environment(job, attempt.number, [], root), **(secrets or {})}
        base.pop("PATH", None)
        base.pop("CUDA_VISIBLE_DEVICES", None)  # Ray sets it for the GPUs it assigned
        world = len(workers)
        setup = job.spec.get("setup")
        runs = []
        for rank, worker in enumerate(workers):
            env = dict(base)
            env.update(skypilot_env(job.id, job.num_nodes, rank // per, node_ips, job.gpus, user=job.user))
            if world > 1:
                env.update(
                    RANK=str(rank),
                    LOCAL_RANK=str(rank % per),
                    WORLD_SIZE=str(world),
                    LOCAL_WORLD_SIZE=str(per),
                    NODE_RANK=str(rank // per),
                    MASTER_ADDR=master_addr,
                    MASTER_PORT=str(master_port),
                )
            # Setup runs once per node (on its first worker); the node's other workers wait for it.
            gate = 0
            if setup:
                if rank % per == 0:
                    node_setup = worker.execute.remote(setup, env)
                gate = node_setup
            runs.append(worker.execute.remote(job.spec["run"], env, gate))
        self._attempts[attempt.run_dir] = _Attempt(pg, workers, runs, [0] * world)
        return Handle(0, time.time())

    def _pull_logs(self, state: _Attempt, attempt: AttemptRecord) -> None:
        import ray

        try:
            pairs = zip(state.workers, state.offsets, strict=True)
            chunks = ray.get([w.read_log.remote(off) for w, off in pairs], timeout=10)
        except Exception:
            return  # a lost worker; poll reports it
        with (Path(attempt.run_dir) / "output.log").open("ab") as out:
            for i, chunk in enumerate(chunks):
                out.write(chunk)
                state.offsets[i] += len(chunk)

    def poll(self, job: JobRecord, attempt: AttemptRecord) -> Outcome | None:
        import ray

        state = self._attempts.get(attempt.run_dir)
        if state is None:
            return Outcome(None, None, "the Ray workers were lost (the agent that owned them stopped)")
        self._pull_logs(state, attempt)
        done, _ = ray.wait(state.runs, num_returns=len(state.runs), timeout=0)
        failure = None
        for rank, ref in enumerate(state.runs):
            if ref not in done:
                continue
            try:
                code = ray.get(ref)
            except Exception as e:  # the actor or its node died
                failure = Outcome(
                    None, None, f"worker {rank} lost: {type(e).__name__}: {str(e).splitlines()[0]}"
                )
                break
            if code != 0:
                failure = self._describe(rank, code, len(state.runs))
                break
        if failure is None and len(done) < len(state.runs):
            return None
        if failure is not None and len(done) < len(state.runs):
            self._shutdown(state, force=False)
        self._pull_logs(state, attempt)
        self._release(attempt, state)
        return failure or Outcome(0, None, "exited with code 0")

    @staticmethod
    def _describe(rank: int, code: int, world: int) -> Outcome:
        import signal

        who = f"worker {rank} " if world > 1 else ""
        if code < 0:
            name = signal.Signals(-code).name
            return Outcome(None, name, f"{who}killed by {name}")
        return Outcome(code, None, f"{who}exited with code {code}")

    def _shutdown(self, state: _Attempt, force: bool) -> None:
        import ray

        refs = [w.stop.remote(force) for w in state.workers]
        with contextlib.suppress(Exception):
            ray.get(refs, timeout=STOP_GRACE_S)

    def _release(self, attempt: AttemptRecord, state: _Attempt) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        with contextlib.suppress(Exception):
            ray.get([w.cleanup.remote() for w in state.workers], timeout=STOP_GRACE_S)
        for w in state.workers:
            ray.kill(w)
        remove_placement_group(state.pg)
        self._attempts.pop(attempt.run_dir, None)

    def cancel(self, attempt: AttemptRecord, *, force: bool = False) -> None:
        state = self._attempts.get(attempt.run_dir)
        if state is not None:
            self._shutdown(state, force=force)

    def log_path(self, attempt: AttemptRecord) -> Path:
        return Path(attempt.run_dir) / "output.log"
