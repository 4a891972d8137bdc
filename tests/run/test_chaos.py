"""Chaos: the agent and attempts' supervisors are SIGKILLed at random points while 100 jobs run. Each
job's `run` executes at most once per attempt and exactly once in its last, attempts of a job never
overlap, and no process of any attempt is left afterwards."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
from pathlib import Path

from jobhelpers import wait_for

JOBS = 100
KILLS = 30

# Each attempt takes the job's lock (fd 9) and leaves a `setsid` child holding it: if that child
# outlived its attempt, the next attempt could not take the lock and would record an overlap.
RUN = """\
exec 9>>{d}/lock
flock -n 9 || echo "overlap $SUANLI_ATTEMPT" >> {d}/overlap
echo "start $SUANLI_ATTEMPT" >> {d}/log
setsid sleep 1000.{marker} &
sleep 0.{pause}
echo "end $SUANLI_ATTEMPT" >> {d}/log
"""


def _marker_processes(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(name))
    return found


def test_random_sigkills_of_agent_and_supervisors_over_100_jobs(tmp_path, suanli_home):
    from suanli import Client
    from suanli.jobs.spec import parse_spec
    from suanli.run import control

    rng = random.Random(20261203)
    marker = str(rng.randrange(10**8, 10**9))
    client = Client()
    specs = []
    for i in range(JOBS):
        d = tmp_path / f"job{i}"
        d.mkdir()
        run = RUN.format(d=d, marker=marker, pause=rng.randrange(1, 6))
        specs.append(
            parse_spec({"name": f"chaos{i}", "run": run, "retries": 20, "resources": {"cpus": 0.25}})
        )
    ids = client.submit_many(specs)

    def terminal() -> bool:
        return all(j.is_terminal for j in client.store.list_jobs(limit=JOBS))

    def progress() -> list[tuple[str, int]]:
        return [(j.state, len(j.attempts)) for j in client.store.list_jobs(limit=JOBS, with_attempts=True)]

    kills = {"agent": 0, "supervisor": 0}
    while sum(kills.values()) < KILLS and not terminal():
        running = [a for _, a in client.store.running() if a.pid]
        if rng.random() < 0.3 or not running:
            info = control.running_agent()
            if info is not None:
                os.kill(info.pid, signal.SIGKILL)
                wait_for(lambda i=info: not i.alive())
                kills["agent"] += 1
            control.ensure_agent(client.store.url)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(running).pid, signal.SIGKILL)
                kills["supervisor"] += 1
        # let the pool move on a little before the next blow: until some job's state has changed
        before = [(j.state, len(j.attempts)) for j in client.store.list_jobs(limit=JOBS, with_attempts=True)]
        wait_for(
            lambda b=before: (
                terminal()
                or [
                    (j.state, len(j.attempts)) for j in client.store.list_jobs(limit=JOBS, with_attempts=True)
                ]
                != b
            )
        )
    control.ensure_agent(client.store.url)
    wait_for(terminal, timeout=900)

    assert kills["agent"] > 0 and kills["supervisor"] > 0, kills
    records = {j.id: j for j in client.store.list_jobs(limit=JOBS, with_attempts=True)}
    for i, job_id in enumerate(ids):
        record, d = records[job_id], tmp_path / f"job{i}"
        assert record.state == "SUCCEEDED", (record.state, record.reason)
        assert not (d / "overlap").exists(), (d / "overlap").read_text()
        lines = (d / "log").read_text().split()
        starts = [int(n) for what, n in zip(lines[::2], lines[1::2], strict=True) if what == "start"]
        ends = [int(n) for what, n in zip(lines[::2], lines[1::2], strict=True) if what == "end"]
        last = len(record.attempts)
        assert len(starts) == len(set(starts)), f"job {job_id}: an attempt ran twice: {starts}"
        assert set(starts) <= set(range(1, last + 1)) and starts.count(last) == 1 and ends[-1] == last
        spans = sorted((a.started_at, a.ended_at) for a in record.attempts)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))
    wait_for(lambda: not _marker_processes(marker))
