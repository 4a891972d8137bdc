"""The permission matrix: every endpoint of the published schema, called as every role, as the owner and
a non-owner, in and out of the project, with no token, an expired token and a revoked one. Zero
unauthorised successes; every refusal is 401 or 403 with a one-line reason."""

from __future__ import annotations

import itertools
import json

import pytest

SPEC = {
    "name": "matrix",
    "run": "sleep 600",
    "resources": {"cpus": 0.1},
    "envs": {"API_URL": "http://example/ana-only"},
    "secrets": {"WANDB_KEY": "s3cret-value"},
}
SMALL = {"name": "small", "run": "true", "resources": {"cpus": 0.1}}
WORKLOAD = {"params": "7e9", "tokens": "1e9", "seq_len": 2048}

# admin, project admin, owner of the job, another member, viewer, a member of another project
ROLES = ["root", "pam", "ana", "bob", "vic", "nina"]
READERS = {"root", "pam", "ana", "bob", "vic"}  # may read vision's jobs
MANAGERS = {"root", "pam", "ana"}  # may cancel or resubmit ana's job
SUBMITTERS = {"root", "pam", "ana", "bob", "nina"}
EVERYONE = set(ROLES)
ADMINS = {"root"}

_counter = itertools.count()


def _rules(job: int, token_id: int) -> dict[tuple[str, str], tuple[set[str], object]]:
    """(method, schema path) -> (who may call it, the request body)."""
    n = next(_counter)
    return {
        ("POST", "/api/login"): (EVERYONE, None),  # public: checked by test_login_* below
        ("GET", "/api/whoami"): (EVERYONE, None),
        ("GET", "/api/tokens"): (EVERYONE, None),
        ("POST", "/api/tokens"): (EVERYONE, {"ttl_s": 60}),
        ("DELETE", "/api/tokens/{token_id}"): ({"root", "ana"}, None),
        ("GET", "/api/users"): (ADMINS, None),
        ("POST", "/api/users"): (ADMINS, {"name": f"new{n}", "password": "long enough pw"}),
        ("POST", "/api/users/{name}/password"): ({"root", "ana"}, {"password": "correct horse battery"}),
        ("POST", "/api/users/{name}/disabled"): (ADMINS, {"disabled": False}),
        ("GET", "/api/projects"): (EVERYONE, None),
        ("POST", "/api/projects"): (ADMINS, {"name": f"proj{n}"}),
        ("PUT", "/api/projects/{project}/members/{user}"): ({"root", "pam"}, {"role": "member"}),
        ("DELETE", "/api/projects/{project}/members/{user}"): ({"root", "pam"}, None),
        ("GET", "/api/quotas"): (EVERYONE, None),
        ("PUT", "/api/quotas/{scope}/{name}"): (ADMINS, {"gpus": 64}),
        ("GET", "/api/usage"): (EVERYONE, None),
        ("GET", "/api/audit"): (ADMINS, None),
        ("POST", "/api/jobs"): (SUBMITTERS, {"spec": SMALL}),
        ("GET", "/api/jobs"): (EVERYONE, None),
        ("GET", "/api/jobs/{job_id}"): (READERS, None),
        ("GET", "/api/jobs/{job_id}/spec"): (READERS, None),
        ("GET", "/api/jobs/{job_id}/events"): (READERS, None),
        ("GET", "/api/jobs/{job_id}/metrics"): (READERS, None),
        ("GET", "/api/jobs/{job_id}/logs"): (READERS, None),
        ("GET", "/api/jobs/{job_id}/events/stream"): (set(), None),  # streams until the job ends: below
        ("POST", "/api/jobs/{job_id}/cancel"): (MANAGERS, None),
        ("POST", "/api/jobs/{job_id}/resubmit"): (MANAGERS, None),
        ("GET", "/api/jobs/{job_id}/samples"): (READERS, None),
        ("GET", "/api/report"): (EVERYONE, None),  # without a job or a project: the caller's project
        ("GET", "/api/top"): (EVERYONE, None),
        ("GET", "/api/owners"): (EVERYONE, None),  # the owners' account is every member's to read
        ("GET", "/api/alerts"): (EVERYONE, None),
        ("GET", "/api/queue"): (EVERYONE, None),
        ("GET", "/api/nodes"): (EVERYONE, None),
        ("POST", "/api/estimate"): (EVERYONE, {"workload": WORKLOAD, "accelerators": {"H100": 8}}),
        ("POST", "/api/plan"): (EVERYONE, {"workload": WORKLOAD, "top": 3, "max_gpus": 16}),
        ("POST", "/api/simulate"): (EVERYONE, {"trace": "synthetic:50", "cluster": "2x4"}),
    }


