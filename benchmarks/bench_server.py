"""The team server under load, measured on a real server process on loopback.

    python benchmarks/bench_server.py                   # everything
    python benchmarks/bench_server.py --only submit     # or: list, page
    python benchmarks/bench_server.py --jobs 2000 --repeat 3

submit: sustained submissions through HTTP with a bearer token, from two concurrent client processes,
while the server's agent starts and finishes every job (`run: "true"`), side by side with the baseline:
the library's own `Client.submit` in one process with the agent running. One job per request, and
batches of 50 specs per request. Afterwards every job must have ended SUCCEEDED exactly once: nothing
lost, nothing duplicated. Goal: at least 500 jobs/s (Slurm's validated submission rate).

list: p50/p95 latency of the job list (`GET /api/jobs`, 50 per page, with attempts) at 10,000 stored
jobs, plain and filtered, against the in-process `Client.jobs`. Goal: p95 under 50 ms.

page: the dashboard's first page (HTML, scripts and the first 50 jobs) at 10,000 jobs, in Debian's
chromium driven by Playwright: from navigation to the jobs table drawn. Goal: under 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "benchmark password"
SPEC = {"name": "bench", "run": "true", "resources": {"cpus": 0.01}}
BATCH = 50


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "SUANLI_HOME": str(home), "SUANLI_POLICY": "fifo"}


def make_team(home: Path) -> None:
    """An admin, a project and two members, made on the database as the server machine's owner would."""
    os.environ["SUANLI_HOME"] = str(home)
    from suanli.store.identity import Identity
    from suanli.store.store import Store

    ident = Identity(Store())
    ident.add_user("root", PASSWORD, admin=True)
    ident.add_project("bench")
    for user in ("ana", "bob"):
        ident.add_user(user, PASSWORD)
        ident.set_member("bench", user, "member")


