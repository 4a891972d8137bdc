"""The client side of a team server: `suanli login URL` keeps a token here, and then every job command
talks to the server through `RemoteClient`, which answers like the local `Client` (same records, so
the same tables and the same `--json`). Standard library only, so commands start fast.

The credentials live in SUANLI_HOME/credentials.json (0600): the server's URL, the token, and the CA
file to trust for a self-signed HTTPS server. SUANLI_SERVER and SUANLI_TOKEN override the file.
"""

from __future__ import annotations

import codecs
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.core.errors import BadInput, SuanliError
from suanli.core.files import write_private
from suanli.jobs.spec import JobSpec, load_spec
from suanli.store.paths import home
from suanli.store.records import JobRecord, NodeRecord

TIMEOUT_S = 60.0
POLL_SECONDS = 0.2


class ServerError(SuanliError):
    """The server failed, or could not be reached (exit code 1)."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    ca_file: str | None = None

    def to_json(self) -> dict:
        return {"url": self.url, "token": self.token, "ca_file": self.ca_file}


def credentials_path() -> Path:
    return home() / "credentials.json"


def load_credentials() -> Credentials | None:
    """The server to talk to: SUANLI_SERVER + SUANLI_TOKEN, else the file `suanli login` wrote."""
    if os.environ.get("SUANLI_SERVER"):
        return Credentials(
            check_url(os.environ["SUANLI_SERVER"]),
            os.environ.get("SUANLI_TOKEN", ""),
            os.environ.get("SUANLI_CA_FILE"),
        )
    try:
        doc = json.loads(credentials_path().read_text())
        return Credentials(doc["url"], doc["token"], doc.get("ca_file"))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def save_credentials(creds: Credentials) -> Path:
    path = credentials_path()
    write_private(path, json.dumps(creds.to_json()))
    return path


def forget_credentials() -> bool:
    try:
        credentials_path().unlink()
        return True
    except FileNotFoundError:
        return False


def check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput("URL", url, "must be http://HOST:PORT or https://HOST:PORT")
    return url.rstrip("/")


class Refused(SuanliError):
    """The server refused the request (a 4xx: no valid token, not allowed, bad input): exit code 2."""

    exit_code = 2


class Http:
    """JSON over HTTP(S) with a bearer token; a refusal becomes the server's one line as an error."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.context = None
        if creds.url.startswith("https"):
            self.context = ssl.create_default_context(cafile=creds.ca_file)

    def open(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict | None = None,
        timeout: float | None = TIMEOUT_S,
    ):  # type: ignore[no-untyped-def]
        url = self.creds.url + path
        if query:
            pairs = [
                (k, str(v).lower() if isinstance(v, bool) else v) for k, v in query.items() if v is not None
            ]
            url += "?" + urllib.parse.urlencode(pairs, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout, context=self.context)
        except urllib.error.HTTPError as e:
            raise _refusal(e) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServerError(f"cannot reach {self.creds.url}: {reason}") from None

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        with self.open(method, path, body, query=query) as r:
            return json.loads(r.read() or b"null")


def _refusal(e: urllib.error.HTTPError) -> SuanliError:
    """The server's one-line reason, as the error its status means."""
    try:
        line = str(json.loads(e.read() or b"{}").get("error") or e.reason)
    except (ValueError, AttributeError):
        line = str(e.reason)
    line = line.splitlines()[0] if line else f"HTTP {e.code}"
    return Refused(line) if 400 <= e.code < 500 else ServerError(f"server error {e.code}: {line}")


def login(
    url: str,
    user: str,
    password: str,
    *,
    project: str | None = None,
    ttl_s: float | None = None,
    ca_file: str | None = None,
) -> tuple[Credentials, dict]:
    url = check_url(url)
    http = Http(Credentials(url, "", ca_file))
    doc = http.call(
        "POST", "/api/login", {"user": user, "password": password, "project": project, "ttl_s": ttl_s}
    )
    return Credentials(url, doc.pop("token"), ca_file), doc


