"""A full disk: a job that exited 0 is recorded as succeeded, with words that say the disk was full,
even though its supervisor could not write its result file and the database could not take the end at
first. Needs a small tmpfs (root, as on CI); skipped where one cannot be mounted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess

import pytest

from jobhelpers import alive, cli_json, wait_for, write_job


@pytest.fixture
def small_home(tmp_path, monkeypatch):
    home = tmp_path / "small"
    home.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(home)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    monkeypatch.setenv("SUANLI_HOME", str(home))
    yield home
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(json.loads((home / "agent.json").read_text())["pid"], signal.SIGKILL)
    for pid_file in home.glob("logs/job-*/attempt-*/shim.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    subprocess.run(["umount", "-l", str(home)], check=False)


def test_a_job_that_exits_0_on_a_full_disk_is_recorded_as_succeeded(small_home, tmp_path):
    fill = small_home / "fill"
    job = write_job(tmp_path, f"run: cat /dev/zero > {fill} 2>/dev/null; exit 0\n")
    job_id = cli_json("submit", str(job))["id"]
    run_dir = small_home / f"logs/job-{job_id}/attempt-1"
    wait_for(lambda: (run_dir / "shim.pid").exists() and fill.exists())
    shim = int((run_dir / "shim.pid").read_text())
    wait_for(lambda: not alive(shim))  # the supervisor has ended
    assert not (run_dir / "result.json").exists()  # it could not write its result
    fill.unlink()  # space again: the agent can now store the end
    from suanli import Client

    record = Client(start_agent=False).wait(job_id, timeout_s=300)
    assert record.state == "SUCCEEDED", (record.reason, (small_home / "agent.log").read_text()[-2000:])
    assert record.attempts[0].exit_code == 0
    assert (
        record.attempts[0].reason == "exited with code 0 (its result file could not be written: disk full?)"
    )