class Server:
    def __init__(self, home: Path, *, agent: bool = True) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [sys.executable, "-m", "suanli", "server", "--port", str(self.port)] + (
            [] if agent else ["--no-agent"]
        )
        self.home = home
        self.proc = subprocess.Popen(
            args, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120
        while True:
            try:
                self.call("GET", "/openapi.json")
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def call(self, method: str, path: str, body=None, token: str | None = None):  # type: ignore[no-untyped-def]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {token}"} if token else {}
        )
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        r = conn.getresponse()
        data = json.loads(r.read() or b"null")
        conn.close()
        if r.status >= 400:
            raise RuntimeError(f"{method} {path}: {r.status} {data}")
        return data

    def token(self, user: str) -> str:
        return self.call("POST", "/api/login", {"user": user, "password": PASSWORD})["token"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        subprocess.run(
            [sys.executable, "-m", "suanli", "agent", "stop"], env=_env(self.home), capture_output=True
        )


def _client(port: int, token: str, jobs: int, batch: int, start, out) -> None:  # type: ignore[no-untyped-def]
    """One client process: a persistent connection, `jobs` jobs in requests of `batch`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    ids = []
    start.wait()
    for _ in range(jobs // batch):
        body = {"spec": SPEC} if batch == 1 else {"specs": [SPEC] * batch}
        conn.request("POST", "/api/jobs", json.dumps(body), headers)
        r = conn.getresponse()
        doc = json.loads(r.read())
        if r.status != 200:
            raise RuntimeError(doc)
        ids += doc["ids"]
    out.put((time.perf_counter(), ids))


def http_submit(server: Server, tokens: list[str], jobs: int, batch: int) -> tuple[float, list[int]]:
    """Jobs/s of two concurrent client processes, and the ids they got."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(server.port, t, jobs // 2, batch, start, out)) for t in tokens]
    for p in procs:
        p.start()
    time.sleep(1.0)  # both connected and waiting on the start event
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(t for t, _ in results) - t0
    return jobs / elapsed, [i for _, ids in results for i in ids]


def library_submit(home: Path, jobs: int) -> float:
    """The baseline: `Client.submit` of a spec in this process, the agent running."""
    os.environ["SUANLI_HOME"] = str(home)
    from suanli.api import Client
    from suanli.jobs.spec import parse_spec

    client = Client()
    spec = parse_spec(SPEC, base_dir=home)
    client.submit(spec)  # starts the agent
    t0 = time.perf_counter()
    for _ in range(jobs):
        client.submit(spec)
    return jobs / (time.perf_counter() - t0)


def wait_all_done(server: Server, token: str, expected: list[int]) -> dict:
    """Wait until no job is pending or running; then check each submitted id ended once, SUCCEEDED."""
    while server.call("GET", "/api/jobs?limit=1&state=PENDING&state=RUNNING", token=token)["jobs"]:
        time.sleep(0.5)
    states: dict[int, str] = {}
    before = None
    while True:
        q = "/api/jobs?limit=1000" + (f"&before_id={before}" if before else "")
        page = server.call("GET", q, token=token)
        for j in page["jobs"]:
            states[j["id"]] = j["status"]
        before = page["next_before_id"]
        if before is None:
            break
    missing = [i for i in expected if i not in states]
    return {
        "submitted": len(expected),
        "distinct_ids": len(set(expected)),
        "stored": len(states),
        "missing": len(missing),
        "succeeded": sum(1 for i in expected if states.get(i) == "SUCCEEDED"),
    }


def stored(server: Server, expected: list[int]) -> dict:
    """With no agent the jobs stay PENDING: check each submitted id was stored once."""
    ids: list[int] = []
    before = None
    while True:
        page = server.call(
            "GET",
            "/api/jobs?limit=1000" + (f"&before_id={before}" if before else ""),
            token=server.token("root"),
        )
        ids += [j["id"] for j in page["jobs"]]
        if (before := page["next_before_id"]) is None:
            break
    return {
        "submitted": len(expected),
        "distinct_ids": len(set(expected)),
        "stored": len(ids),
        "missing": len(set(expected) - set(ids)),
        "succeeded": None,
    }


def bench_submit(jobs: int, repeat: int) -> list[dict]:
    rows = []
    for r in range(repeat):
        for batch, agent in ((1, True), (BATCH, True), (1, False)):
            home = Path(tempfile.mkdtemp(prefix="suanli-bench-"))
            make_team(home)
            server = Server(home, agent=agent)
            try:
                tokens = [server.token("ana"), server.token("bob")]
                rate, ids = http_submit(server, tokens, jobs, batch)
                check = wait_all_done(server, server.token("root"), ids) if agent else stored(server, ids)
            finally:
                server.stop()
            rows.append({"run": r + 1, "batch": batch, "agent": agent, "http_jobs_per_s": rate, **check})
            print(f"  run {r + 1} batch {batch} agent {agent}: {rate:,.0f} jobs/s; {check}", file=sys.stderr)
        home = Path(tempfile.mkdtemp(prefix="suanli-bench-"))
        base = library_submit(home, jobs)
        subprocess.run([sys.executable, "-m", "suanli", "agent", "stop"], env=_env(home), capture_output=True)
        rows.append({"run": r + 1, "batch": 0, "library_jobs_per_s": base})
        print(f"  run {r + 1} library Client.submit: {base:,.0f} jobs/s", file=sys.stderr)
    return rows


def fill(home: Path, n: int) -> None:
    """`n` stored jobs with one attempt each, mostly finished (as a team's history looks)."""
    os.environ["SUANLI_HOME"] = str(home)
    from sqlalchemy import insert, select, update

    from suanli.jobs.spec import parse_spec
    from suanli.store import models as m
    from suanli.store.store import Store

    store = Store()
    specs = [
        parse_spec(
            {**SPEC, "name": f"job-{i}", "project": "bench", "user": ("ana", "bob")[i % 2]}, base_dir=home
        )
        for i in range(1000)
    ]
    for _ in range(n // 1000):
        store.submit_many(specs)
    now = time.time()
    with store._tx() as s:
        ids = [row[0] for row in s.execute(select(m.Job.id))]
        s.execute(update(m.Job).values(state="SUCCEEDED", started_at=now - 60, ended_at=now - 30))
        s.execute(update(m.Job).where(m.Job.id % 10 == 0).values(state="FAILED", reason="exited with code 1"))
        s.execute(
            insert(m.Attempt),
            [
                {
                    "job_id": i,
                    "number": 1,
                    "node": "vm",
                    "gpu_indices": [],
                    "run_dir": f"/x/job-{i}/attempt-1",
                    "started_at": now - 60,
                    "ended_at": now - 30,
                    "exit_code": 0,
                    "reason": "exited with code 0",
                }
                for i in ids
            ],
        )


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def bench_list(n: int, calls: int) -> list[dict]:
    home = Path(tempfile.mkdtemp(prefix="suanli-bench-"))
    make_team(home)
    fill(home, n)
    server = Server(home, agent=False)
    rows = []
    try:
        token = server.token("ana")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}
        for label, query in [
            ("first page", "limit=50"),
            ("page 100", "limit=50&before_id=5000"),
            ("state=FAILED", "limit=50&state=FAILED"),
            ("name filter", "limit=50&name=job-99"),
        ]:
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter()
                conn.request("GET", f"/api/jobs?{query}", headers=headers)
                r = conn.getresponse()
                body = r.read()
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status == 200 and json.loads(body)["jobs"], body[:200]
            p50, p95 = _percentiles(samples)
            rows.append({"query": label, "http_p50_ms": p50, "http_p95_ms": p95})
        from suanli.api import Client
        from suanli.store.identity import Principal

        client = Client(start_agent=False, principal=Principal("ana", "member", "bench"))
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter()
            client.jobs(all=True, limit=50)
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p95 = _percentiles(samples)
        rows.append({"query": "library Client.jobs (first page)", "http_p50_ms": p50, "http_p95_ms": p95})
    finally:
        server.stop()
    return rows


def bench_page(n: int, loads: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="suanli-bench-"))
    make_team(home)
    fill(home, n)
    server = Server(home, agent=False)
    try:
        token = server.token("ana")
        whoami = server.call("GET", "/api/whoami", token=token)
        url = f"http://127.0.0.1:{server.port}/"
        samples = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-quic",
                ],
            )
            for _ in range(loads):
                context = browser.new_context()
                context.add_init_script(
                    f"sessionStorage.setItem('suanli.token', {json.dumps(token)});"
                    f"sessionStorage.setItem('suanli.who', {json.dumps(json.dumps(whoami))});"
                )
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(url + "#/jobs")
                page.locator("[data-testid=jobs-table] tbody tr").nth(49).wait_for(timeout=30_000)
                samples.append((time.perf_counter() - t0) * 1000)
                context.close()
            browser.close()
    finally:
        server.stop()
    return [{"loads": loads, "median_ms": statistics.median(samples), "max_ms": max(samples)}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["submit", "list", "page"])
    ap.add_argument("--jobs", type=int, default=2000, help="jobs per submission run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stored", type=int, default=10_000, help="stored jobs for list and page")
    args = ap.parse_args()
    if args.only in (None, "submit"):
        rows = bench_submit(args.jobs, args.repeat)
        print(f"\nsubmissions, {args.jobs} jobs per run, 2 HTTP clients, agent running (goal >= 500 jobs/s)")
        print(f"{'mode':<34}{'median jobs/s':>14}{'runs':>24}{'each ran once':>18}")
        base = statistics.median(r["library_jobs_per_s"] for r in rows if r["batch"] == 0)
        for batch, agent in ((1, True), (BATCH, True), (1, False)):
            rs = [r for r in rows if r["batch"] == batch and r.get("agent") == agent]
            med = statistics.median(r["http_jobs_per_s"] for r in rs)
            ok = all(
                r["missing"] == 0
                and r["submitted"] == r["distinct_ids"]
                and r["succeeded"] in (None, r["submitted"])
                for r in rs
            )
            runs = ", ".join(f"{r['http_jobs_per_s']:,.0f}" for r in rs)
            label = f"HTTP, {batch} spec(s)/request" + ("" if agent else ", no agent")
            print(
                f"{label:<34}{med:>14,.0f}{runs:>24}{'yes' if ok else 'NO':>18}   {med / base:.2f}x library"
            )
        runs = ", ".join(f"{r['library_jobs_per_s']:,.0f}" for r in rows if r["batch"] == 0)
        print(f"{'library Client.submit, 1 process':<34}{base:>14,.0f}{runs:>24}")
    if args.only in (None, "list"):
        rows = bench_list(args.stored, 200)
        print(f"\njob list at {args.stored:,} stored jobs, 200 calls each (goal p95 < 50 ms)")
        print(f"{'query':<36}{'p50 ms':>10}{'p95 ms':>10}")
        for r in rows:
            print(f"{r['query']:<36}{r['http_p50_ms']:>10.1f}{r['http_p95_ms']:>10.1f}")
    if args.only in (None, "page"):
        rows = bench_page(args.stored, 5)
        r = rows[0]
        print(
            f"\ndashboard first page at {args.stored:,} jobs, {r['loads']} loads in chromium (goal < 1000 ms)"
        )
        print(f"median {r['median_ms']:.0f} ms, slowest {r['max_ms']:.0f} ms")


if __name__ == "__main__":
    main()