class RemoteClient:
    """The job calls of `Client`, answered by a team server."""

    remote = True

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.http = Http(creds)

    def load(
        self, spec: JobSpec | str | Path, env: dict[str, str] | None = None, overrides: dict | None = None
    ) -> JobSpec:
        if isinstance(spec, JobSpec):
            return spec
        return load_spec(spec, env_overrides=env, overrides=overrides)

    @staticmethod
    def _wire(spec: JobSpec) -> dict:
        """The spec as the server reads a job file: what differs from the defaults, memory with its unit
        (a bare number in a file means GiB), and the user and project left to the server to set."""
        skip = {"notes", "user", "project"}
        doc = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude=skip)
        resources = doc.get("resources") or {}
        if resources.get("memory"):
            resources["memory"] = f"{resources['memory']}B"
        return doc

    def submit(
        self, spec: JobSpec | str | Path, env: dict[str, str] | None = None, *, key: str | None = None
    ) -> int:
        return self.submit_many([self.load(spec, env)], key=key)[0]

    def submit_many(self, specs: Sequence[JobSpec], *, key: str | None = None) -> list[int]:
        doc = self.http.call("POST", "/api/jobs", {"specs": [self._wire(s) for s in specs], "key": key})
        return doc["ids"]

    def dry_run(self, spec: JobSpec) -> dict:
        return self.http.call("POST", "/api/jobs", {"spec": self._wire(spec), "dry_run": True})

    def get(self, job_id: int) -> JobRecord:
        return JobRecord.from_json(self.http.call("GET", f"/api/jobs/{int(job_id)}"))

    def spec_json(self, job_id: int) -> dict:
        return self.http.call("GET", f"/api/jobs/{int(job_id)}/spec")

    def jobs(self, *, all: bool = False, user: str | None = None, limit: int = 50) -> list[JobRecord]:
        doc = self.http.call("GET", "/api/jobs", user=user, limit=limit)
        jobs = [JobRecord.from_json(j) for j in doc["jobs"]]
        return (
            jobs if all else [j for j in jobs if not j.is_terminal] + [j for j in jobs if j.is_terminal][:10]
        )

    def nodes(self) -> list[NodeRecord]:
        return [NodeRecord.from_json(n) for n in self.http.call("GET", "/api/nodes")["nodes"]]

    def queue(self) -> list[dict]:
        return self.http.call("GET", "/api/queue")["jobs"]

    def report(
        self, job_id: int | None = None, *, users: Sequence[str] | None = None,
        projects: Sequence[str] | None = None, since: float | str | None = None, limit: int | None = None,
    ) -> dict:  # fmt: skip
        query = {"user": list(users or []) or None, "project": list(projects or []) or None}
        return self.http.call("GET", "/api/report", job=job_id, since=since, limit=limit, **query)

    def owners(self, since: float | str | None = None) -> dict:
        return self.http.call("GET", "/api/owners", since=since)

    def top(self) -> dict:
        return self.http.call("GET", "/api/top")

    def alerts(
        self, *, open_only: bool = True, job_id: int | None = None, since: float | str | None = None,
        limit: int = 200,
    ) -> list[dict]:  # fmt: skip
        doc = self.http.call("GET", "/api/alerts", all=not open_only, job=job_id, since=since, limit=limit)
        return doc["alerts"]

    def metric_history(self, job_id: int) -> list[dict]:
        return self.http.call("GET", f"/api/jobs/{int(job_id)}/metrics")["metrics"]

    def samples(self, job_id: int, attempt: int | None = None, since: float | None = None) -> list[dict]:
        doc = self.http.call("GET", f"/api/jobs/{int(job_id)}/samples", attempt=attempt, since=since)
        return doc["samples"]

    def cancel(self, job_id: int, *, wait: bool = True, timeout_s: float = 60.0) -> JobRecord:
        self.http.call("POST", f"/api/jobs/{int(job_id)}/cancel", wait=False)
        return self.wait(job_id, timeout_s=timeout_s) if wait else self.get(job_id)

    def wait(self, job_id: int, *, timeout_s: float | None = None) -> JobRecord:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.get(job_id)
            if record.is_terminal:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise SuanliError(f"job {job_id} is still {record.state} after {timeout_s:.0f} s")
            time.sleep(POLL_SECONDS)

    def follow(self, job_id: int, attempt: int | None = None, *, follow: bool = True) -> Iterator[str]:
        query = {"attempt": attempt, "follow": follow}
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character split by a read
        with self.http.open("GET", f"/api/jobs/{int(job_id)}/logs", query=query, timeout=None) as r:
            while data := r.read1(65536):
                text = decoder.decode(data)
                if text:
                    yield text
