"""The local agent: a background process that schedules pending jobs onto this machine, starts them
through the executor, watches them and records how they end.

The first command that needs it starts it (control.ensure_agent); later commands find it through
SUANLI_HOME/agent.json, wake it with SIGUSR1 and send it submissions over its Unix socket. Jobs run
under their own supervisor (shim.py), so they survive the agent; a restarted agent reconciles every
RUNNING attempt: it adopts live ones, records the outcome of those that ended, and fails (or retries,
per the spec) those that vanished, once every process they left is stopped.

No request can take the agent down or hold it: each connection is answered on its own thread, with a
size limit and a read deadline, and any failure becomes a one-line error to that client and a line in
agent.log. The scheduling loop runs on the main thread only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import json
import logging
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from suanli.core.errors import BadInput, SuanliError
from suanli.core.files import write_private
from suanli.jobs.spec import load_spec
from suanli.jobs.states import IllegalTransition
from suanli.monitor.collect import Collector
from suanli.monitor.notify import Sender
from suanli.monitor.rules import MonitorConfig, load_monitor_config
from suanli.monitor.rules import config_path as monitor_path
from suanli.monitor.watch import Monitor
from suanli.run import admission, verify
from suanli.run.control import MAX_REQUEST_BYTES, info_path, peer_uid, read_agent_info, socket_path
from suanli.run.executor import Outcome
from suanli.run.local import LocalExecutor, run_dir_for
from suanli.run.metrics import LogTail, tail_text
from suanli.run.pool import PoolConfig, discover_local_node, load_pool_config
from suanli.run.provenance import Cosigner, record_attempt
from suanli.run.ray_executor import RAY_NODE, RayExecutor
from suanli.run.ray_pool import RayPool
from suanli.run.schedconfig import load_scheduler_config, make_policy
from suanli.run.scheduling import JobsView, decide_now, job_history
from suanli.schedule.estimates import HistoryEstimator
from suanli.schedule.policy import JobRequest
from suanli.store.ledger import LedgerLog
from suanli.store.paths import home
from suanli.store.records import AttemptRecord, JobRecord, NodeRecord, NodeSlice
from suanli.store.store import Store

log = logging.getLogger("suanli.agent")

HEARTBEAT_SECONDS = 10.0
HISTORY_REFRESH_SECONDS = 10.0  # finished jobs' run times change slowly; not re-read every tick
REQUEST_DEADLINE_SECONDS = 10.0  # a client has this long to send its whole request
MAX_CONCURRENT_REQUESTS = 64
SYNC_TIMEOUT_SECONDS = 120.0
# Each pass builds tens of thousands of short-lived objects beside a large, long-lived queue; with the
# interpreter's default thresholds most of a decision's time went to collecting (bench_live.py).
GC_THRESHOLDS = (50_000, 20, 100)
RAY_READ_TIMEOUT_S = 60.0  # a request waits this long for a Ray pool's first read of its nodes
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_OVERRIDES = {"backend", "ray_address", "user"}


class Agent:
    def __init__(
        self,
        store: Store,
        policy_name: str | None = None,
        job_umask: int = 0o022,
        pool: PoolConfig | None = None,
        monitor: MonitorConfig | None = None,
        metrics_address: str | None = None,
    ) -> None:
        self.store = store
        self.metrics_address = metrics_address  # HOST:PORT of the Prometheus endpoint; None: none
        self.monitor = Monitor(store, monitor)
        self.ledger = LedgerLog(store)
        self.cosigner = Cosigner(self.ledger)
        self._monitor_file: tuple[float, int] | None = _stat_key(monitor_path())
        self.collector = Collector()
        self.sender = Sender(self.monitor.db, lambda: self.monitor.config.notifiers)
        self.points: dict[tuple[int, int], int] = {}  # metric points stored per attempt
        self.cancelled_by: dict[tuple[int, int], str] = {}  # why a rule cancelled an attempt
        config = load_scheduler_config()
        if policy_name:
            config = config.model_copy(update={"policy": policy_name})
        self.policy = make_policy(config)
        self.executor = LocalExecutor(job_umask)
        self.pool_config = pool or PoolConfig()
        # A Ray cluster as the pool: its nodes are the pool's, every job runs through Ray on the nodes
        # the policy chose. Without one, this machine is the pool and `backend: ray` jobs get a local Ray.
        self.ray_pool = RayPool(self.pool_config) if self.pool_config.ray else None
        self._ray: RayExecutor | None = RayExecutor(self.ray_pool) if self.ray_pool else None
        self._pool_read_at = -1.0
        self._lost_at: dict[str, float] = {}  # nodes found gone by their attempts, and when
        self.node = discover_local_node()
        from suanli.monitor.owners import accounting_period_s

        self._accounting_period_s = accounting_period_s()
        self._accounted_until = 0.0
        self.tails: dict[tuple[int, int], LogTail] = {}
        self.term_sent: dict[tuple[int, int], float] = {}
        self.outcomes: dict[tuple[int, int], Outcome] = {}
        self.overrides: dict[tuple[int, int], str] = {}  # reasons that replace the process's own
        self.preempted: set[tuple[int, int]] = set()
        self.stopping = False
        self._last_heartbeat = 0.0
        self._last_memory_check = 0.0
        self._history = HistoryEstimator()
        self._history_at = 0.0
        self.view = JobsView(store)  # the PENDING and RUNNING jobs, read again only where they changed
        self._nodes: list[NodeRecord] | None = None  # the pool's nodes, as last read
        self._views: dict[tuple[int, int], JobRequest] = {}
        self._wake_w: int | None = None
        self._sync_lock = threading.Lock()
        self._sync_waiters: list[threading.Event] = []
        self._requests = threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS)
        self._db_identity = store.file_identity()
        self._last_error: tuple[str, float] = ("", 0.0)

    def executor_for(self, job: JobRecord) -> LocalExecutor | RayExecutor:
        if self.ray_pool is not None or job.spec.backend == "ray":
            if self._ray is None:
                self._ray = RayExecutor()
            self._ray.sample_interval = self.monitor.interval
            return self._ray
        return self.executor

    @property
    def pool_name(self) -> str:
        return f"ray {self.pool_config.ray}" if self.pool_config.ray else "local"

    def pool_nodes(self) -> set[str]:
        """Names of the nodes of this agent's pool, including those that left (their attempts are
        still this agent's to end)."""
        if self.ray_pool is not None:
            return {n.name for n in self.ray_pool.nodes}
        return {self.node.name, RAY_NODE}

    def _sync_pool(self) -> None:
        """Bring the stored nodes in line with the pool: Ray's nodes as they are now (those gone
        LOST), or this machine alone."""
        if self.ray_pool is None or self.ray_pool.read_at == self._pool_read_at:
            return
        self._pool_read_at = self.ray_pool.read_at
        current = {n.name: n for n in self.ray_pool.nodes}
        stored = {n.name: n for n in self.store.nodes(usage=False)}
        changed = []
        for n in current.values():
            before = stored.get(n.name)
            now = (True, n.cpus, n.memory_bytes, n.gpus, n.accelerator)
            if n.alive and self._lost_at.get(n.name, 0.0) > self.ray_pool.read_at:
                continue  # a read from before its attempts saw it die
            if n.alive and (before is None or (before.up, before.cpus, before.memory_bytes, before.gpus,
                                               before.accelerator) != now):  # fmt: skip
                changed.append((n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus))
                log.info("node %s joined the pool: %g CPUs, %s x %s", n.name, n.cpus, n.gpus, n.accelerator)
        gone = [
            name
            for name, rec in stored.items()
            if rec.up
            and (rec.pool != "local" or name == self.node.name)  # not other agents' machines
            and not (name in current and current[name].alive)
        ]
        if gone:
            log.warning("nodes left the pool: %s", ", ".join(gone))
        if changed or gone:
            owners = {c[0]: self.pool_config.owner_of(c[0]) for c in changed}
            self.store.register_nodes(changed, gone, pool=self.pool_name, owners=owners)
            self._nodes = None

    # ---- one pass -------------------------------------------------------------------------------

    def tick(self) -> None:
        self._sync_pool()
        self.view.refresh()
        running = self._watch_running()
        if self.monitor.due(time.time()):
            try:
                self._sample(running)
            except Exception as e:  # monitoring never stops scheduling
                self._log_once(f"sampling: {_one_line(e)}")
        self._schedule(running)
        now = time.time()
        self._record_accounting(now)
        if now - self._last_heartbeat > HEARTBEAT_SECONDS:
            pool = [n.name for n in self.ray_pool.nodes if n.alive] if self.ray_pool else []
            self.store.heartbeat(self.node.name, also=pool)
            self._last_heartbeat = now

    def _record_accounting(self, now: float) -> None:
        """Append the owners' accounting of the last complete period to the ledger, once (another agent
        of the pool may have done it: the entry's source makes it appended once)."""
        from suanli.monitor import owners

        since, until = owners.period_bounds(now, self._accounting_period_s)
        if until <= self._accounted_until:
            return
        try:
            if owners.owners_report(self.store, since=since, until=until)["owners"]:
                owners.record_period(self.store, since, until, self.ledger)
            self._accounted_until = until
        except Exception as e:  # the ledger is a record of the pool, never a reason to stop it
            self._log_once(f"recording the owners' accounting: {_one_line(e)}")

    def _watch_running(self) -> list[tuple[JobRecord, AttemptRecord]]:
        """Watch this pool's running attempts; returns those still running."""
        check_memory = time.time() - self._last_memory_check > 1.0
        if check_memory:
            self._last_memory_check = time.time()
        mine = self.pool_nodes()
        still = []
        for job, attempt in [(j, a) for j, a in self.view.running() if a.node in mine]:
            try:
                if self._watch(job, attempt, check_memory):
                    continue
            except Exception as e:  # one job's trouble (a full disk, a bad log) must not stall the others
                self._log_once(f"job {job.id} attempt {attempt.number}: {_one_line(e)}")
            still.append((job, attempt))
        return still

    def _watch(self, job: JobRecord, attempt: AttemptRecord, check_memory: bool) -> bool:
        """Read the attempt's metrics, stop it if asked, record its end; True once it has ended."""
        key = (job.id, attempt.number)
        executor = self.executor_for(job)
        tail = self.tails.get(key)
        if tail is None:
            done = sum(1 for p in self.store.metric_history(job.id) if p["attempt"] == attempt.number)
            tail = self.tails[key] = LogTail(executor.log_path(attempt), skip_points=done)
            self.points[key] = done
        # An outcome is kept until it is stored: if storing fails (a full disk), the next pass stores
        # the same words rather than polling a supervisor that is gone.
        outcome = self.outcomes.get(key) or executor.poll(job, attempt)
        if outcome is not None:
            self.outcomes[key] = outcome
        try:
            points = tail.read()
            self.store.add_metrics(job.id, attempt.number, points)
            tail.commit()  # only once the points are stored: a failed write reads them again next time
            self.points[key] = self.points.get(key, 0) + len(points)
        except Exception as e:  # metrics never keep an attempt from ending or being cancelled
            self._log_once(f"job {job.id} attempt {attempt.number}: metrics not stored: {_one_line(e)}")
        if outcome is None:
            if job.cancel_requested or key in self.term_sent:  # a stop, once begun, goes on to SIGKILL
                self._stop(key, job, attempt)
            elif check_memory and job.memory_bytes and executor is self.executor:
                self._check_memory(key, job, attempt)
            return False
        finished = outcome.exit_code == 0 and outcome.signal is None
        reason = (None if finished else self.overrides.get(key)) or outcome.reason
        if outcome.lost_nodes:  # not schedulable from now on, before the pool's next read says so
            self.store.register_nodes([], lost=list(outcome.lost_nodes))
            self._lost_at.update(dict.fromkeys(outcome.lost_nodes, time.time()))
            self._nodes = None
        # Before the attempt is seen to end, so a finished job always has its entry (an agent stopped in
        # between records it again on restart; the entry's source keeps it from being appended twice).
        self._record(job, attempt, outcome, reason)
        state = self.store.finish_attempt(
            job.id,
            attempt.number,
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            reason=reason,
            log_tail=tail_text(executor.log_path(attempt)) if outcome.exit_code != 0 else None,
            preempted=key in self.preempted or outcome.requeue,
            cancelled_by=self.cancelled_by.get(key),
        )
        log.info("job %s attempt %s ended: %s -> %s", job.id, attempt.number, reason, state)
        if verify.GROUP in job.spec.labels:
            self._settle(job.id)
        try:
            self.monitor.ended(job.id, attempt.number, outcome.usage)
        except Exception as e:
            self._log_once(f"job {job.id} attempt {attempt.number}: usage not stored: {_one_line(e)}")
        for d in (self.tails, self.term_sent, self.outcomes, self.overrides, self.points, self.cancelled_by):
            d.pop(key, None)
        self.preempted.discard(key)
        return True

    def _settle(self, job_id: int) -> None:
        """A replica of a `verify: replicate` job ended: compare it with the others once all have."""
        try:
            job = self.store.get(job_id)
            if job.is_terminal:
                decided = verify.settle(self.store, self.ledger, job)
                if decided is not None and decided.status != "waiting":
                    log.info("job %s: verification %s %s", job_id, decided.status, decided.flagged or "")
        except Exception as e:  # a verdict left undone never stops the pool
            self._log_once(f"job {job_id}: verification: {_one_line(e)}")

    def _record(self, job: JobRecord, attempt: AttemptRecord, outcome: Outcome, reason: str | None) -> None:
        """The attempt's provenance entry (and what its processes spooled) into the ledger."""
        try:
            job = self.store.get(job.id)  # with its final metrics
            result = {"exit_code": outcome.exit_code, "signal": outcome.signal, "reason": reason,
                      **(outcome.usage or {})}  # fmt: skip
            log_path = Path(self.executor_for(job).log_path(attempt))
            record_attempt(self.ledger, job, attempt, result, self.pool_name, log_path)
            self.cosigner.request()
        except Exception as e:  # the ledger never keeps an attempt from ending
            self._log_once(f"job {job.id} attempt {attempt.number}: not in the ledger: {_one_line(e)}")

    def _stop(self, key: tuple[int, int], job: JobRecord, attempt: AttemptRecord) -> None:
        """SIGTERM, then SIGKILL once the job's grace period has passed (checked on every pass)."""
        sent = self.term_sent.get(key)
        grace = job.spec.grace_period_s
        if sent is None:
            self.executor_for(job).cancel(attempt, force=grace <= 0)
            self.term_sent[key] = time.time()
        elif time.time() - sent > grace:
            self.executor_for(job).cancel(attempt, force=True)

    def _check_memory(self, key: tuple[int, int], job: JobRecord, attempt: AttemptRecord) -> None:
        used = self.executor.memory_bytes(attempt)
        self.monitor.check_memory(job, attempt, used)  # the alert comes before the stop
        if used > job.memory_bytes and key not in self.overrides:
            self.overrides[key] = (
                f"out of memory: used {used / 2**20:.0f} MiB, more than the "
                f"{job.memory_bytes / 2**20:.0f} MiB it requested (resources.memory)"
            )
            self.executor.cancel(attempt, force=True)

    def _sample(self, running: list[tuple[JobRecord, AttemptRecord]]) -> None:
        """Read what every running attempt uses (its process tree here; its workers' on a Ray pool),
        store it, evaluate the alert rules and carry out the actions they call for."""
        self._reload_rules()
        local = {(j.id, a.number): a for j, a in running if self.executor_for(j) is self.executor and a.pid}
        roots = {k: a.pid for k, a in local.items()}
        gpus = {k: a.gpu_indices for k, a in local.items()}
        found = self.collector.sample(roots, gpus, supervised=True)
        readings = {k: {local[k].node: r} for k, r in found.items()}
        if self._ray is not None:
            for job, attempt in running:
                if self.executor_for(job) is self._ray:
                    readings[(job.id, attempt.number)] = self._ray.readings(attempt)
        progress = {}
        for job, attempt in running:
            key = (job.id, attempt.number)
            try:
                size = self.executor_for(job).log_path(attempt).stat().st_size
            except OSError:
                size = 0
            progress[key] = (size, self.points.get(key, 0))
        actions = self.monitor.observe(running, readings, progress)
        self.sender.wake()
        for action in actions:
            for job, attempt in running:
                if (job.id, attempt.number) != (action.job_id, action.attempt):
                    continue
                key = (job.id, attempt.number)
                log.warning("job %s attempt %s: %s", job.id, attempt.number, action.reason)
                self.overrides[key] = action.reason
                if action.action == "cancel":
                    self.cancelled_by[key] = action.reason
                    self.store.request_cancel(job.id)
                else:
                    self.preempted.add(key)
                self._stop(key, job, attempt)
                self.monitor.db.mark_acted(action.alert_id, action.action)

    def _reload_rules(self) -> None:
        """alerts.yaml again when it changed; a broken edit keeps the rules in force (and says why)."""
        key = _stat_key(monitor_path())
        if key == self._monitor_file:
            return
        self._monitor_file = key
        try:
            self.monitor.config = load_monitor_config()
        except SuanliError as e:
            log.error("alert rules not reloaded: %s", e)
            return
        log.info("alert rules reloaded from %s", monitor_path())

    def _schedule(self, running: list[tuple[JobRecord, AttemptRecord]]) -> None:
        """One decision of the policy over the whole pool; start and preempt what it says."""
        pending = self.view.pending()
        if not pending:
            return
        if self._nodes is None:  # read again only when the pool changed
            mine = self.pool_nodes()
            self._nodes = [n for n in self.store.nodes(usage=False) if n.name in mine]
        nodes = self._nodes
        if time.time() - self._history_at > HISTORY_REFRESH_SECONDS:
            self._history, self._history_at = job_history(self.store), time.time()
            self._views.clear()  # guesses from history may have changed
        decided = decide_now(self.store, self.policy, nodes, running=running, pending=pending,
                             history=self._history, cache=self._views)  # fmt: skip
        for pre in decided.decisions.preemptions:
            for job, attempt in running:
                if job.id == pre.job_id:
                    key = (job.id, attempt.number)
                    if key not in self.preempted:
                        log.info("preempting job %s attempt %s: %s", job.id, attempt.number, pre.reason)
                    self.preempted.add(key)
                    self.overrides[key] = f"preempted: {pre.reason}"
                    self._stop(key, job, attempt)
        # Nodes where an attempt is still stopping (its grace period) take no new work until it is
        # gone: the next pass decides again on what is really free.
        stopping = {n for j, a in running if (j.id, a.number) in self.term_sent for n in a.nodes}
        used_gpus = {(s.node, i) for _, a in running for s in a.placement or () for i in a.gpu_indices}
        used_gpus |= {(a.node, i) for _, a in running if not a.placement for i in a.gpu_indices}
        by_node = {n.name: n for n in nodes}
        for start in decided.decisions.starts:
            job = decided.jobs[start.job_id]
            placement = [NodeSlice(s.node, s.gpus, s.cpus, s.memory_bytes) for s in start.placement]
            if stopping & {s.node for s in placement}:
                continue
            gpu_indices: list[int] = []
            if self.ray_pool is None and placement:  # this machine's GPUs by index; Ray assigns its own
                node = placement[0].node
                free = [i for i in range(by_node[node].gpus) if (node, i) not in used_gpus]
                gpu_indices = free[: job.gpus]
                used_gpus.update((node, i) for i in gpu_indices)
            self._launch(job, placement, gpu_indices)

    def _launch(self, job: JobRecord, placement: list[NodeSlice], gpu_indices: list[int]) -> None:
        node = placement[0].node if placement else self.node.name
        try:
            attempt = self.store.start_attempt(job.id, node, gpu_indices, run_dir_for, placement)
        except IllegalTransition:
            return  # cancelled (or started elsewhere) since we read it
        try:
            handle = self.executor_for(job).launch(job, attempt, self.store.secrets(job.id))
        except Exception as e:  # nothing a launch raises may leave the job RUNNING with no process
            self.store.finish_attempt(
                job.id, attempt.number, exit_code=None, signal=None, reason=f"launch failed: {e}"
            )
            return
        if handle.pid:  # Ray attempts have no local process
            self.store.set_attempt_process(job.id, attempt.number, handle.pid, handle.started_at)
            self.view.touch(job.id)  # its attempt now has a process id
        log.info("job %s attempt %s started on %s, pid %s", job.id, attempt.number,
                 ", ".join(attempt.nodes), handle.pid)  # fmt: skip

    # ---- the loop -------------------------------------------------------------------------------

    def handle(self, request: object) -> dict:
        """One request from a client, on its own thread; errors come back with their exit code,
        nothing half-done, and the agent goes on whatever happened."""
        try:
            if not isinstance(request, dict):
                return _bad("request", type(request).__name__, "must be a JSON object with an `op`")
            op = request.get("op")
            if op == "submit":
                return self._submit(request)
            if op == "sync":
                return self._sync()
            if op == "ping":
                return {"pid": os.getpid()}
            return _bad("op", op, "must be submit, sync or ping")
        except SuanliError as e:
            return {"error": str(e), "exit_code": e.exit_code}
        except RecursionError:
            return _bad("request", "(too deeply nested)", "must nest less deeply")
        except Exception as e:  # a bug, a full disk, a corrupt database: the client hears, the agent goes on
            log.exception("request %.200r failed", request)
            return {"error": f"the agent could not handle the request: {_one_line(e)}", "exit_code": 1}

    def _submit(self, request: dict) -> dict:
        path = request.get("path")
        if not isinstance(path, str) or not path:
            return _bad("path", path, "must be the path of a job file")
        env = _str_map(request.get("env"), "env")
        overrides = request.get("overrides") or {}
        if not isinstance(overrides, dict) or not set(overrides) <= _OVERRIDES:
            return _bad("overrides", overrides, f"may only set {', '.join(sorted(_OVERRIDES))}")
        key = request.get("key")
        if key is not None and not (isinstance(key, str) and _KEY.fullmatch(key)):
            return _bad("key", key, "must be 1-100 letters, digits or . _ : -")
        spec = load_spec(path, env_overrides=env or None, overrides=overrides)
        if spec.ray_address and spec.ray_address != self.pool_config.ray:
            raise BadInput("ray_address", spec.ray_address, f"the agent's pool is {self.pool_name}",
                           hint="one agent per pool: `suanli agent stop` first to change it")  # fmt: skip
        if self.ray_pool is not None:
            self.ray_pool.wait_read(RAY_READ_TIMEOUT_S)
            nodes = self.ray_pool.records()
        else:
            nodes = [n for n in self.store.nodes() if n.name == self.node.name]
        (job_id,) = admission.admit(self.store, [spec], nodes or None, key=key)
        self.wake()  # the main loop starts it now if it fits
        return {"id": job_id}

    def _sync(self) -> dict:
        """Answer once a whole pass has run after this request (and the pool was read once)."""
        if self.ray_pool is not None:
            self.ray_pool.wait_read(RAY_READ_TIMEOUT_S)
        done = threading.Event()
        with self._sync_lock:
            self._sync_waiters.append(done)
        self.wake()
        if not done.wait(SYNC_TIMEOUT_SECONDS):
            return {"error": f"the agent did not finish a pass within {SYNC_TIMEOUT_SECONDS:.0f} s",
                    "exit_code": 1}  # fmt: skip
        return {"synced": True}

    def wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"\0")

    def _serve_connection(self, conn: socket.socket) -> None:
        """Read one request (size limit, deadline), answer it, close."""
        try:
            with conn:
                if peer_uid(conn) != os.getuid():
                    log.warning("refused a connection from another user's process")
                    return
                try:
                    request = json.loads(_read_request(conn))
                    answer = self.handle(request)
                except BadInput as e:
                    answer = {"error": str(e), "exit_code": 2}
                except (ValueError, RecursionError) as e:
                    answer = _bad("request", "(not JSON)", f"must be one JSON line ({_one_line(e)})")
                with contextlib.suppress(OSError):
                    conn.settimeout(REQUEST_DEADLINE_SECONDS)
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                    _drain(conn)
        except Exception:
            log.exception("a connection failed")
        finally:
            self._requests.release()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.exception("accept failed")
                return
            conn.setblocking(True)
            if not self._requests.acquire(blocking=False):
                with conn, contextlib.suppress(OSError):
                    conn.settimeout(1.0)
                    busy = {"error": "the agent is busy with other requests; try again", "exit_code": 1}
                    conn.sendall(json.dumps(busy).encode() + b"\n")
                continue
            threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()

    def _database_gone(self) -> bool:
        """True when the SQLite file the agent opened was removed or replaced: serving on would
        acknowledge jobs into a file nobody can see again."""
        if self._db_identity is None:
            return False
        now = self.store.file_identity()
        if now == self._db_identity:
            return False
        what = "removed" if now is None else "replaced"
        log.error("the database file %s was %s; the agent stops (jobs keep running)", self.store.path, what)
        return True

    def _log_once(self, message: str) -> None:
        """Log a failing tick's error once a minute, not four times a second."""
        last, at = self._last_error
        if message != last or time.time() - at > 60:
            log.error("tick failed: %s", message, exc_info=message != last)
            self._last_error = (message, time.time())

    def _listen(self, sock_path: str) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # owner-only: whoever can connect can run jobs as us
        try:
            listener.bind(sock_path)
        finally:
            os.umask(old_umask)
        listener.listen(64)
        listener.setblocking(False)
        return listener

    def serve(self) -> int:
        """The loop: tick, answer, repeat until SIGTERM. Returns the process exit code."""
        # The lock is on SUANLI_HOME itself: a lock file could be deleted, letting a second agent in.
        lock = os.open(home(), os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another agent holds the lock; exiting")
            return 0
        metrics = None
        if self.metrics_address:  # before anything else: an address it cannot listen on stops the start
            from suanli.monitor.prometheus import serve_metrics

            try:
                metrics = serve_metrics(self.store, self.metrics_address)
            except SuanliError as e:
                log.error("%s", e)
                return e.exit_code
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        self._wake_w = wake_w
        signal.set_wakeup_fd(wake_w)

        def stop(_signum: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, lambda *_: None)
        signal.signal(signal.SIGCHLD, lambda *_: None)

        sock_path = socket_path()
        listener = self._listen(sock_path)
        sock_id = _identity(sock_path)

        n = self.node
        if self.ray_pool is None:
            self.store.register_node(
                n.name, n.cpus, n.memory_bytes, n.accelerator, n.gpus, self.pool_config.owner_of(n.name)
            )
            # Nodes of a Ray pool an earlier agent served are not this pool's any more.
            ray_nodes = [r.name for r in self.store.nodes() if r.up and r.pool != "local"]
            self.store.register_nodes([], lost=ray_nodes)
        else:
            self.ray_pool.start()
        import psutil

        info = {
            "pid": os.getpid(),
            "started_at": psutil.Process().create_time(),
            "db_url": self.store.url,
            "node": n.name,
            "pool": self.pool_name,
            "socket": sock_path,
            "metrics_address": metrics.address if metrics else None,
        }
        write_private(info_path(), json.dumps(info))
        if metrics:  # anyone who reaches this port reads job ids and user names
            log.info("Prometheus metrics at %s", metrics.url)
        self.sender.start()
        log.info("agent %s up on node %s, pool %s (%s)", os.getpid(), n.name, self.pool_name, self.store.url)
        code = 0
        try:
            while not self.stopping:
                if self._database_gone():
                    code = 1
                    break
                with self._sync_lock:
                    waiters, self._sync_waiters = self._sync_waiters, []
                try:
                    self.tick()
                except Exception as e:
                    self._log_once(_one_line(e))
                for done in waiters:
                    done.set()
                if _identity(sock_path) != sock_id:  # deleted or replaced: listen again
                    log.warning("socket %s was removed; listening again", sock_path)
                    listener.close()
                    listener, sock_id = self._listen(sock_path), _identity(sock_path)
                timeout = 0.25 if self.tails or self._sync_waiters else 2.0
                if self.tails and self.monitor.interval:
                    timeout = min(timeout, self.monitor.interval)
                ready, _, _ = select.select([wake_r, listener], [], [], timeout)
                if listener in ready:
                    self._accept(listener)
                if wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 512):
                            pass
        finally:
            listener.close()
            if metrics is not None:
                metrics.shutdown()
            current = read_agent_info()
            if current is not None and current.pid == os.getpid():
                info_path().unlink(missing_ok=True)
                if _identity(sock_path) == sock_id:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(sock_path)
            if self.ray_pool is not None:
                self.ray_pool.stop()
            self.sender.stop()
            log.info("agent %s stopped", os.getpid())
        return code


