"""The Prometheus endpoint as Prometheus sees it: a real Prometheus (Debian's package; CI installs it)
scrapes the agent's /metrics and finds a running job's CPU series; `promtool check metrics` finds
nothing to say about a scrape; bad `--metrics-address` values are refused in one line.

One agent and one Prometheus serve the whole module (each costs seconds to start)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobhelpers import cleanup_home, cli, cli_json, invoke, wait_for

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _need_prometheus() -> None:
    if not os.path.exists(PROMETHEUS):
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide {PROMETHEUS} (Debian's prometheus package; see .ci/run)")
        pytest.skip(f"no {PROMETHEUS}: `apt-get install prometheus` to run this test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@dataclass
class Rig:
    home: Path
    env: dict[str, str]
    metrics_url: str
    job_id: int
    prometheus_url: str
    prometheus: subprocess.Popen
    prometheus_log: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    """An agent sampling every 0.5 s with its metrics on a loopback port, a CPU-burning job on it, and a
    Prometheus scraping the agent every second."""
    _need_prometheus()
    base = tmp_path_factory.mktemp("prom")
    home = base / "home"
    home.mkdir(mode=0o700)
    (home / "alerts.yaml").write_text("sample_interval: 0.5s\n")
    env = {"SUANLI_HOME": str(home), "SUANLI_DB_URL": f"sqlite:///{home / 'suanli.db'}"}
    prometheus, job_id = None, 0
    try:
        agent = cli_json("agent", "start", "--metrics-address", "127.0.0.1:0", env=env)
        metrics_url = f"http://{agent['metrics_address']}/metrics"
        (base / "burn.yaml").write_text(
            "name: burner\nresources:\n  cpus: 1\nrun: \"python3 -c 'while True: pass'\"\n"
        )
        job_id = cli_json("submit", str(base / "burn.yaml"), env=env)["id"]

        port = _free_port()
        (base / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: suanli\n    static_configs:\n"
            f"      - targets: ['{agent['metrics_address']}']\n"
        )
        log = open(base / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process below
        prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        yield Rig(
            home, env, metrics_url, job_id, f"http://127.0.0.1:{port}", prometheus, base / "prometheus.log"
        )
    finally:
        if prometheus is not None:
            prometheus.terminate()
            try:
                prometheus.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
            log.close()
        if (home / "agent.json").exists():
            if job_id:
                cli("cancel", str(job_id), env=env)
            cli("agent", "stop", env=env)
        cleanup_home(home)  # the job's process group, and the agent if it did not stop


def _query(rig: Rig, promql: str) -> list[dict]:
    assert rig.prometheus.poll() is None, rig.prometheus_log.read_text()[-3000:]
    url = f"{rig.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        status, text = _get(url, timeout=5)
    except OSError:
        return []  # Prometheus is still starting
    if status != 200:
        return []
    return json.loads(text)["data"]["result"]


def test_prometheus_scrapes_a_running_jobs_cpu_series(rig: Rig):
    series = f'suanli_job_cpu_seconds_total{{job_id="{rig.job_id}"}}'
    found = wait_for(lambda: _query(rig, f"{series} > 0"), timeout=120, interval=0.5)
    assert len(found) == 1
    labels, (_, value) = found[0]["metric"], found[0]["value"]
    assert float(value) > 0
    assert labels["job_id"] == str(rig.job_id) and labels["user"] and labels["job"] == "suanli"
    assert labels.keys() == {"__name__", "job_id", "user", "job", "instance"}  # nothing of high cardinality
    (info,) = _query(rig, f'suanli_job_info{{job_id="{rig.job_id}"}}')
    assert info["metric"]["name"] == "burner"


def _scrape_with_the_job(rig: Rig) -> str:
    def sampled() -> str | None:
        status, text = _get(rig.metrics_url)
        assert status == 200
        return text if f'suanli_job_cpu_seconds_total{{job_id="{rig.job_id}"' in text else None

    return wait_for(sampled, timeout=120, interval=0.2)


def test_promtool_finds_nothing_to_say_about_a_scrape(rig: Rig):
    text = _scrape_with_the_job(rig)
    for name in ("suanli_job_cpu_cores", "suanli_job_memory_resident_bytes", "suanli_job_cost_usd_total",
                 'suanli_jobs{state="RUNNING"} 1.0', "suanli_node_up"):  # fmt: skip
        assert name in text
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_the_endpoint_answers_only_metrics_and_survives_bad_requests(rig: Rig):
    host, port = urllib.parse.urlsplit(rig.metrics_url).netloc.rsplit(":", 1)
    assert _get(rig.metrics_url.replace("/metrics", "/"))[0] == 404
    assert _get(rig.metrics_url.replace("/metrics", "/metrics/../etc/passwd"))[0] == 404
    for raw in (b"garbage\r\n\r\n", b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 100_000 + b"\r\n\r\n",
                b"\x00\xff" * 100, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"):  # fmt: skip
        # The server may answer and close before the whole request is sent: the client's side of that
        # (a reset, a broken pipe) is not the point; that the server answers the next request is.
        with socket.create_connection((host, int(port)), timeout=10) as s, contextlib.suppress(OSError):
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    assert _get(rig.metrics_url)[0] == 200
    with socket.create_connection((host, int(port)), timeout=10) as s:  # a page's name rebound to loopback
        s.sendall(
            f"GET /metrics HTTP/1.1\r\nHost: rebound.example:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        assert s.recv(65536).startswith(b"HTTP/1.1 403 ")


BAD = ["9464", "127.0.0.1", ":9464", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x", "a b:1", "x\ny:1"]


def test_a_bad_metrics_address_is_refused_in_one_line(suanli_home: Path):
    proc = cli("agent", "start", "--metrics-address", "127.0.0.1")  # as a user sees it
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: --metrics-address=127.0.0.1: must be HOST:PORT")
    assert proc.stderr.count("\n") == 1
    for value in BAD:  # the same path in this process (a CLI process per value would cost a second each)
        result = invoke("agent", "start", "--metrics-address", value)
        assert result.exit_code == 2, (value, result)
        assert result.stderr.startswith("error: --metrics-address=") and result.stderr.count("\n") <= 1, value
    assert not (suanli_home / "agent.json").exists()


def test_a_metrics_address_in_use_is_refused_in_one_line(suanli_home: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = cli("agent", "start", "--metrics-address", address)
    assert proc.returncode == 2 and "cannot listen there" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (suanli_home / "agent.json").exists()


def test_render_sums_nodes_and_shows_a_project_only_its_jobs(tmp_path: Path):
    """In-process, over a store with two running jobs (one on two nodes, GPUs read) and an alert: what a
    scrape says, what a project-scoped one hides, and that promtool accepts both."""
    from suanli.jobs.spec import parse_spec
    from suanli.monitor.prometheus import render
    from suanli.store.monitoring import AlertUpdate, MonitorStore
    from suanli.store.records import NodeSlice
    from suanli.store.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    for name in ("n1", "n2"):
        store.register_node(name, 8, 2**34, "H100", 4)
    resources = {"cpus": 2, "accelerators": "H100:1"}
    a = store.submit(
        parse_spec({"name": "a", "run": "true", "user": "ann", "project": "vision", "resources": resources,
                    "num_nodes": 2})
    )  # fmt: skip
    b = store.submit(parse_spec({"name": 'b "q" \\ ü', "run": "true", "user": "bo", "project": "nlp"}))
    two = [NodeSlice("n1", 1, 2, 2**30), NodeSlice("n2", 1, 2, 2**30)]
    store.start_attempt(a, "n1", [0], lambda j, n: tmp_path / f"{j}-{n}", placement=two)
    store.start_attempt(b, "n1", [], lambda j, n: tmp_path / f"{j}-{n}")
    row = {"attempt": 1, "at": 1e9, "span_s": 1.0, "level": 0, "cpu_cores": 1.5, "rss_bytes": 100,
           "rss_peak_bytes": 100, "read_bytes": 5, "write_bytes": 7, "net_bytes": None, "log_bytes": 3,
           "metric_points": 2, "gpu_energy_j": None, "gpu_util": None, "gpu_memory_bytes": None}  # fmt: skip
    MonitorStore(store).record(
        [{**row, "job_id": a, "node": "n1", "cpu_seconds": 10.0, "gpu_util": 0.5, "gpu_memory_bytes": 2**30},
         {**row, "job_id": a, "node": "n2", "cpu_seconds": 20.0, "gpu_util": 1.0, "gpu_memory_bytes": 2**30},
         {**row, "job_id": b, "node": "n1", "cpu_seconds": 1.0}], [])  # fmt: skip
    idle = AlertUpdate(rule="idle", kind="idle", subject=f"job {b}", holds=True, job_id=b, attempt=1,
                       user="bo", project="nlp")  # fmt: skip
    MonitorStore(store).apply_alerts([idle], 0)

    text = render(store).decode()
    assert f'suanli_job_cpu_seconds_total{{job_id="{a}",user="ann"}} 30.0' in text
    assert f'suanli_job_cpu_cores{{job_id="{a}",user="ann"}} 3.0' in text
    assert f'suanli_job_gpu_utilization_ratio{{job_id="{a}",user="ann"}} 0.75' in text
    assert f'suanli_job_gpus_requested{{job_id="{a}",user="ann"}} 2.0' in text
    assert f'suanli_job_disk_written_bytes_total{{job_id="{a}",user="ann"}} 14.0' in text
    assert f'suanli_job_info{{job_id="{b}",name="b \\"q\\" \\\\ ü",project="nlp",user="bo"}} 1.0' in text
    assert 'suanli_jobs{state="RUNNING"} 2.0' in text and 'suanli_alerts_open{rule="idle"} 1.0' in text
    assert 'suanli_node_gpus_allocated{node="n2"} 1.0' in text and 'suanli_node_up{node="n1"} 1.0' in text
    assert f'suanli_job_cost_usd_total{{job_id="{a}"' in text

    vision = render(store, projects=["vision"]).decode()
    assert f'job_id="{a}"' in vision and f'job_id="{b}"' not in vision and "bo" not in vision
    assert 'suanli_jobs{state="RUNNING"} 1.0' in vision and "suanli_alerts_open{" not in vision
    (n1,) = [
        line for line in text.splitlines() if line.startswith('suanli_node_cpu_allocated_cores{node="n1"}')
    ]
    assert float(n1.split()[1]) > 2 and n1 in vision  # the whole pool, as /api/nodes shows it

    if os.path.exists(PROMTOOL):
        for body in (text, vision):
            proc = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True)
            assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), body
