"""The Prometheus exposition: what runs on the pool, read from the store at each scrape.

`suanli agent --metrics-address HOST:PORT` serves it at http://HOST:PORT/metrics (serve_metrics
below); `suanli server` at /metrics behind its bearer tokens. Names follow Prometheus's rules: base
units (seconds, bytes, joules), ratios 0-1, counters ending in `_total`, one metric one meaning.

Labels and their cardinality: a job's series carry `job_id` and `user` only, and exist only while the
job runs, so their number is bounded by the running jobs (a job's name and project are on its one
`suanli_job_info` series). A job's series sum its nodes: a node label would multiply the series of
multi-node jobs and its values are in the job's placement anyway. The attempt is not a label: a
requeued job's counters start again from zero, which Prometheus reads as a counter reset (`rate` and
`increase` stay right). Pool series carry `node` (the pool's machines), `state` (two values) and `rule`
(the alert rules configured), each bounded by configuration, not by traffic.

A scrape costs five reads of the store whatever the number of running jobs: the running attempts,
their last samples, the job counts by state, the open alerts by rule, the nodes.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Collection, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from suanli.core.errors import BadInput
from suanli.jobs.states import JobState
from suanli.monitor.cost import hourly_usd
from suanli.store import models as m
from suanli.store.monitoring import MonitorStore
from suanli.store.records import NodeSlice, attempt_slices
from suanli.store.store import Store

log = logging.getLogger("suanli.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_LABELS = ("job_id", "user")
NODE_GONE_AFTER_S = 86400.0  # a node not up is reported this long after its last heartbeat, then dropped
MIN_RENDER_INTERVAL_S = 1.0  # scrapes closer together than this get the same body (the store is read once)
MAX_CONNECTIONS = 16  # open connections to the agent's endpoint; more are closed at once
REQUEST_TIMEOUT_S = 10.0  # a client has this long to send its request
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]")
ADDRESS_RULE = "must be HOST:PORT, e.g. 127.0.0.1:9464 (port 1-65535, 0: any free one; IPv6: [::1]:9464)"


def parse_address(value: str, field: str = "--metrics-address") -> tuple[str, int]:
    """(host, port) of HOST:PORT; BadInput otherwise. An IPv6 host is written in brackets."""
    host, sep, port = value.rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise BadInput(field, value, ADDRESS_RULE)
    if int(port) > 65535:
        raise BadInput(field, value, ADDRESS_RULE)
    return host.strip("[]"), int(port)


def check_address(value: str, *, free: bool = True, field: str = "--metrics-address") -> None:
    """BadInput unless `value` is HOST:PORT and (with `free`) something could listen there now: the
    command line says so in one line rather than an agent failing to start in the background."""
    host, port = parse_address(value, field)
    if not free:
        return
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            s.bind((host, port))
    except (OSError, OverflowError) as e:
        raise BadInput(field, value, f"cannot listen there: {getattr(e, 'strerror', None) or e}") from None


# ---- what a scrape reads -------------------------------------------------------------------------


class StoreCollector(Collector):
    """Reads the store at each scrape. `projects`: only the jobs (and alerts) of these projects (a
    server token that is not an admin's); None: all of them."""

    def __init__(self, store: Store, projects: Collection[str] | None = None) -> None:
        self.store = store
        self.projects = None if projects is None else set(projects)

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the families are read from the store

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        every = self.store.running()
        running = [(j, a) for j, a in every if self.projects is None or j.project in self.projects]
        samples = MonitorStore(self.store).last_samples({(j.id, a.number) for j, a in running})
        yield from _job_families(running, samples, now)
        held: dict[str, list[NodeSlice]] = {}  # what every running job holds on each node
        for job, attempt in every:
            for sl in attempt_slices(job, attempt):
                held.setdefault(sl.node, []).append(sl)
        yield from self._pool_families(held, now)

    def _pool_families(self, held: dict[str, list[NodeSlice]], now: float) -> Iterator[Metric]:
        states = (JobState.PENDING, JobState.RUNNING)
        jobs_q = select(m.Job.state, func.count()).where(m.Job.state.in_([str(s) for s in states]))
        alerts_q = select(m.Alert.rule, func.count()).where(m.Alert.closed_at.is_(None))
        if self.projects is not None:
            jobs_q = jobs_q.where(m.Job.project.in_(list(self.projects)))
            alerts_q = alerts_q.where(m.Alert.project.in_(list(self.projects)))
        with self.store._read() as s:
            counts = dict(s.execute(jobs_q.group_by(m.Job.state)).all())
            alerts = dict(s.execute(alerts_q.group_by(m.Alert.rule)).all())
        nodes = self.store.nodes(usage=False)

        jobs = GaugeMetricFamily("suanli_jobs", "Jobs in each state (PENDING, RUNNING).", labels=["state"])
        for state in states:
            jobs.add_metric([str(state)], counts.get(str(state), 0))
        yield jobs
        open_alerts = GaugeMetricFamily(
            "suanli_alerts_open", "Open alerts of each alert rule (SUANLI_HOME/alerts.yaml).", labels=["rule"]
        )
        for rule, n in sorted(alerts.items()):
            open_alerts.add_metric([rule], n)
        yield open_alerts

        def node_gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=["node"])

        fams = {
            "up": node_gauge("suanli_node_up", "1 while the node is in the pool, 0 once it was lost."),
            "info": InfoMetricFamily("suanli_node", "The node's pool and accelerator.", labels=["node"]),
            "cpus": node_gauge("suanli_node_cpu_cores", "CPU cores the node offers."),
            "cpus_used": node_gauge(
                "suanli_node_cpu_allocated_cores", "CPU cores running jobs hold on the node."
            ),
            "mem": node_gauge("suanli_node_memory_bytes", "Memory the node offers."),
            "mem_used": node_gauge(
                "suanli_node_memory_allocated_bytes", "Memory running jobs hold on the node."
            ),
            "gpus": node_gauge("suanli_node_gpus", "GPUs the node offers."),
            "gpus_used": node_gauge("suanli_node_gpus_allocated", "GPUs running jobs hold on the node."),
            "beat": node_gauge(
                "suanli_node_heartbeat_timestamp_seconds", "When the node was last seen (Unix time)."
            ),
        }
        for n in nodes:
            if not n.up and now - n.heartbeat_at > NODE_GONE_AFTER_S:
                continue
            key = [n.name]
            fams["up"].add_metric(key, 1.0 if n.up else 0.0)
            fams["info"].add_metric(key, {"pool": n.pool, "accelerator": n.accelerator or ""})
            fams["cpus"].add_metric(key, n.cpus)
            fams["cpus_used"].add_metric(key, sum(sl.cpus for sl in held.get(n.name, ())))
            fams["mem"].add_metric(key, n.memory_bytes)
            fams["mem_used"].add_metric(key, sum(sl.memory_bytes for sl in held.get(n.name, ())))
            fams["gpus"].add_metric(key, n.gpus)
            fams["gpus_used"].add_metric(key, sum(sl.gpus for sl in held.get(n.name, ())))
            fams["beat"].add_metric(key, n.heartbeat_at)
        yield from fams.values()


