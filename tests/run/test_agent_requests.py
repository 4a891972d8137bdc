"""The agent survives every request and every client: malformed, oversized, deeply nested or slow
requests each get a one-line error (or are cut off), and the agent keeps scheduling meanwhile."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest

from jobhelpers import alive, cli, cli_json, wait_for, write_job


def agent_info(home: Path) -> dict:
    return json.loads((home / "agent.json").read_text())


def raw(home: Path, payload: bytes) -> dict | None:
    """Send bytes to the agent's socket as a hostile client would; its answer, if one came."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(120)
        sock.connect(agent_info(home)["socket"])
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent cut an oversized request off; it still answers
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data) if data else None


@pytest.fixture
def agent(tmp_path, suanli_home) -> int:
    cli("agent", "start", check=True)
    return agent_info(suanli_home)["pid"]


def submit(tmp_path: Path, text: str, name: str = "job.yaml") -> int:
    return cli_json("submit", str(write_job(tmp_path, text, name)))["id"]


def done(job_id: int) -> dict:
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=300)
    return cli_json("status", str(job_id))


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"[]\n", "request=list: must be a JSON object"),
        (b"{}\n", "op=None: must be submit, sync or ping"),
        (b"not json\n", "request=(not JSON): must be one JSON line"),
        (b"\xff\xfe\n", "request=(not JSON)"),
        (b'{"op": "submit", "path": 5}\n', "path=5: must be the path of a job file"),
        (b'{"op": "submit", "path": "/x", "env": {"A": 1}}\n', "env="),
        (b'{"op": "submit", "path": "/x", "overrides": {"run": "rm -rf ~"}}\n', "overrides="),
        (b'{"op": "submit", "path": "/x", "key": "a b"}\n', "key=a b: must be"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "request="),
        (b'{"op": "submit", "path": "' + b"x" * (2 << 20) + b'"}\n', "must be at most 1 MiB"),
    ],
)
def test_bad_requests_get_one_line_and_the_agent_lives(agent, suanli_home, tmp_path, payload, words):
    answer = raw(suanli_home, payload)
    assert answer is not None and answer["exit_code"] == 2
    assert words in answer["error"] and "\n" not in answer["error"]
    assert agent_info(suanli_home)["pid"] == agent
    assert done(submit(tmp_path, "run: 'true'\n"))["status"] == "SUCCEEDED"
    assert agent_info(suanli_home)["pid"] == agent


def test_a_failure_inside_a_request_is_an_error_to_that_client_only(agent, suanli_home, tmp_path):
    """A job file the agent cannot read (here: a directory's worth of nesting in YAML) fails that
    request; the next one is served by the same agent."""
    nested = write_job(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\nrun: 'true'\n", "deep.yaml")
    answer = raw(suanli_home, json.dumps({"op": "submit", "path": str(nested)}).encode() + b"\n")
    assert answer is not None and "error" in answer and "\n" not in answer["error"]
    assert agent_info(suanli_home)["pid"] == agent
    assert done(submit(tmp_path, "run: 'true'\n"))["status"] == "SUCCEEDED"


def test_a_slow_client_cannot_stall_scheduling(agent, suanli_home, tmp_path):
    """A client that sends one byte and then nothing holds only its own connection: a job submitted
    meanwhile is started and finishes while that connection is still open."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(agent_info(suanli_home)["socket"])
        slow.sendall(b"{")
        job_id = submit(tmp_path, "run: echo served\n")
        assert done(job_id)["status"] == "SUCCEEDED"
        slow.sendall(b'"op"')  # still connected: the job did not wait for this client
    assert agent_info(suanli_home)["pid"] == agent


def test_many_connections_at_once_are_all_answered(agent, suanli_home):
    socks = []
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(agent_info(suanli_home)["socket"])
        socks.append(s)
    answers = []
    for s in socks:
        with s:
            s.settimeout(120)
            s.sendall(b'{"op": "ping"}\n')
            answers.append(json.loads(s.makefile().readline()))
    assert all(a.get("pid") == agent or "busy" in a.get("error", "") for a in answers)
    assert any(a.get("pid") == agent for a in answers)


def test_a_metric_line_that_cannot_be_stored_loses_nothing_else(agent, tmp_path):
    lines = [
        '{"metric": "loss", "value": 1.0, "step": 1}',
        '{"metric": "loss", "value": 2.0, "step": Infinity}',
        '{"metric": "loss", "value": NaN, "step": 3}',
        '{"metric": "loss", "value": 3.0, "step": 1e23}',
        '{"metric": "big", "value": ' + "9" * 400 + "}",
        '{"metric": "' + "n" * 300 + '", "value": 1}',
        '{"metric": "loss", "value": 4.0, "step": 5}',
    ]
    (tmp_path / "m.txt").write_text("\n".join(lines) + "\n")
    job_id = submit(tmp_path, "run: cat m.txt\n")
    assert done(job_id)["status"] == "SUCCEEDED"
    from suanli import Client

    points = [(p["name"], p["value"], p["step"]) for p in Client(start_agent=False).metric_history(job_id)]
    assert points == [("loss", 1.0, 1), ("loss", 2.0, None), ("loss", 3.0, None), ("loss", 4.0, 5)]


def test_a_deleted_socket_is_recreated_by_the_same_agent(agent, suanli_home, tmp_path):
    sock = Path(agent_info(suanli_home)["socket"])
    sock.unlink()
    os.kill(agent, signal.SIGUSR1)  # the agent looks at its socket on every pass
    wait_for(sock.exists)
    assert done(submit(tmp_path, "run: 'true'\n"))["status"] == "SUCCEEDED"
    assert agent_info(suanli_home)["pid"] == agent


def test_a_second_agent_never_runs_beside_the_first(agent, suanli_home):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "suanli.run.agent"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "another agent holds the lock" in proc.stderr
    assert agent_info(suanli_home)["pid"] == agent


def test_a_removed_database_stops_the_agent_with_one_line(agent, suanli_home, tmp_path):
    first = submit(tmp_path, "run: 'true'\n")
    assert done(first)["status"] == "SUCCEEDED"
    for name in ("suanli.db", "suanli.db-wal", "suanli.db-shm"):
        (suanli_home / name).unlink(missing_ok=True)
    os.kill(agent, signal.SIGUSR1)
    wait_for(lambda: not alive(agent))
    log = (suanli_home / "agent.log").read_text()
    assert f"the database file {suanli_home / 'suanli.db'} was removed; the agent stops" in log
    # the next command starts a new agent on the new database, and nothing is acknowledged into the old
    job_id = submit(tmp_path, "run: 'true'\n")
    assert done(job_id)["status"] == "SUCCEEDED"
    assert agent_info(suanli_home)["pid"] != agent


def test_a_corrupt_database_is_one_line_naming_it(suanli_home):
    (suanli_home / "suanli.db").write_bytes(b"this is not a database" * 100)
    proc = cli("status")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: database {suanli_home / 'suanli.db'}: file is not a database"