def _path(template: str, job: int, token_id: int) -> str:
    return (
        template.replace("{job_id}", str(job))
        .replace("{token_id}", str(token_id))
        .replace("{name}", "ana" if "users" in template else "nlp")
        .replace("{scope}", "project")
        .replace("{project}", "vision")
        .replace("{user}", "bob")
    )


def _is_refusal(status: int, doc) -> bool:
    return status in (401, 403) and isinstance(doc, dict) and doc["error"] and "\n" not in doc["error"]


@pytest.fixture(scope="module")
def matrix_job(team_server) -> int:
    status, doc = team_server.call("POST", "/api/jobs", team_server.tokens["ana"], {"spec": SPEC})
    assert status == 200, doc
    return doc["id"]


def test_every_endpoint_as_every_caller(team_server, matrix_job):
    s = team_server
    schema = s.call("GET", "/openapi.json")[1]
    endpoints = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    revoked = s.call("POST", "/api/tokens", s.tokens["ana"], {"ttl_s": 3600})[1]
    assert s.call("DELETE", f"/api/tokens/{revoked['id']}", s.tokens["ana"])[0] == 200
    bad_tokens = {
        "no token": None,
        "unknown token": "sl_" + "x" * 43,
        "expired token": s.call("POST", "/api/tokens", s.tokens["ana"], {"ttl_s": 0.001})[1]["token"],
        "revoked token": revoked["token"],
    }
    wrong = []
    for method, template in endpoints:
        # a fresh token of ana's for each endpoint, so revoking one does not disturb the others
        victim = s.call("POST", "/api/tokens", s.tokens["ana"], {"ttl_s": 3600, "label": "victim"})[1]["id"]
        rules = _rules(matrix_job, victim)
        assert (method, template) in rules, f"no permission rule for {method} {template}: add one"
        allowed, body = rules[(method, template)]
        if template == "/api/login":
            continue
        path = _path(template, matrix_job, victim)
        if method == "DELETE" and "members" in template:
            path = path.replace("/bob", "/nina")  # removing a non-member changes nothing
        for who, token in bad_tokens.items():
            status, doc = s.call(method, path, token, body)
            if status != 401 or not _is_refusal(status, doc):
                wrong.append(f"{who}: {method} {path} -> {status} {doc}")
        if template.endswith("/events/stream"):
            continue
        for who in ROLES:
            status, doc = s.call(method, path, s.tokens[who], body)
            if who in allowed and status >= 400:
                wrong.append(f"{who} refused: {method} {path} -> {status} {doc}")
            if who not in allowed and (status < 400 or not _is_refusal(status, doc)):
                wrong.append(f"{who} not refused with 401/403: {method} {path} -> {status} {str(doc)[:200]}")
    assert not wrong, "\n".join(wrong)


def test_event_stream_is_refused_to_other_projects_and_without_a_token(team_server, matrix_job):
    path = f"/api/jobs/{matrix_job}/events/stream"
    for token in (None, team_server.tokens["nina"], "sl_not-a-token"):
        status, doc = team_server.call("GET", path, token)
        assert _is_refusal(status, doc), (status, doc)


def test_secrets_and_other_users_env_values_are_never_shown(team_server, matrix_job):
    s = team_server
    own = s.call("GET", f"/api/jobs/{matrix_job}/spec", s.tokens["ana"])[1]
    assert own["envs"] == {"API_URL": "http://example/ana-only"}
    for who in ("bob", "vic"):
        spec = s.call("GET", f"/api/jobs/{matrix_job}/spec", s.tokens[who])[1]
        assert spec["envs"] == {"API_URL": "***"}, who
    for who in ("root", "ana", "bob"):
        assert "s3cret-value" not in str(s.call("GET", f"/api/jobs/{matrix_job}/spec", s.tokens[who]))
    listing = s.call("GET", "/api/jobs", s.tokens["nina"])[1]
    assert matrix_job not in [j["id"] for j in listing["jobs"]]
    queue = s.call("GET", "/api/queue", s.tokens["nina"])[1]
    assert all(r["user"] == "nina" for r in queue["jobs"])


