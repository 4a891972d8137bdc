"""Sampling, alert rules and their actions on real processes run by a real agent."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jobhelpers import alive, cli, wait_for, write_job

INTERVAL = 0.5


def client():
    from suanli import Client

    return Client()


def monitor_db():
    from suanli.store.monitoring import MonitorStore
    from suanli.store.store import Store

    return MonitorStore(Store())


def rules(home: Path, text: str) -> None:
    (home / "alerts.yaml").write_text(f"sample_interval: {INTERVAL}s\n" + text)


def python_job(tmp_path: Path, name: str, body: str, extra: str = "") -> Path:
    script = tmp_path / f"{name}.py"
    script.write_text(body)
    return write_job(tmp_path, f"name: {name}\n{extra}run: {sys.executable} {script}\n", f"{name}.yaml")


HOLD = """
import os, sys, time
go = sys.argv[0] + ".go"
t = time.time()
while time.time() - t < {burn}:
    pass
print("idle from", time.time(), time.process_time(), flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
"""


class Receiver:
    """A webhook on loopback that keeps every body it is sent."""

    def __init__(self) -> None:
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-path"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def agent_pid(home: Path) -> int:
    return json.loads((home / "agent.json").read_text())["pid"]


def test_idle_job_is_flagged_within_window_plus_one_sample_once_across_an_agent_restart(
    tmp_path, suanli_home, receiver
):
    window = 2.0
    rules(
        suanli_home,
        f"rules:\n  - name: idle\n    window: {window}s\nnotifiers:\n  - webhook: {receiver.url}\n",
    )
    c = client()
    job_id = c.submit(python_job(tmp_path, "hold", HOLD.format(burn=1.5)))
    db = monitor_db()
    alert = wait_for(lambda: db.alerts(job_ids=[job_id]), timeout=120)[0]
    idle_from, burned = map(float, Path(c.get(job_id).attempts[0].log_path).read_text().split()[-2:])
    # Flagged once every interval of the last `window` was idle: no earlier than the window allows,
    # no later than the window plus one sample.
    after = [s for s in db.samples(job_id) if idle_from < s["at"] <= alert["opened_at"]]
    assert len(after) <= math.ceil(window / INTERVAL) + 1, (idle_from, alert, after)
    assert alert["opened_at"] - idle_from >= window - INTERVAL
    assert alert["rule"] == "idle" and re.search(r"used [0-4]% of its CPU for [23] s", alert["message"])

    # An agent that dies and comes back goes on sampling the same attempt from its stored samples:
    # the alert stays one alert (it repeats; it does not close and open again).
    first = agent_pid(suanli_home)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first))
    before = db.usage([job_id])[(job_id, 1)]
    c.wake()  # starts a new agent
    wait_for(lambda: db.usage([job_id])[(job_id, 1)]["samples"] >= before["samples"] + 4)
    assert agent_pid(suanli_home) != first
    (after_restart,) = db.alerts(job_ids=[job_id])
    assert after_restart["id"] == alert["id"] and after_restart["closed_at"] is None
    assert after_restart["count"] > alert["count"]
    samples = db.samples(job_id)
    assert [s["cpu_seconds"] for s in samples] == sorted(s["cpu_seconds"] for s in samples)
    assert samples[-1]["cpu_seconds"] >= burned - 0.02  # its own CPU time (the kernel counts in ticks)

    Path(str(tmp_path / "hold.py") + ".go").touch()
    assert c.wait(job_id, timeout_s=120).state == "SUCCEEDED"
    wait_for(lambda: all(d["delivered_at"] for d in db.deliveries()))
    (sent,) = receiver.got  # one notice for the whole alert, however often it repeated
    assert sent["event"] == "opened" and sent["alert"]["job_id"] == job_id and sent["alert"]["rule"] == "idle"
    (closed,) = db.alerts(job_ids=[job_id])
    assert closed["closed_at"] is not None
    usage = db.usage([job_id])[(job_id, 1)]
    assert usage["cpu_source"] == "rusage" and usage["cpu_seconds"] >= samples[-1]["cpu_seconds"]
    assert "secret-path" not in (suanli_home / "agent.log").read_text()


BURSTY = """
import time
for _ in range(4):
    t = time.time()
    while time.time() - t < 0.25:
        pass
    time.sleep(0.35)
"""


@pytest.mark.slow  # 100 runs, about 25 s: the CI suite keeps the idle rule's other tests
def test_bursty_jobs_are_never_flagged_idle_over_100_runs(tmp_path, suanli_home):
    # Pauses of 0.35 s, a window of 1.5 s: every window holds work. 20 jobs share the 2 cores at a time
    # (0.1 CPU each), so the work is also slowed by contention, as on a busy node.
    rules(suanli_home, "rules:\n  - name: idle\n    window: 1.5s\n")
    c = client()
    spec = c.load(python_job(tmp_path, "bursty", BURSTY, "resources: {cpus: 0.1}\n"))
    ids = c.submit_many([spec] * 100)
    for job_id in ids:
        assert c.wait(job_id, timeout_s=600).state == "SUCCEEDED"
    db = monitor_db()
    usage = db.usage(ids)
    assert sum(u["samples"] for u in usage.values()) >= 200  # the rule was looked at, many times
    assert db.alerts(job_ids=ids) == []


GROW = """
import time
held = []
while True:
    block = bytearray(10 * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    held.append(block)
    time.sleep(0.1)
"""


def test_memory_alert_comes_before_the_out_of_memory_stop(tmp_path, suanli_home, receiver):
    rules(suanli_home, f"notifiers:\n  - webhook: {receiver.url}\n")
    c = client()
    job_id = c.submit(python_job(tmp_path, "grow", GROW, "resources: {memory: 200MB}\n"))
    job = c.wait(job_id, timeout_s=120)
    assert job.state == "FAILED" and "out of memory" in job.reason
    (alert,) = monitor_db().alerts(job_ids=[job_id])
    assert alert["rule"] == "memory" and alert["opened_at"] <= job.attempts[0].ended_at
    assert "of the 0.19 GiB it requested" in alert["message"]
    wait_for(lambda: receiver.got)
    assert receiver.got[0]["alert"]["rule"] == "memory"


def test_cancel_action_after_its_grace_and_an_unreachable_webhook_keeps_the_alert(tmp_path, suanli_home):
    rules(
        suanli_home,
        "rules:\n  - name: idle\n    window: 1s\n    action: cancel\n    grace: 1s\n"
        "notifiers:\n  - webhook: http://127.0.0.1:9/nobody-listens\n",
    )
    c = client()
    job_id = c.submit(python_job(tmp_path, "hold", HOLD.format(burn=0)))
    job = c.wait(job_id, timeout_s=120)
    assert job.state == "CANCELLED"
    assert job.reason.startswith("cancel by alert rule idle: job")
    db = monitor_db()
    (alert,) = db.alerts(job_ids=[job_id])
    assert alert["acted"] == "cancel" and alert["acted_at"] - alert["opened_at"] >= 1.0
    (delivery,) = wait_for(lambda: [d for d in db.deliveries() if d["tries"]])
    assert delivery["delivered_at"] is None and "refused" in delivery["error"].lower()
    # The agent goes on: the next job runs.
    assert c.wait(c.submit(write_job(tmp_path, "run: 'true'\n")), timeout_s=120).state == "SUCCEEDED"


def test_requeue_action_puts_the_job_back_in_the_queue(tmp_path, suanli_home):
    rules(suanli_home, "rules:\n  - name: idle\n    window: 1s\n    action: requeue\n")
    c = client()
    job_id = c.submit(python_job(tmp_path, "hold", HOLD.format(burn=0)))
    wait_for(lambda: len(c.get(job_id).attempts) >= 2, timeout=120)
    first = c.get(job_id).attempts[0]
    assert first.reason.startswith("requeue by alert rule idle")
    c.cancel(job_id)


ALLOCATE = """
import resource, time
block = bytearray(300 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(1.5)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_right_sizing_from_a_known_peak(tmp_path, suanli_home):
    from suanli.monitor.advice import MARGIN
    from suanli.run.admission import advise
    from suanli.store.store import Store

    c = client()
    path = python_job(tmp_path, "alloc", ALLOCATE, "resources: {memory: 4GB}\nright_size: true\n")
    first = c.wait(c.submit(path), timeout_s=120)
    peak = int(Path(first.attempts[0].log_path).read_text().split()[-1])  # the job's own ru_maxrss
    _, ((advice,),) = advise(Store(), [c.load(path)])
    assert advice.field == "resources.memory"
    assert advice.recommended == pytest.approx(peak * (1 + MARGIN), rel=0.05)
    # The next submission asks for that (the spec allows it) and says why.
    out = cli("submit", str(path), "--json", check=True)
    doc = json.loads(out.stdout)
    assert doc["advice"][0].startswith("right_size: resources.memory lowered to")
    second = c.get(doc["id"])
    assert second.memory_bytes == advice.recommended
    assert c.wait(second.id, timeout_s=120).state == "SUCCEEDED"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - name: idle\n    windw: 5s\n",
            "alerts.yaml:3: rules.0.windw=5s: is not a known field (did you mean: window?)",
        ),
        (
            "rules:\n  - name: idle\n    window: -5s\n",
            "alerts.yaml:3: rules.0.window=-5s: must be a duration >= 0",
        ),
        (
            "rules:\n  - name: x\n    kind: idle\n    threshold: 1.5\n",
            "rules.0.threshold=1.5: is out of range",
        ),
        ("rules:\n  - name: x\n    kind: cost\n", "a cost rule needs a threshold"),
        (
            "notifiers:\n  - webhook: ftp://x\n",
            "notifiers.0.webhook=ftp://x: must be an http:// or https:// URL",
        ),
        ("sample_interval: 0.01s\n", "sample_interval=0.01s: must be 0 (no sampling) or at least 0.1 s"),
    ],
)
def test_bad_alert_rules_are_one_line_and_start_nothing(tmp_path, suanli_home, text, message):
    (suanli_home / "alerts.yaml").write_text(text)
    proc = cli("submit", str(write_job(tmp_path, "run: 'true'\n")))
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert message in line
    assert not (suanli_home / "agent.json").exists()
