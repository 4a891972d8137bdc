"""State is private to its user, jobs get a clean environment, secrets never appear in clear, and a
submission is stored exactly once however its answer is lost."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from jobhelpers import cli, cli_json, write_job

SECRET = "s3cr3t-value-9f2c"


def done(job_id: int) -> dict:
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=300)
    return cli_json("status", str(job_id))


def test_home_is_0700_and_every_file_suanli_writes_is_0600(tmp_path, suanli_home):
    os.chmod(suanli_home, 0o755)  # an existing, too open SUANLI_HOME is tightened
    job = write_job(tmp_path, "run: echo hi\n")
    job_id = cli_json("submit", str(job))["id"]
    assert done(job_id)["status"] == "SUCCEEDED"
    cli("agent", "stop", check=True)
    assert stat.S_IMODE(suanli_home.stat().st_mode) == 0o700
    seen = set()
    for path in suanli_home.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif not path.is_socket():
            assert mode == 0o600, (path, oct(mode))
            seen.add(path.name)
    assert {"suanli.db", "agent.log", "launch.json", "output.log", "result.json", "shim.pid"} <= seen


def test_a_socket_folder_made_by_someone_else_is_refused(tmp_path, monkeypatch):
    """With a SUANLI_HOME too long for a socket path, the socket goes to a private folder under TMPDIR:
    one made first by another user (or open to others, or a link) is refused, nothing is sent."""
    home = tmp_path / ("h" * 120)
    monkeypatch.setenv("SUANLI_HOME", str(home))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    trap = tmp / f"suanli-{os.getuid()}"
    trap.mkdir(mode=0o777)
    os.chmod(trap, 0o777)
    env = {"TMPDIR": str(tmp), "XDG_RUNTIME_DIR": ""}
    proc = cli("submit", str(write_job(tmp_path, "run: 'true'\n")), env=env)
    assert proc.returncode == 1
    assert f"socket folder {trap} has mode 777; it must be 700: refusing to use it" in proc.stderr
    os.chmod(trap, 0o700)
    os.chown(trap, 65534, 65534)
    proc = cli("submit", str(write_job(tmp_path, "run: 'true'\n")), env=env)
    assert proc.returncode == 1 and "belongs to uid 65534, not to you" in proc.stderr
    os.chown(trap, os.getuid(), os.getgid())
    job_id = cli_json("submit", str(write_job(tmp_path, "run: 'true'\n")), env=env)["id"]
    assert done(job_id)["status"] == "SUCCEEDED"


def test_jobs_get_a_clean_environment_not_the_agents(tmp_path):
    cli("agent", "start", check=True, env={"LEAKY": "alice"})
    job = write_job(tmp_path, f"envs:\n  FROM_SPEC: spec-value\nrun: env > {tmp_path / 'env.txt'}\n")
    job_id = cli_json("submit", str(job), "--env", "PASSED", env={"PASSED": "bob", "NOT_PASSED": "x"})["id"]
    assert done(job_id)["status"] == "SUCCEEDED"
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line)
    assert "LEAKY" not in env and "NOT_PASSED" not in env
    assert env["PASSED"] == "bob" and env["FROM_SPEC"] == "spec-value"
    assert env["HOME"] and env["SUANLI_JOB_ID"] == str(job_id)


def test_secrets_reach_the_job_and_nothing_else(tmp_path, suanli_home):
    digest = hashlib.sha256(SECRET.encode()).hexdigest()  # the job checks it without naming it
    run = f'test "$(printf %s "$API_TOKEN" | sha256sum | cut -d" " -f1)" = {digest} && echo token-ok'
    job = write_job(tmp_path, "secrets:\n  API_TOKEN: null\nrun: |\n  " + run + "\n")
    job_id = cli_json("submit", str(job), "--env", f"API_TOKEN={SECRET}")["id"]
    doc = done(job_id)
    assert doc["status"] == "SUCCEEDED"
    assert cli("logs", str(job_id), check=True).stdout.strip() == "token-ok"
    shown = [
        cli("status", str(job_id), "--json").stdout,
        cli("status").stdout,
        cli("status", str(job_id)).stdout,
    ]
    cli("agent", "stop", check=True)
    assert all(SECRET not in text for text in shown)
    from suanli.store.store import Store

    assert Store().get(job_id).spec.secrets == {"API_TOKEN": "***"}  # named, never valued
    for path in suanli_home.rglob("*"):  # the database, its WAL, launch files, logs: none hold it
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_retried_submission_is_stored_once(tmp_path):
    from suanli import Client

    client = Client(start_agent=False)
    job = write_job(tmp_path, "run: 'true'\n")
    first = client.submit(job, key="retry-1")
    assert client.submit(job, key="retry-1") == first
    assert client.submit(job, key="retry-2") != first
    assert [j.id for j in client.jobs(all=True)] == [first + 1, first]


@pytest.mark.parametrize("stored_before_the_answer_was_lost", [True, False])
def test_a_lost_answer_says_whether_the_job_was_stored(
    tmp_path, monkeypatch, stored_before_the_answer_was_lost
):
    """The agent crashes or the answer times out: the client finds out from the store whether the job
    was stored, sends it once more if it was not, and never stores it twice."""
    from suanli.run import control
    from suanli.store.paths import default_db_url
    from suanli.store.store import Store

    real_call = control.call
    lost = []

    def lossy_call(info, request, timeout_s=60.0):
        if not lost:
            lost.append(request["key"])
            if stored_before_the_answer_was_lost:
                real_call(info, request, timeout_s)  # stored; the answer never arrives
            raise control.NoAnswer("no answer from the agent: timed out")
        return real_call(info, request, timeout_s)

    monkeypatch.setattr(control, "call", lossy_call)
    job_id = control.submit(write_job(tmp_path, "run: 'true'\n"), {}, default_db_url())
    assert Store().find_submission(lost[0]) == [job_id]
    assert [j.id for j in Store().list_jobs()] == [job_id]
    assert done(job_id)["status"] == "SUCCEEDED"


def test_an_unanswered_submission_that_was_not_stored_says_so(tmp_path, monkeypatch):
    from suanli.core.errors import SuanliError
    from suanli.run import control
    from suanli.store.paths import default_db_url

    def never(info, request, timeout_s=60.0):
        raise control.NoAnswer("no answer from the agent: timed out")

    monkeypatch.setattr(control, "call", never)
    with pytest.raises(SuanliError, match="the job was NOT stored, so submitting again is safe"):
        control.submit(write_job(tmp_path, "run: 'true'\n"), {}, default_db_url())


def test_an_oversized_env_is_refused_before_anything_is_sent(tmp_path):
    big = [arg for i in range(10) for arg in ("--env", f"BIG{i}={'x' * 120_000}")]  # 1.2 MB in all
    proc = cli("submit", str(write_job(tmp_path, "run: 'true'\n")), *big)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "must be at most 1 MiB" in proc.stderr