def _job_families(running: list, samples: dict[tuple[int, int, str], dict], now: float) -> Iterator[Metric]:
    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=JOB_LABELS)

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=JOB_LABELS)

    info = InfoMetricFamily("suanli_job", "A running job's name and project.", labels=JOB_LABELS)
    f = {
        "attempt": gauge("suanli_job_attempt", "The running attempt's number (1 for the first run)."),
        "start": gauge("suanli_job_start_time_seconds", "When the running attempt started (Unix time)."),
        "cpus": gauge("suanli_job_cpu_requested_cores", "CPU cores the job holds (summed over its nodes)."),
        "mem": gauge("suanli_job_memory_requested_bytes", "Memory the job holds (summed over its nodes)."),
        "gpus": gauge("suanli_job_gpus_requested", "GPUs the job holds (summed over its nodes)."),
        "cost": counter(
            "suanli_job_cost_usd", "US dollars of what the running attempt holds, at suanli's price model."
        ),
        "cpu": counter("suanli_job_cpu_seconds", "CPU time the running attempt's processes used."),
        "cores": gauge(
            "suanli_job_cpu_cores", "CPU cores kept busy, averaged over the last sample interval."
        ),
        "rss": gauge("suanli_job_memory_resident_bytes", "Resident memory of the job's processes."),
        "gpu": gauge(
            "suanli_job_gpu_utilization_ratio", "Share 0-1 of the job's GPUs' time spent computing (NVML)."
        ),
        "gpu_mem": gauge("suanli_job_gpu_memory_used_bytes", "GPU memory the job's processes use (NVML)."),
        "energy": counter("suanli_job_gpu_energy_joules", "Energy the job's GPUs used (NVML)."),
        "read": counter("suanli_job_disk_read_bytes", "Bytes the job's processes read from storage."),
        "write": counter("suanli_job_disk_written_bytes", "Bytes the job's processes wrote to storage."),
        "log": counter("suanli_job_log_bytes", "Bytes the running attempt wrote to its log."),
        "points": counter("suanli_job_metric_points", "Metric points the running attempt reported."),
        "sampled": gauge(
            "suanli_job_last_sample_timestamp_seconds", "When the job was last sampled (Unix time)."
        ),
    }
    by_attempt: dict[tuple[int, int], list[dict]] = {}
    for (job_id, attempt, _node), row in samples.items():
        by_attempt.setdefault((job_id, attempt), []).append(row)
    for job, attempt in running:
        key = [str(job.id), job.user]
        slices = attempt_slices(job, attempt)
        info.add_metric(key, {"name": job.name or "", "project": job.project or ""})
        f["attempt"].add_metric(key, attempt.number)
        f["start"].add_metric(key, attempt.started_at)
        f["cpus"].add_metric(key, sum(s.cpus for s in slices))
        f["mem"].add_metric(key, sum(s.memory_bytes for s in slices))
        f["gpus"].add_metric(key, sum(s.gpus for s in slices))
        usd_per_hour = sum(hourly_usd(s.gpus, job.accelerator, s.cpus) for s in slices)
        f["cost"].add_metric(key, usd_per_hour * max(0.0, now - attempt.started_at) / 3600)
        rows = by_attempt.get((job.id, attempt.number))
        if not rows:
            continue  # not sampled yet
        f["cpu"].add_metric(key, sum(r["cpu_seconds"] or 0.0 for r in rows))
        f["cores"].add_metric(key, sum(r["cpu_cores"] or 0.0 for r in rows))
        f["rss"].add_metric(key, sum(r["rss_bytes"] or 0 for r in rows))
        f["read"].add_metric(key, sum(r["read_bytes"] or 0 for r in rows))
        f["write"].add_metric(key, sum(r["write_bytes"] or 0 for r in rows))
        f["log"].add_metric(key, max(r["log_bytes"] or 0 for r in rows))  # the attempt's, on each node's row
        f["points"].add_metric(key, max(r["metric_points"] or 0 for r in rows))
        f["sampled"].add_metric(key, max(r["at"] for r in rows))
        utils = [r["gpu_util"] for r in rows if r["gpu_util"] is not None]
        if utils:
            f["gpu"].add_metric(key, min(1.0, max(0.0, sum(utils) / len(utils))))
        gpu_mem = [r["gpu_memory_bytes"] for r in rows if r["gpu_memory_bytes"] is not None]
        if gpu_mem:
            f["gpu_mem"].add_metric(key, sum(gpu_mem))
        energy = [r["gpu_energy_j"] for r in rows if r["gpu_energy_j"] is not None]
        if energy:
            f["energy"].add_metric(key, sum(energy))
    yield info
    yield from f.values()


