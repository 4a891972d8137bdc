"""Helpers for the server tests: a real team server on loopback (`python -m suanli server` in its own
process) over its own SQLite database (or the PostgreSQL server CI starts), with a small team made on
the command line first."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from jobhelpers import REPO, cleanup_home, cli, wait_for

PASSWORD = "correct horse battery"  # every test user's password (8+ characters)

# The team: an admin, two projects, and one user per role (plus a second member to own other jobs).
TEAM = {
    "ana": ("vision", "member"),
    "bob": ("vision", "member"),
    "vic": ("vision", "viewer"),
    "pam": ("vision", "project_admin"),
    "nina": ("nlp", "member"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TeamServer:
    url: str
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen
    tokens: dict[str, str] = field(default_factory=dict)  # user -> a token from logging in
    context: ssl.SSLContext | None = None  # trusts the server's certificate when it serves HTTPS

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body=None,
        raw: bytes | None = None,
        headers: dict | None = None,
    ) -> tuple[int, dict | str]:
        """(status, parsed JSON or text) of one request; refusals are returned, not raised."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        url = urllib.parse.urlsplit(self.url)
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.netloc, timeout=120, context=self.context)
        else:
            conn = http.client.HTTPConnection(url.netloc, timeout=120)
        try:
            # A server that answers (413) before reading the whole body: its answer is still there to read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, url.path + path, body=data, headers=hdrs)
            r = conn.getresponse()
            status, text = r.status, r.read().decode()
        finally:
            conn.close()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def login(self, user: str, password: str = PASSWORD, **extra) -> str:
        status, doc = self.call("POST", "/api/login", body={"user": user, "password": password, **extra})
        assert status == 200, doc
        return doc["token"]

    def cli(self, *args: str, token: str | None = None, **kwargs):
        """The suanli CLI as a user logged in with `token` (SUANLI_SERVER/SUANLI_TOKEN)."""
        env = {"SUANLI_SERVER": self.url, "SUANLI_TOKEN": token or "", **kwargs.pop("env", {})}
        return cli(*args, env=env, **kwargs)


def start_server(home: Path, db_url: str | None = None, extra_args: tuple[str, ...] = ()) -> TeamServer:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "SUANLI_HOME": str(home), "SUANLI_POLICY": "fifo"}
    env.pop("SUANLI_SERVER", None)
    if db_url:
        env["SUANLI_DB_URL"] = db_url
    # The first admin is made on the server machine, on the database itself; the rest of the team through
    # the API as that admin (quicker than one CLI process per step).
    proc = subprocess.run(
        [sys.executable, "-m", "suanli", "user", "add", "root", "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "suanli", "server", "--port", str(port), *extra_args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    scheme = "https" if "--tls-cert" in extra_args else "http"
    context = None
    if scheme == "https":
        context = ssl.create_default_context(cafile=extra_args[extra_args.index("--tls-cert") + 1])
    server = TeamServer(f"{scheme}://127.0.0.1:{port}", home, env, proc, context=context)

    def up() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            return server.call("GET", "/openapi.json")[0] == 200
        except OSError:
            return False

    wait_for(up, timeout=120)
    root = server.tokens["root"] = server.login("root")
    for project in ("vision", "nlp"):
        assert server.call("POST", "/api/projects", root, {"name": project})[0] == 200
    for user, (project, role) in TEAM.items():
        assert server.call("POST", "/api/users", root, {"name": user, "password": PASSWORD})[0] == 200
        assert server.call("PUT", f"/api/projects/{project}/members/{user}", root, {"role": role})[0] == 200
        server.tokens[user] = server.login(user)
    return server


def stop_server(server: TeamServer) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    if server.proc.stdout:
        server.proc.stdout.close()
    cleanup_home(server.home)
