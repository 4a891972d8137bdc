"""Jobs run through the agent and the local executor, as a user sees them through the CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from jobhelpers import alive, cli, cli_json, wait_for, write_job


def submit(tmp_path: Path, text: str, name: str = "job.yaml") -> int:
    return cli_json("submit", str(write_job(tmp_path, text, name)))["id"]


def status(job_id: int) -> dict:
    return cli_json("status", str(job_id))


def wait_done(job_id: int, timeout: float = 300) -> dict:
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=timeout)
    return status(job_id)


def gate(tmp_path: Path) -> str:
    """A shell loop that holds a job until the test creates tmp_path/go: tests wait on events."""
    return f"while [ ! -e {tmp_path / 'go'} ]; do sleep 0.05; done"


def test_submit_returns_at_once_and_job_outlives_the_cli(tmp_path):
    job_id = submit(tmp_path, f"name: sleeper\nrun: {gate(tmp_path)}; echo done $SUANLI_JOB_ID\n")
    assert status(job_id)["status"] in ("PENDING", "RUNNING")  # the CLI returned; the job waits for us
    (tmp_path / "go").touch()
    doc = wait_done(job_id)
    assert doc["status"] == "SUCCEEDED"
    assert doc["attempts"][0]["exit_code"] == 0
    assert cli("logs", str(job_id), check=True).stdout.strip() == f"done {job_id}"


def test_agent_is_started_once_and_reused(tmp_path, suanli_home):
    a = submit(tmp_path, "run: 'true'\n")
    pid = json.loads((suanli_home / "agent.json").read_text())["pid"]
    b = submit(tmp_path, "run: 'true'\n")
    assert json.loads((suanli_home / "agent.json").read_text())["pid"] == pid
    assert wait_done(a)["status"] == wait_done(b)["status"] == "SUCCEEDED"
    assert cli_json("agent", "status") == {
        "running": True,
        "pid": pid,
        "db_url": cli_json("agent", "status")["db_url"],
        "node": cli_json("nodes")["nodes"][0]["name"],
        "pool": "local",
    }
    assert cli_json("agent", "stop")["stopped"] is True
    assert cli_json("agent", "status")["running"] is False


def test_metrics_env_and_status_json(tmp_path):
    script = tmp_path / "m.py"
    script.write_text(
        "import json, os\n"
        "print('hello')\n"
        "for step in range(3):\n"
        "    print(json.dumps({'metric': 'loss', 'value': 1.0 / (step + 1), 'step': step}))\n"
        "print(json.dumps({'metrics': {'accuracy': 0.9, 'f1': 0.8}}))\n"
        "print('JOB', os.environ['SUANLI_JOB_ID'], 'CUDA', repr(os.environ['CUDA_VISIBLE_DEVICES']),"
        " 'OMP', os.environ['OMP_NUM_THREADS'], 'X', os.environ['X'])\n"
    )
    job_id = submit(tmp_path, "name: m\nresources:\n  cpus: 2\nenvs:\n  X: 7\nrun: python m.py\n")
    doc = wait_done(job_id)
    assert doc["id"] == job_id and doc["status"] == "SUCCEEDED"
    assert doc["metrics"] == {"accuracy": 0.9, "f1": 0.8, "loss": 1.0 / 3}
    attempt = doc["attempts"][0]
    assert set(attempt) >= {"start", "end", "exit_code", "reason"}
    log = cli("logs", str(job_id), check=True).stdout
    assert f"JOB {job_id} CUDA '' OMP 2 X 7" in log


def test_multi_worker_job_gets_rank_variables(tmp_path):
    job_id = submit(
        tmp_path,
        "num_workers: 2\nresources:\n  cpus: 1\nrun: echo rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK "
        "addr=$MASTER_ADDR port_set=${MASTER_PORT:+yes}\n",
    )
    assert wait_done(job_id)["status"] == "SUCCEEDED"
    lines = sorted(cli("logs", str(job_id), check=True).stdout.split("\n"))
    assert [line for line in lines if line] == [
        f"rank={r} world=2 local={r} addr=127.0.0.1 port_set=yes" for r in range(2)
    ]


def test_crash_is_failed_with_exit_code_and_log_tail(tmp_path):
    job_id = submit(tmp_path, "run: python -c \"import sys; print('about to fail'); sys.exit(3)\"\n")
    doc = wait_done(job_id)
    assert doc["status"] == "FAILED"
    assert doc["attempts"][0]["exit_code"] == 3
    assert "exited with code 3" in doc["reason"]
    assert "about to fail" in doc["attempts"][0]["log_tail"]
    shown = cli("status", str(job_id), check=True).stdout
    assert "about to fail" in shown  # the tail of the log is shown for a failed job


def test_killed_by_signal_is_failed_with_the_signal(tmp_path):
    job_id = submit(tmp_path, 'run: python -c "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"\n')
    doc = wait_done(job_id)
    assert doc["status"] == "FAILED"
    assert doc["attempts"][0]["signal"] == "SIGKILL"
    assert "killed by SIGKILL" in doc["reason"]


def test_out_of_memory_is_failed_with_reason(tmp_path):
    job_id = submit(
        tmp_path,
        "resources:\n  memory: 200MiB\n"
        'run: python -c "import time; x = bytearray(600 * 2**20); time.sleep(30)"\n',
    )
    doc = wait_done(job_id)
    assert doc["status"] == "FAILED"
    assert doc["attempts"][0]["signal"] == "SIGKILL"
    assert doc["reason"].startswith("out of memory: used")


def test_retry_until_success(tmp_path):
    job_id = submit(tmp_path, "retries: 2\nrun: test $SUANLI_ATTEMPT -ge 2\n")
    doc = wait_done(job_id)
    assert doc["status"] == "SUCCEEDED"
    assert [a["exit_code"] for a in doc["attempts"]] == [1, 0]
    assert len(doc["attempts"]) == 2


def test_cancel_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    job_id = submit(tmp_path, f"run: (sleep 300 & echo $! > {marker}; wait)\n")
    wait_for(marker.exists)
    child = int(wait_for(lambda: marker.read_text().strip()))
    doc = cli_json("cancel", str(job_id))
    assert doc["jobs"] == [{"id": job_id, "status": "CANCELLED"}]
    wait_for(lambda: not alive(child))
    assert status(job_id)["status"] == "CANCELLED"


def test_cancel_pending_job(tmp_path):
    blocker = submit(tmp_path, "resources:\n  cpus: 2\nrun: sleep 300\n", "a.yaml")
    waiting = submit(tmp_path, "resources:\n  cpus: 2\nrun: sleep 300\n", "b.yaml")
    assert status(waiting)["status"] == "PENDING"
    assert cli_json("cancel", str(waiting))["jobs"][0]["status"] == "CANCELLED"
    assert status(waiting)["attempts"] == []
    cli("cancel", str(blocker), check=True)


def test_logs_follow_streams_until_the_end(tmp_path):
    job_id = submit(tmp_path, "run: for i in 1 2 3; do echo line $i; sleep 0.3; done\n")
    out = cli("logs", str(job_id), "--follow", check=True).stdout
    assert out.split() == ["line", "1", "line", "2", "line", "3"]
    assert status(job_id)["status"] == "SUCCEEDED"


def test_agent_sigkilled_job_finishes_meanwhile_is_recorded(tmp_path, suanli_home):
    job_id = submit(tmp_path, f"run: {gate(tmp_path)}; exit 4\n")
    wait_for(lambda: status(job_id)["status"] == "RUNNING")
    agent = json.loads((suanli_home / "agent.json").read_text())["pid"]
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(agent))
    (tmp_path / "go").touch()  # the job ends while no agent watches
    result = suanli_home / f"logs/job-{job_id}/attempt-1/result.json"
    wait_for(result.exists)
    doc = status(job_id)  # `status` starts an agent, which records the end before status reads it
    assert doc["status"] == "FAILED"
    assert doc["attempts"][0]["exit_code"] == 4


def test_agent_sigkilled_and_job_gone_is_failed_or_retried(tmp_path, suanli_home):
    lost = submit(tmp_path, "run: sleep 300\n", "a.yaml")
    retried = submit(tmp_path, "retries: 1\nrun: test $SUANLI_ATTEMPT -ge 2 || sleep 300\n", "b.yaml")
    wait_for(lambda: status(lost)["status"] == status(retried)["status"] == "RUNNING")
    agent = json.loads((suanli_home / "agent.json").read_text())["pid"]
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(agent))
    for job_id in (lost, retried):  # the machine loses the jobs' processes too
        shim = int(wait_for(lambda j=job_id: status(j)["attempts"][0]["pid"]))
        os.killpg(shim, signal.SIGKILL)
        wait_for(lambda s=shim: not alive(s))
    cli("agent", "start", check=True)
    doc = wait_done(lost)
    assert doc["status"] == "FAILED"
    assert "without a result while no agent watched it" in doc["reason"]
    doc = wait_done(retried)
    assert doc["status"] == "SUCCEEDED"
    assert "without a result" in doc["attempts"][0]["reason"]
    assert len(doc["attempts"]) == 2


def test_agent_sigkilled_running_job_is_adopted(tmp_path, suanli_home):
    (tmp_path / "tick.py").write_text(
        "import json, time\n"
        "for i in range(1, 5):\n"
        "    print(json.dumps({'metric': 'tick', 'value': i}), flush=True)\n"
        "    time.sleep(0.5)\n"
    )
    job_id = submit(tmp_path, "run: python tick.py\n")
    wait_for(lambda: status(job_id)["metrics"].get("tick"))
    agent = json.loads((suanli_home / "agent.json").read_text())["pid"]
    os.kill(agent, signal.SIGKILL)
    cli("agent", "start", check=True)
    doc = wait_done(job_id)
    assert doc["status"] == "SUCCEEDED"
    assert doc["metrics"] == {"tick": 4.0}
    from suanli import Client

    ticks = [p["value"] for p in Client(start_agent=False).metric_history(job_id)]
    assert ticks == [1.0, 2.0, 3.0, 4.0]  # adopted without losing or repeating metric points


def test_jobs_run_with_the_state_in_postgresql(tmp_path, pg_url):
    env = {"SUANLI_DB_URL": pg_url}
    job = write_job(tmp_path, 'name: pg\nrun: |\n  echo \'{"metric": "x", "value": 1}\'\n')
    doc = json.loads(cli("run", str(job), "--json", env=env, check=True).stdout)
    assert doc["status"] == "SUCCEEDED" and doc["metrics"] == {"x": 1.0}
    assert cli_json("agent", "status", env=env)["db_url"].startswith("postgresql+psycopg://")
    assert cli_json("status", str(doc["id"]), env=env)["status"] == "SUCCEEDED"
    # The agent serves one database: another one is refused with a clear message.
    other = cli("submit", str(job))
    assert other.returncode == 1 and "an agent for another database is running" in other.stderr


def test_queue_shows_position_and_why_each_job_waits(tmp_path):
    blocker = submit(tmp_path, "name: blocker\nresources:\n  cpus: 2\nrun: sleep 300\n", "a.yaml")
    wait_for(lambda: status(blocker)["status"] == "RUNNING")
    first = submit(tmp_path, "name: first\nresources:\n  cpus: 2\nrun: 'true'\n", "b.yaml")
    urgent = submit(tmp_path, "name: urgent\npriority: 9\nresources:\n  cpus: 1\nrun: 'true'\n", "c.yaml")
    rows = cli_json("queue")["jobs"]
    assert [(r["position"], r["id"]) for r in rows] == [(1, urgent), (2, first)]
    assert rows[0]["reason"].startswith("needs 1 CPUs on one node; largest free block is 0 GPUs, 0 CPUs")
    assert rows[1]["reason"] == f"behind job {urgent} (FIFO order)"
    assert rows[0]["policy"] == "fifo"
    cli("cancel", str(blocker), str(first), str(urgent), check=True)


def test_default_policy_queues_jobs_with_less_expected_time_first(tmp_path, monkeypatch):
    monkeypatch.setenv("SUANLI_POLICY", "suanli")
    blocker = submit(tmp_path, "name: blocker\nresources:\n  cpus: 2\nrun: sleep 300\n", "a.yaml")
    wait_for(lambda: status(blocker)["status"] == "RUNNING")
    unknown = submit(tmp_path, "name: unknown\nresources:\n  cpus: 2\nrun: 'true'\n", "b.yaml")
    long = submit(
        tmp_path, "name: long\nexpected_duration: 2h\nresources:\n  cpus: 2\nrun: 'true'\n", "c.yaml"
    )
    short = submit(
        tmp_path, "name: short\nexpected_duration: 5m\nresources:\n  cpus: 2\nrun: 'true'\n", "d.yaml"
    )
    rows = cli_json("queue")["jobs"]
    assert [r["id"] for r in rows] == [short, long, unknown]
    assert [(r["estimated_duration_s"], r["estimate_stated"]) for r in rows] == [
        (300.0, True),
        (7200.0, True),
        (None, False),
    ]
    assert rows[0]["policy"] == "suanli"
    assert "expected" in cli("queue", check=True).stdout
    bad = write_job(tmp_path, "expected_duration: -1\nrun: 'true'\n", "e.yaml")
    proc = cli("submit", str(bad))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "expected_duration=-1: must be a positive duration" in proc.stderr
    # The scheduler times a `workload:` block with the estimator, so a typo there is refused at submit.
    bad = write_job(tmp_path, "workload: {params: 7e9, tokns: 1e12}\nrun: 'true'\n", "f.yaml")
    proc = cli("submit", str(bad))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "workload.tokns=1e12: is not a train workload field (did you mean: tokens?)" in proc.stderr
    cli("cancel", str(blocker), str(unknown), str(long), str(short), check=True)


def test_scheduler_config_chooses_the_policy_and_bad_config_is_one_line(tmp_path, suanli_home, monkeypatch):
    monkeypatch.delenv("SUANLI_POLICY")
    (suanli_home / "scheduler.yaml").write_text("policy: drf\noptions:\n  quotas: {research: 2}\n")
    submit(tmp_path, "resources:\n  cpus: 2\nrun: sleep 300\n", "a.yaml")
    waiting = submit(tmp_path, "labels: {team: research}\nrun: 'true'\n", "b.yaml")
    rows = cli_json("queue")["jobs"]
    assert rows and rows[0]["policy"] == "drf" and rows[0]["id"] == waiting
    (suanli_home / "scheduler.yaml").write_text("policy: drf\npolcy: x\n")
    proc = cli("queue")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "scheduler.yaml:2: polcy=x: is not a known field (did you mean: policy?)"
    )
    (suanli_home / "scheduler.yaml").write_text("policy: fifoo\n")
    proc = cli("queue")
    assert (
        proc.returncode == 2
        and "policy=fifoo: must be one of" in proc.stderr
        and "did you mean: fifo" in proc.stderr
    )