def test_a_token_cannot_grant_more_than_its_role(team_server):
    s = team_server
    status, doc = s.call("POST", "/api/tokens", s.tokens["vic"], {"role": "member"})
    assert status == 400 and doc["error"].startswith("role=member: must be at most viewer"), doc
    status, doc = s.call("POST", "/api/tokens", s.tokens["ana"], {"project": "nlp"})
    assert status == 403, doc
    status, doc = s.call("POST", "/api/tokens", s.tokens["ana"], {"role": "viewer"})
    assert status == 200 and doc["role"] == "viewer"
    viewer = doc["token"]
    status, doc = s.call("POST", "/api/jobs", viewer, {"spec": SMALL})
    assert status == 403, doc
    status, doc = s.call("POST", "/api/tokens", viewer, {"role": "member"})
    assert status == 400, doc
    listed = s.call("GET", "/api/tokens", s.tokens["ana"])[1]["tokens"]
    assert listed and all("token" not in t and t["user"] == "ana" for t in listed)


def test_login_is_rate_limited_and_failures_are_audited(team_server):
    s = team_server
    for _ in range(5):
        status, doc = s.call("POST", "/api/login", body={"user": "bob", "password": "wrong password"})
        assert status == 401 and doc["error"] == "wrong user name or password"
    status, doc = s.call("POST", "/api/login", body={"user": "bob", "password": "correct horse battery"})
    assert status == 429 and "too many failed logins for user bob" in doc["error"], doc
    assert s.call("POST", "/api/projects", s.tokens["vic"], {"name": "sneaky"})[0] == 403
    entries = s.call("GET", "/api/audit?limit=1000", s.tokens["root"], None)[1]["entries"]
    assert any(
        e["action"] == "refused" and e["actor"] == "vic" and e["target"] == "POST /api/projects"
        for e in entries
    )
    failed = [e for e in entries if e["action"] == "login" and not e["ok"] and e["target"] == "bob"]
    assert len(failed) >= 5
    assert any(e["action"] == "job.submit" and e["actor"] == "ana" for e in entries)


def test_reports_top_and_alerts_keep_to_the_callers_project(team_server, matrix_job):
    s = team_server
    job = f"/api/report?job={matrix_job}"
    assert _is_refusal(*s.call("GET", job, s.tokens["nina"]))  # another project's job
    assert _is_refusal(*s.call("GET", "/api/report?project=vision", s.tokens["nina"]))
    assert _is_refusal(*s.call("GET", f"/api/jobs/{matrix_job}/samples", s.tokens["nina"]))
    status, doc = s.call("GET", job, s.tokens["vic"])  # a viewer of the job's project
    assert status == 200 and doc["id"] == matrix_job and doc["user"] == "ana", doc
    for who, project in (("bob", "vision"), ("nina", "nlp")):  # no project named: the caller's own
        status, doc = s.call("GET", "/api/report", s.tokens[who])
        assert status == 200 and doc["filters"]["projects"] == [project], doc
        assert all(j["project"] == project for j in doc["jobs"] + doc["worst"]), doc
    status, doc = s.call("GET", "/api/report?user=nobody", s.tokens["root"])
    assert status == 400 and doc["field"] == "user" and doc["error"].startswith("user=nobody"), doc
    for who in ("bob", "nina"):
        status, doc = s.call("GET", "/api/top", s.tokens[who])
        assert status == 200 and all(
            j["project"] == ("vision" if who == "bob" else "nlp") for j in doc["jobs"]
        )
        status, doc = s.call("GET", "/api/alerts?all=true", s.tokens[who])
        assert status == 200 and all(
            a["project"] in (None, "vision" if who == "bob" else "nlp") for a in doc["alerts"]
        )
    # the CLI logged in to the server (RemoteClient) answers as the library does
    shown = s.cli("report", "--json", token=s.tokens["nina"])
    assert shown.returncode == 0 and json.loads(shown.stdout)["filters"]["projects"] == ["nlp"], shown.stderr
    owners = s.cli("report", "--owners", "--json", token=s.tokens["nina"])  # the consortium's shared account
    assert owners.returncode == 0 and json.loads(owners.stdout)["owners"], owners.stderr
    refused = s.cli("report", str(matrix_job), token=s.tokens["nina"])
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "may not" in refused.stderr
