"""The local agent: a background process that schedules pending jobs onto this machine, starts them
through the executor, watches them and records how they end.

The first command that needs it starts it (control.ensure_agent); later commands find it through
SUANLI_HOME/agent.json, wake it with SIGUSR1 and send it submissions over its Unix socket. Jobs run
under their own supervisor (shim.py), so they survive the agent; a restarted agent reconciles every
RUNNING attempt: it adopts live ones, records the outcome of those that ended, and fails (or retries,
per the spec) those that vanished.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import select
import signal
import socket
import sys
import time

from suanli.core.errors import SuanliError
from suanli.jobs.spec import load_spec
from suanli.jobs.states import IllegalTransition, JobState
from suanli.run import admission
from suanli.run.control import info_path, read_agent_info, socket_path
from suanli.run.local import LocalExecutor, run_dir_for
from suanli.run.metrics import LogTail, tail_text
from suanli.run.pool import discover_local_node
from suanli.run.ray_executor import RAY_NODE, RayExecutor
from suanli.run.schedconfig import load_scheduler_config, make_policy
from suanli.schedule.estimates import HistoryEstimator, workload_seconds
from suanli.schedule.policy import ClusterState, JobRequest, NodeState, RunningJob, Slice
from suanli.store.paths import home
from suanli.store.records import AttemptRecord, JobRecord, NodeRecord
from suanli.store.store import Store

log = logging.getLogger("suanli.agent")

CANCEL_GRACE_SECONDS = 10.0
HEARTBEAT_SECONDS = 10.0
HISTORY_REFRESH_SECONDS = 10.0  # finished jobs' run times change slowly; not re-read every tick


class Agent:
    def __init__(self, store: Store, policy_name: str | None = None) -> None:
        self.store = store
        config = load_scheduler_config()
        if policy_name:
            config = config.model_copy(update={"policy": policy_name})
        self.policy = make_policy(config)
        self.executor = LocalExecutor()
        self._ray: RayExecutor | None = None
        self.node = discover_local_node()
        self.tails: dict[tuple[int, int], LogTail] = {}
        self.term_sent: dict[tuple[int, int], float] = {}
        self.overrides: dict[tuple[int, int], str] = {}  # reasons that replace the process's own
        self.preempted: set[tuple[int, int]] = set()
        self.stopping = False
        self._last_heartbeat = 0.0
        self._last_memory_check = 0.0
        self._history = HistoryEstimator()
        self._history_at = 0.0

    def executor_for(self, job: JobRecord) -> LocalExecutor | RayExecutor:
        if job.spec.get("backend") == "ray":
            if self._ray is None:
                self._ray = RayExecutor()
            return self._ray
        return self.executor

    # ---- one pass -------------------------------------------------------------------------------

    def tick(self) -> None:
        self._watch_running()
        self._schedule()
        now = time.time()
        if now - self._last_heartbeat > HEARTBEAT_SECONDS:
            self.store.heartbeat(self.node.name)
            self._last_heartbeat = now

    def _watch_running(self) -> None:
        check_memory = time.time() - self._last_memory_check > 1.0
        if check_memory:
            self._last_memory_check = time.time()
        for job, attempt in self.store.running(self.node.name) + self.store.running(RAY_NODE):
            key = (job.id, attempt.number)
            executor = self.executor_for(job)
            tail = self.tails.get(key)
            if tail is None:
                done = sum(1 for p in self.store.metric_history(job.id) if p["attempt"] == attempt.number)
                tail = self.tails[key] = LogTail(executor.log_path(attempt), skip_points=done)
            outcome = executor.poll(job, attempt)
            self.store.add_metrics(job.id, attempt.number, tail.read())
            if outcome is None:
                if job.cancel_requested:
                    self._stop(key, job, attempt)
                elif check_memory and job.memory_bytes and executor is self.executor:
                    self._check_memory(key, job, attempt)
                continue
            reason = self.overrides.pop(key, None) or outcome.reason
            state = self.store.finish_attempt(
                job.id,
                attempt.number,
                exit_code=outcome.exit_code,
                signal=outcome.signal,
                reason=reason,
                log_tail=tail_text(executor.log_path(attempt)) if outcome.exit_code != 0 else None,
                preempted=key in self.preempted,
            )
            log.info("job %s attempt %s ended: %s -> %s", job.id, attempt.number, reason, state)
            for d in (self.tails, self.term_sent):
                d.pop(key, None)
            self.preempted.discard(key)

    def _stop(self, key: tuple[int, int], job: JobRecord, attempt: AttemptRecord) -> None:
        sent = self.term_sent.get(key)
        if sent is None:
            self.executor_for(job).cancel(attempt)
            self.term_sent[key] = time.time()
        elif time.time() - sent > CANCEL_GRACE_SECONDS:
            self.executor_for(job).cancel(attempt, force=True)

    def _check_memory(self, key: tuple[int, int], job: JobRecord, attempt: AttemptRecord) -> None:
        used = self.executor.memory_bytes(attempt)
        if used > job.memory_bytes and key not in self.overrides:
            self.overrides[key] = (
                f"out of memory: used {used / 2**20:.0f} MiB, more than the "
                f"{job.memory_bytes / 2**20:.0f} MiB it requested (resources.memory)"
            )
            self.executor.cancel(attempt, force=True)

    def _schedule(self) -> None:
        pending = self.store.list_jobs([JobState.PENDING], with_attempts=True)
        for job in [j for j in pending if j.spec.get("backend") == "ray"]:
            self._launch(job, [], node=RAY_NODE)  # Ray places it (a placement group per attempt)
        pending = [j for j in pending if j.spec.get("backend") != "ray"]
        if not pending:
            return
        node = next((n for n in self.store.nodes() if n.name == self.node.name), None)
        if node is None:
            return
        running = self.store.running(self.node.name)
        if time.time() - self._history_at > HISTORY_REFRESH_SECONDS:
            self._history, self._history_at = job_history(self.store), time.time()
        cluster = cluster_state([node], running, self._history)
        by_id = {j.id: j for j in pending}
        requests = [job_request(j, self._history) for j in pending]
        decisions = self.policy.decide(requests, cluster, time.time())
        used_gpus = {i for _, a in running for i in a.gpu_indices}
        for start in decisions.starts:
            job = by_id[start.job_id]
            free = [i for i in range(node.gpus) if i not in used_gpus]
            gpu_indices = free[: job.gpus]
            used_gpus.update(gpu_indices)
            self._launch(job, gpu_indices)
        for pre in decisions.preemptions:
            for job, attempt in self.store.running(self.node.name):
                if job.id == pre.job_id:
                    self.preempted.add((job.id, attempt.number))
                    self.overrides[(job.id, attempt.number)] = f"preempted: {pre.reason}"
                    self._stop((job.id, attempt.number), job, attempt)

    def _launch(self, job: JobRecord, gpu_indices: list[int], node: str | None = None) -> None:
        try:
            attempt = self.store.start_attempt(job.id, node or self.node.name, gpu_indices, run_dir_for)
        except IllegalTransition:
            return  # cancelled (or started elsewhere) since we read it
        try:
            handle = self.executor_for(job).launch(job, attempt)
        except Exception as e:  # nothing a launch raises may leave the job RUNNING with no process
            self.store.finish_attempt(
                job.id, attempt.number, exit_code=None, signal=None, reason=f"launch failed: {e}"
            )
            return
        if handle.pid:  # Ray attempts have no local process
            self.store.set_attempt_process(job.id, attempt.number, handle.pid, handle.started_at)
        log.info("job %s attempt %s started, pid %s", job.id, attempt.number, handle.pid)

    # ---- the loop -------------------------------------------------------------------------------

    def handle(self, request: dict) -> dict:
        """One request from a client; errors come back with their exit code, nothing half-done."""
        try:
            if request.get("op") == "submit":
                spec = load_spec(
                    request["path"],
                    env_overrides=request.get("env") or None,
                    overrides=request.get("overrides"),
                )
                (job_id,) = admission.admit(self.store, [spec])
                self.tick()  # start it now if it fits
                return {"id": job_id}
            if request.get("op") == "ping":
                return {"pid": os.getpid()}
            return {"error": f"unknown request {request.get('op')!r}", "exit_code": 2}
        except SuanliError as e:
            return {"error": str(e), "exit_code": e.exit_code}

    def _answer(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5.0)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                answer = self.handle(json.loads(data))
            except (OSError, ValueError) as e:
                answer = {"error": f"bad request: {e}", "exit_code": 2}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")

    def serve(self) -> None:
        lock = (home() / "agent.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another agent holds the lock; exiting")
            return
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)

        def stop(_signum: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.signal(signal.SIGCHLD, lambda *_: None)

        sock_path = socket_path()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # owner-only: whoever can connect can run jobs as us
        try:
            listener.bind(sock_path)
        finally:
            os.umask(old_umask)
        listener.listen(64)

        n = self.node
        self.store.register_node(n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus)
        import psutil

        info = {
            "pid": os.getpid(),
            "started_at": psutil.Process().create_time(),
            "db_url": self.store.url,
            "node": n.name,
            "socket": sock_path,
        }
        tmp = info_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, info_path())
        log.info("agent %s up on node %s (%s)", os.getpid(), n.name, self.store.url)
        try:
            while not self.stopping:
                try:
                    self.tick()
                except Exception:
                    log.exception("tick failed")
                timeout = 0.25 if self.tails else 2.0
                ready, _, _ = select.select([wake_r, listener], [], [], timeout)
                if listener in ready:
                    self._answer(listener)
                if wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 512):
                            pass
        finally:
            listener.close()
            current = read_agent_info()
            if current is not None and current.pid == os.getpid():
                info_path().unlink(missing_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sock_path)
            log.info("agent %s stopped", os.getpid())


def run_seconds(job: JobRecord) -> float:
    """Time the job has held its resources, over its ended attempts."""
    return sum((a.ended_at - a.started_at) for a in job.attempts if a.ended_at is not None)


def job_request(job: JobRecord, history: HistoryEstimator | None = None) -> JobRequest:
    """A stored job as the scheduling policies see it: its service so far counts its ended attempts;
    its runtime estimate is the one its spec states, else the estimator's time for its workload,
    else (not stated) a guess from `history`."""
    preempted = [a.ended_at for a in job.attempts if (a.reason or "").startswith("preempted")]
    spec = job.spec
    estimate = spec.get("expected_duration") or workload_seconds(
        spec.get("workload"), (spec.get("resources") or {}).get("accelerators") or {}, job.num_nodes
    )
    stated = estimate is not None
    if not stated and history is not None:
        estimate = history.guess(job.user, max(job.gpus * job.num_nodes, 1))
    return JobRequest(
        id=job.id,
        submit_time_s=job.submitted_at,
        gpus=job.gpus,
        cpus=job.cpus,
        memory_bytes=job.memory_bytes,
        num_nodes=job.num_nodes,
        gpu_type=job.accelerator,
        user=job.user,
        team=(spec.get("labels") or {}).get("team"),
        priority=job.priority,
        estimated_duration_s=estimate,
        estimate_stated=stated,
        attained_gpu_s=run_seconds(job) * max(job.gpus * job.num_nodes, 1),
        last_preempted_s=preempted[-1] if preempted else None,
    )


def job_history(store: Store, limit: int = 500) -> HistoryEstimator:
    """Run times of recently finished jobs, by user and size: where guesses for jobs that state no
    estimate come from."""
    history = HistoryEstimator()
    for j in reversed(
        store.list_jobs([JobState.SUCCEEDED, JobState.FAILED], limit=limit, with_attempts=True)
    ):
        history.learn(j.user, max(j.gpus * j.num_nodes, 1), run_seconds(j))
    return history


def cluster_state(
    nodes: list[NodeRecord],
    running: list[tuple[JobRecord, AttemptRecord]],
    history: HistoryEstimator | None = None,
) -> ClusterState:
    """Nodes with what is free on them, and the jobs running there."""
    states = [
        NodeState(
            name=n.name, gpus=n.gpus, cpus=n.cpus, memory_bytes=n.memory_bytes, gpu_type=n.accelerator,
            free_gpus=n.gpus - n.used_gpus, free_cpus=n.cpus - n.used_cpus,
            free_memory_bytes=n.memory_bytes - n.used_memory_bytes,
        )
        for n in nodes
    ]  # fmt: skip
    jobs = [
        RunningJob(job_request(j, history), (Slice(a.node, j.gpus, j.cpus, j.memory_bytes),), a.started_at)
        for j, a in running
    ]
    return ClusterState(states, jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli-agent")
    parser.add_argument("--db", default=None)
    parser.add_argument("--policy", default=os.environ.get("SUANLI_POLICY"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Agent(Store(args.db), args.policy).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
