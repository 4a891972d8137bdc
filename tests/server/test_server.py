"""The team server as its users meet it: the CLI against it, bad input, quotas, HTTPS and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time

import pytest
from serverhelpers import PASSWORD, start_server, stop_server
from sqlalchemy import update

from jobhelpers import cli, wait_for, write_job

SMALL = {"name": "small", "run": "true", "resources": {"cpus": 0.1}}


def _count_jobs(s) -> int:
    return len(s.call("GET", "/api/jobs?limit=1000", s.tokens["root"])[1]["jobs"])


# ---- the CLI against the server ---------------------------------------------------------------


def test_cli_logs_in_and_every_job_command_goes_to_the_server(team_server, tmp_path, suanli_home):
    s = team_server
    proc = cli("login", s.url, "--user", "ana", "--password-stdin", "--json", input_text=PASSWORD)
    assert proc.returncode == 0, proc.stderr
    creds = suanli_home / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(proc.stdout)["project"] == "vision"
    job = write_job(tmp_path, "name: greet\nrun: echo hello-from-the-server\nresources: {cpus: 0.5}\n")
    submitted = json.loads(cli("submit", str(job), "--json").stdout)
    record = wait_for(
        lambda: (
            (r := json.loads(cli("status", str(submitted["id"]), "--json").stdout))["status"] == "SUCCEEDED"
            and r
        )
    )
    assert record["user"] == "ana" and record["project"] == "vision"
    # The same JSON as the server's own record, and the local database was never touched.
    assert record == s.call("GET", f"/api/jobs/{submitted['id']}", s.tokens["ana"])[1]
    assert not (suanli_home / "suanli.db").exists()
    assert cli("logs", str(submitted["id"])).stdout == "hello-from-the-server\n"
    listed = json.loads(cli("status", "--json").stdout)["jobs"]
    assert submitted["id"] in [j["id"] for j in listed]
    assert "nodes" in json.loads(cli("nodes", "--json").stdout)
    run = cli("run", str(job), "--json")
    assert run.returncode == 0 and json.loads(run.stdout)["status"] == "SUCCEEDED", run.stderr
    assert "hello-from-the-server" in run.stderr
    assert cli("logout").returncode == 0 and not creds.exists()


def test_cli_shows_the_servers_reason_and_exit_codes(team_server, tmp_path):
    s = team_server
    job = write_job(tmp_path, "name: x\nrun: 'true'\nresources: {cpus: 0.1}\n")
    refused = s.cli("submit", str(job), token=s.tokens["vic"])
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "error: vic (viewer in project vision) may not submit jobs to project vision"
    )
    expired = s.call("POST", "/api/tokens", s.tokens["ana"], {"ttl_s": 0.001})[1]
    out = s.cli("status", token=expired["token"])
    assert out.returncode == 2 and f"token {expired['id']} expired" in out.stderr
    other = s.cli("cancel", "999999", token=s.tokens["ana"])
    assert other.returncode == 2 and "no such job" in other.stderr
    down = cli("status", env={"SUANLI_SERVER": "http://127.0.0.1:9", "SUANLI_TOKEN": "sl_x"})
    assert down.returncode == 1
    assert down.stderr.strip() == "error: cannot reach http://127.0.0.1:9: [Errno 111] Connection refused"


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b'{"spec": {"name": "x", "run": "true"', 422, "body"),  # malformed JSON
        (json.dumps({"spec": SMALL, "colour": "red"}).encode(), 422, "colour"),  # unknown field
        (json.dumps({"spec": {**SMALL, "resourcez": {}}}).encode(), 400, None),  # unknown spec field
        (json.dumps({"spec": {**SMALL, "num_nodes": -1}}).encode(), 400, "num_nodes"),
        (
            json.dumps({"spec": {"name": "x", "run": "true", "envs": {"A": "x" * 2_000_000}}}).encode(),
            413,
            "body",
        ),
        (json.dumps({"specs": []}).encode(), 400, "spec"),
    ],
)
def test_bad_submissions_are_refused_and_store_nothing(team_server, raw, status, field):
    s = team_server
    before = _count_jobs(s)
    got, doc = s.call("POST", "/api/jobs", s.tokens["ana"], raw=raw)
    assert got == status, doc
    assert "\n" not in doc["error"] and doc["error"]
    if field:
        assert doc["field"] == field or doc["error"].startswith(field), doc
    assert _count_jobs(s) == before


def test_a_batch_with_one_bad_spec_stores_none_of_it(team_server):
    s = team_server
    before = _count_jobs(s)
    status, doc = s.call("POST", "/api/jobs", s.tokens["ana"], {"specs": [SMALL, {**SMALL, "retries": -2}]})
    assert status == 400 and doc["error"].startswith("retries"), doc
    assert _count_jobs(s) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "start"),
    [
        ("PUT", "/api/projects/vision/members/bob", {"role": "owner"}, 400, "role=owner: must be one of"),
        ("PUT", "/api/quotas/project/vision", {"gpu_hours": -5}, 400, "gpu_hours=-5"),
        ("PUT", "/api/quotas/project/vision", {"gpus": 1.5}, 400, "gpus=1.5"),
        ("PUT", "/api/quotas/team/vision", {"gpus": 1}, 400, "scope=team"),
        ("PUT", "/api/quotas/project/nope", {"gpus": 1}, 404, "project=nope: no such project"),
        ("PUT", "/api/quotas/project/vision", {"period": "fortnight"}, 400, "period=fortnight"),
        ("POST", "/api/users", {"name": "bad name!", "password": "long enough pw"}, 400, "user=bad name!"),
        ("POST", "/api/users", {"name": "shorty", "password": "short"}, 400, "password"),
        ("POST", "/api/tokens", {"ttl_s": -1}, 400, "ttl=-1"),
        ("GET", "/api/jobs?state=DONE", None, 400, "state=DONE: must be one of"),
        ("GET", "/api/jobs?limit=0", None, 422, "limit"),
    ],
)
def test_bad_admin_input_names_the_field_and_changes_nothing(team_server, method, path, body, status, start):
    s = team_server
    before = (
        s.call("GET", "/api/quotas", s.tokens["root"])[1],
        s.call("GET", "/api/users", s.tokens["root"])[1],
    )
    got, doc = s.call(method, path, s.tokens["root"], body)
    assert got == status and doc["error"].startswith(start), doc
    after = (
        s.call("GET", "/api/quotas", s.tokens["root"])[1],
        s.call("GET", "/api/users", s.tokens["root"])[1],
    )
    assert after == before


def test_malformed_authorization_is_refused(team_server):
    for header in ("Basic cm9vdDpwdw==", "Bearer", "Bearer " + "x" * 5000):
        status, doc = team_server.call("GET", "/api/whoami", headers={"Authorization": header})
        assert status == 401 and "\n" not in doc["error"], (header[:20], doc)


# ---- quotas -------------------------------------------------------------------------------------


def test_quotas_hold_jobs_back_with_a_reason_and_refuse_what_can_never_fit(tmp_path, suanli_home):
    from suanli.api import Client
    from suanli.core.errors import BadInput
    from suanli.jobs.spec import parse_spec
    from suanli.store.identity import Identity, Principal
    from suanli.store.models import Attempt

    client = Client(start_agent=False)
    ident = Identity(client.store)
    ident.add_user("ana", PASSWORD)
    ident.add_project("vision")
    ident.set_member("vision", "ana", "member")
    client.store.register_node("gpu-box", 32, 256 << 30, "H100", 8)
    ana = Client(store=client.store, principal=Principal("ana", "member", "vision"), start_agent=False)
    gpu_job = {"name": "train", "run": "true", "resources": {"accelerators": {"H100": 4}}}
    ident.set_quota("project", "vision", gpus=4)
    ids = [ana.submit(parse_spec(gpu_job, base_dir=tmp_path)) for _ in range(2)]
    rows = {r["id"]: r["reason"] for r in ana.queue()}
    assert rows[ids[0]] == "starts now: it fits"
    assert rows[ids[1]] == "project vision holds 4 of its 4 GPUs; this job needs 4"
    with pytest.raises(
        BadInput, match=r"resources.accelerators=8: GPUs at once; project vision may hold at most 4"
    ):
        ana.submit(parse_spec({**gpu_job, "resources": {"accelerators": {"H100": 8}}}, base_dir=tmp_path))
    # GPU-hours: an attempt that held 4 GPUs for the last hour (or since the month began) uses up a quota of
    # half of that.
    now = time.time()
    start = max(dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0).timestamp(), now - 3600)
    used = 4 * (now - start) / 3600
    ident.set_quota("project", "vision", clear=True)
    ident.set_quota("project", "vision", gpu_hours=used / 2)
    client.store.start_attempt(ids[0], "gpu-box", [0, 1, 2, 3], lambda j, n: tmp_path / f"a{n}")
    client.store.finish_attempt(ids[0], 1, exit_code=0, signal=None, reason="done")
    with client.store._tx() as tx:
        tx.execute(update(Attempt).values(started_at=start, ended_at=now))
    rows = {r["id"]: r["reason"] for r in ana.queue()}
    assert rows[ids[1]] == f"project vision has used {used:.4g} of {used / 2:.4g} GPU-hours this month"


def test_project_quotas_are_the_drf_policys_guaranteed_shares(suanli_home, monkeypatch):
    from suanli.run.schedconfig import make_policy
    from suanli.run.scheduling import decide_now
    from suanli.store.identity import Identity
    from suanli.store.store import Store

    monkeypatch.setenv("SUANLI_POLICY", "drf")
    store = Store()
    ident = Identity(store)
    ident.add_project("vision")
    ident.set_quota("project", "vision", gpus=6)
    policy = make_policy()
    decide_now(store, policy, store.nodes())
    assert policy.quotas == {"vision": 6} and policy.preemptive


# ---- HTTPS and PostgreSQL -----------------------------------------------------------------------


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_with_a_self_signed_certificate(tmp_path, suanli_home):
    cert, key = _self_signed(tmp_path)
    server = start_server(tmp_path / "tls-home", extra_args=("--tls-cert", str(cert), "--tls-key", str(key)))
    try:
        args = ("login", server.url, "-u", "ana", "--password-stdin", "--ca-file", str(cert), "--json")
        proc = cli(*args, input_text=PASSWORD)
        assert proc.returncode == 0 and json.loads(proc.stdout)["user"] == "ana", proc.stderr
        assert json.loads(cli("status", "--json").stdout) == {"jobs": []}
        os.unlink(suanli_home / "credentials.json")
        untrusted = cli("login", server.url, "-u", "ana", "--password-stdin", input_text=PASSWORD)
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    finally:
        stop_server(server)


def test_the_server_on_postgresql(tmp_path, pg_url):
    server = start_server(tmp_path / "pg-home", db_url=pg_url)
    try:
        status, doc = server.call("POST", "/api/jobs", server.tokens["ana"], {"spec": SMALL})
        assert status == 200, doc
        wait_for(
            lambda: (
                server.call("GET", f"/api/jobs/{doc['id']}", server.tokens["ana"])[1]["status"] == "SUCCEEDED"
            )
        )
        assert server.call("GET", "/api/jobs", server.tokens["nina"])[1]["jobs"] == []
        assert (
            server.call("GET", "/api/audit", server.tokens["root"])[1]["entries"][0]["action"] == "job.submit"
        )
    finally:
        stop_server(server)


def test_the_event_stream_of_a_long_log_can_start_near_its_end(team_server):
    s = team_server
    spec = {
        "name": "chatty",
        "run": "python3 -c \"print('x' * 99, end='\\n' * 0); print(('y' * 99 + '\\n') * 3000)\"",
        "resources": {"cpus": 0.1},
    }
    job = s.call("POST", "/api/jobs", s.tokens["ana"], {"spec": spec})[1]["id"]
    wait_for(lambda: s.call("GET", f"/api/jobs/{job}", s.tokens["ana"])[1]["status"] == "SUCCEEDED")
    status, text = s.call("GET", f"/api/jobs/{job}/events/stream?tail_bytes=1000", s.tokens["ana"])
    assert status == 200
    logs = [json.loads(line[6:])["text"] for line in text.splitlines() if line.startswith('data: {"text"')]
    assert logs[0].startswith("[... the first ") and "bytes of the log are not shown ...]" in logs[0]
    shown = "".join(logs[1:])
    assert len(shown.encode()) == 1000 and shown.endswith("y" * 99 + "\n\n")
    assert "event: end" in text


def test_metrics_take_a_token_and_are_prometheus_text(team_server):
    s = team_server
    status, doc = s.call("GET", "/metrics")
    assert status == 401 and doc["error"]
    status, text = s.call("GET", "/metrics", s.tokens["root"])
    assert status == 200 and 'suanli_jobs{state="RUNNING"}' in text
    assert "# TYPE suanli_job_cpu_seconds_total counter" in text
    assert s.call("GET", "/metrics", s.tokens["nina"])[0] == 200  # a member sees their project's jobs only