def _stat_key(path: object) -> tuple[float, int] | None:
    try:
        st = os.stat(path)  # type: ignore[arg-type]
    except OSError:
        return None
    return st.st_mtime, st.st_size


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text}"[:300]


def _bad(field: str, value: object, allowed: str) -> dict:
    shown = value if isinstance(value, str) else repr(value)
    return {"error": str(BadInput(field, shown[:80], allowed)), "exit_code": 2}


def _str_map(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(x, str) for kv in value.items() for x in kv):
        raise BadInput(field, repr(value)[:80], "must be a mapping of names to strings")
    return value


def _drain(conn: socket.socket) -> None:
    """Read what a client still sends (an oversized request) until it closes, for a bounded time:
    closing with unread data resets the connection, and the client would never see its answer."""
    conn.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        conn.settimeout(left)
        if not conn.recv(1 << 16):
            return


def _read_request(conn: socket.socket) -> bytes:
    """One request line: at most MAX_REQUEST_BYTES, all of it within REQUEST_DEADLINE_SECONDS (a client
    sending a byte at a time cannot hold its thread, let alone the agent)."""
    deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise BadInput("request", "(incomplete)", f"must arrive within {REQUEST_DEADLINE_SECONDS:.0f} s")
        conn.settimeout(left)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            limit = f"must be at most {MAX_REQUEST_BYTES // 2**20} MiB (a job file travels by path)"
            raise BadInput("request", f"{len(data)}+ bytes", limit)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli-agent")
    parser.add_argument("--db", default=None)
    parser.add_argument("--policy", default=os.environ.get("SUANLI_POLICY"))
    parser.add_argument("--ray-address", default=None, help="a Ray cluster as the pool")
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get("SUANLI_METRICS_ADDRESS") or None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (loopback unless Prometheus is elsewhere: "
        "whoever reaches the port reads job ids and user names)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    job_umask = os.umask(0o077)  # whatever the agent writes is its user's alone; jobs get the user's
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        pool = load_pool_config(args.ray_address)
        monitor = load_monitor_config()
        from suanli.monitor.owners import accounting_period_s

        accounting_period_s()  # a bad SUANLI_ACCOUNTING_PERIOD stops the start with one line
        if args.metrics_address:
            from suanli.monitor.prometheus import parse_address

            parse_address(args.metrics_address)
    except SuanliError as e:
        log.error("%s", e)
        return e.exit_code
    agent = Agent(Store(args.db), args.policy, job_umask, pool, monitor, metrics_address=args.metrics_address)
    return agent.serve()


if __name__ == "__main__":
    sys.exit(main())
