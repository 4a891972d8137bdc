"""An attempt's processes never outlive it: background jobs, `setsid` and daemonised children are
stopped when it ends, is cancelled or loses its supervisor, before any retry starts."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from jobhelpers import alive, cli, cli_json, wait_for, write_job


def submit(tmp_path: Path, text: str, name: str = "job.yaml") -> int:
    return cli_json("submit", str(write_job(tmp_path, text, name)))["id"]


def done(job_id: int) -> dict:
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=300)
    return cli_json("status", str(job_id))


def pids_in(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


DAEMON_PY = """\
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()} ")
for fd in (0, 1, 2):
    os.close(fd)
time.sleep(600)
"""


def daemon(tmp_path: Path, out: Path) -> str:
    """A shell command starting a daemon in the classic sense (double fork, new session, stdio closed)
    that appends its pid to `out`."""
    (tmp_path / "daemon.py").write_text(DAEMON_PY)
    return f"python {tmp_path / 'daemon.py'} {out}"


# True in a job's shell when process $p is alive (a zombie, which no reaper collected yet, is not).
LIVE = 'grep -qv "^[0-9]* ([^)]*) [ZX]" /proc/$p/stat 2>/dev/null'


def job(run: str, head: str = "") -> str:
    return head + "run: |\n" + "".join(f"  {line}\n" for line in run.splitlines())


def test_background_setsid_and_daemon_children_end_with_a_successful_attempt(tmp_path):
    pids = tmp_path / "pids"
    run = f"""(sleep 600 & echo $! >> {pids})
setsid sleep 600 & echo $! >> {pids}
{daemon(tmp_path, pids)}
until [ $(wc -w < {pids}) -ge 3 ]; do sleep 0.05; done"""
    job_id = submit(tmp_path, job(run))
    doc = done(job_id)
    assert doc["status"] == "SUCCEEDED", doc
    left = [p for p in pids_in(pids) if alive(p)]
    assert len(pids_in(pids)) == 3 and left == []


def test_cancel_stops_setsid_and_daemon_children(tmp_path):
    pids = tmp_path / "pids"
    run = f"setsid sleep 600 & echo $! >> {pids}\n{daemon(tmp_path, pids)}\nsleep 600"
    job_id = submit(tmp_path, job(run))
    wait_for(lambda: pids.exists() and len(pids_in(pids)) == 2)
    assert cli_json("cancel", str(job_id))["jobs"][0]["status"] == "CANCELLED"
    assert [p for p in pids_in(pids) if alive(p)] == []


def test_supervisor_killed_attempt_is_cleaned_before_the_retry_starts(tmp_path, suanli_home):
    """Attempt 1 leaves a daemon; its supervisor is SIGKILLed. Attempt 2 must find the daemon gone when
    it starts (no overlap), and nothing is left at the end."""
    pids = tmp_path / "pids"
    run = f"""if [ $SUANLI_ATTEMPT = 1 ]; then {daemon(tmp_path, pids)}; sleep 600; fi
for p in $(cat {pids}); do {LIVE} && echo overlap $p >> {tmp_path / "overlap"}; done
exit 0"""
    job_id = submit(tmp_path, job(run, "retries: 1\n"))
    wait_for(lambda: pids.exists() and len(pids_in(pids)) == 1)
    shim = int((suanli_home / f"logs/job-{job_id}/attempt-1/shim.pid").read_text())
    os.kill(shim, signal.SIGKILL)
    doc = done(job_id)
    assert doc["status"] == "SUCCEEDED" and len(doc["attempts"]) == 2, doc
    assert "supervisor was killed by SIGKILL" in doc["attempts"][0]["reason"]
    assert not (tmp_path / "overlap").exists()
    assert not alive(pids_in(pids)[0])


def test_supervisor_and_agent_both_killed_leftovers_are_stopped_by_the_next_agent(tmp_path, suanli_home):
    pids = tmp_path / "pids"
    job_id = submit(tmp_path, job(f"{daemon(tmp_path, pids)}\nsleep 600"))
    wait_for(lambda: pids.exists() and len(pids_in(pids)) == 1)
    agent = json.loads((suanli_home / "agent.json").read_text())["pid"]
    os.kill(agent, signal.SIGKILL)
    shim = int((suanli_home / f"logs/job-{job_id}/attempt-1/shim.pid").read_text())
    os.killpg(shim, signal.SIGKILL)
    wait_for(lambda: not alive(shim))
    assert alive(pids_in(pids)[0])  # the daemon outlived its supervisor ...
    cli("agent", "start", check=True)
    doc = done(job_id)
    assert doc["status"] == "FAILED"
    assert not alive(pids_in(pids)[0])  # ... until the next agent closed the attempt


def test_a_job_whose_workdir_vanished_fails_with_the_reason(tmp_path):
    """A worker that cannot start is recorded as such, not as processes that vanished."""
    workdir = tmp_path / "wd"
    workdir.mkdir()
    blocker = submit(tmp_path, "resources:\n  cpus: 2\nrun: sleep 600\n", "a.yaml")
    job_id = submit(tmp_path, f"workdir: {workdir}\nrun: 'true'\n", "b.yaml")
    workdir.rmdir()
    cli("cancel", str(blocker), check=True)
    doc = done(job_id)
    assert doc["status"] == "FAILED"
    assert doc["reason"].startswith("worker 0 could not start: [Errno 2] No such file or directory")