def registry_for(store: Store, projects: Collection[str] | None = None) -> CollectorRegistry:
    """A registry of its own (never prometheus_client's global one) holding the store's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, projects))
    return registry


def render(store: Store, projects: Collection[str] | None = None) -> bytes:
    """The exposition text (format 0.0.4) of the store now: every job, or those of `projects`."""
    return generate_latest(registry_for(store, projects))


# ---- the agent's endpoint ------------------------------------------------------------------------


class _Renderer:
    """One render at a time, reused for MIN_RENDER_INTERVAL_S: however often the endpoint is asked,
    the store is read at most once a second."""

    def __init__(self, store: Store) -> None:
        self.registry = registry_for(store)
        self.lock = threading.Lock()
        self.body = b""
        self.at = float("-inf")

    def __call__(self) -> bytes:
        with self.lock:
            if time.monotonic() - self.at >= MIN_RENDER_INTERVAL_S:
                self.body, self.at = generate_latest(self.registry), time.monotonic()
            return self.body


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_S
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "suanli"

    def do_GET(self) -> None:
        if self._foreign_host():
            self._send(
                403, b"forbidden: address this endpoint by IP or localhost\n", "text/plain; charset=utf-8"
            )
            return
        if self.path.split("?", 1)[0] != "/metrics":
            self._send(404, b"not found: metrics are at /metrics\n", "text/plain; charset=utf-8")
            return
        try:
            body = self.server.render()
        except Exception as e:  # the store unreachable: the scrape fails, the endpoint goes on
            self.server.report(f"metrics not rendered: {type(e).__name__}: {' '.join(str(e).split())[:200]}")
            self._send(
                500,
                b"metrics could not be read from the store; see the agent's log\n",
                "text/plain; charset=utf-8",
            )
            return
        self._send(200, body, CONTENT_TYPE)

    def do_HEAD(self) -> None:
        status = 403 if self._foreign_host() else 404 if self.path.split("?", 1)[0] != "/metrics" else 200
        self._send(status, b"", CONTENT_TYPE, head=True)

    def _foreign_host(self) -> bool:
        """On loopback, a request named for another host: a web page the user visits that pointed its
        own name at 127.0.0.1 (DNS rebinding) to read job ids and user names. Prometheus names an IP."""
        if not self.server.loopback:
            return False
        host = (self.headers.get("Host") or "").strip()
        if not host:
            return False
        name = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
        if name.lower() == "localhost":
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return True
        return False

    def _send(self, status: int, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds would fill the agent's log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], render: _Renderer, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.render = render
        self.loopback = _is_loopback(address[0])
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._last_report = ("", 0.0)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many open: this one is closed, the others go on
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        import sys

        e = sys.exc_info()[1]
        self.report(f"metrics request from {client_address[0]} failed: {type(e).__name__}: {e}")

    def report(self, message: str) -> None:
        """One log line per distinct problem a minute, not one per scrape."""
        last, at = self._last_report
        if message != last or time.monotonic() - at > 60:
            log.warning("%s", message[:300])
            self._last_report = (message, time.monotonic())


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MetricsServer:
    """The agent's /metrics endpoint on its own daemon thread; `address` is where it listens."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread
        host, port = server.server_address[:2]
        self.address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        self.url = f"http://{self.address}/metrics"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(store: Store, address: str) -> MetricsServer:
    """Serve the store's metrics at http://ADDRESS/metrics (404 elsewhere) until `.shutdown()`.
    Anyone who can reach the port reads job ids and user names: keep it on loopback, or behind a
    firewall that lets only Prometheus in. BadInput for an address that is wrong or taken."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        server = _Server((host, port), _Renderer(store), family)
    except (OSError, OverflowError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise BadInput("--metrics-address", address, f"cannot listen there: {reason}") from None
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
