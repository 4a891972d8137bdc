"""The supervisor of one attempt: runs `setup` then `run` (once per worker) as its own process group,
and writes the outcome to result.json before it exits.

It keeps jobs independent of the agent: if the agent dies, the job runs on, and the next agent reads
result.json (or, if this supervisor vanished too, knows the job was lost). Imports only the standard
library so it starts in tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_SECONDS = 10.0


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _describe(rc: int) -> tuple[int | None, str | None, str]:
    """(exit_code, signal name, words) for a subprocess return code."""
    if rc < 0:
        name = signal.Signals(-rc).name
        why = f"killed by {name}"
        if -rc == signal.SIGKILL:
            why += " (out of memory, or killed by a user or the system)"
        return None, name, why
    if rc > 128 and rc - 128 in signal.valid_signals():
        return rc, None, f"exited with code {rc} (128+{signal.Signals(rc - 128).name})"
    return rc, None, f"exited with code {rc}"


def main(run_dir: str) -> int:
    root = Path(run_dir)
    launch = json.loads((root / "launch.json").read_text())
    (root / "shim.pid").write_text(str(os.getpid()))
    env = {**os.environ, **launch["env"]}
    workdir = launch["workdir"]
    children: list[subprocess.Popen] = []
    stopping = {"signal": None}

    def on_term(signum: int, _frame: object) -> None:
        stopping["signal"] = signal.Signals(signum).name
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def finish(rc: int, phase: str, rank: int | None) -> int:
        exit_code, sig, why = _describe(rc)
        if phase == "setup":
            why = f"setup {why}"
        elif rank is not None and launch["num_workers"] > 1:
            why = f"worker {rank} {why}"
        if stopping["signal"]:
            why = f"stopped by {stopping['signal']}; {why}"
        _write_json(
            root / "result.json",
            {
                "exit_code": exit_code,
                "signal": sig,
                "phase": phase,
                "rank": rank,
                "reason": why,
                "at": time.time(),
            },
        )
        return 0

    if launch.get("setup"):
        setup = subprocess.Popen(["bash", "-c", launch["setup"]], cwd=workdir, env=env)
        children.append(setup)
        rc = setup.wait()
        children.clear()
        if rc != 0 or stopping["signal"]:
            return finish(rc, "setup", None)

    n = launch["num_workers"]
    for rank in range(n):
        worker_env = dict(env)
        if n > 1:
            worker_env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(n),
                LOCAL_WORLD_SIZE=str(n),
                NODE_RANK="0",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(launch["master_port"]),
            )
        children.append(subprocess.Popen(["bash", "-c", launch["run"]], cwd=workdir, env=worker_env))

    # Wait for all workers; the first failure stops the rest (a data-parallel job cannot go on without it).
    pending = {c.pid: (rank, c) for rank, c in enumerate(children)}
    first_failure: tuple[int, int] | None = None
    while pending:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in pending:
            continue
        rank, child = pending.pop(pid)
        rc = os.waitstatus_to_exitcode(status)
        child.returncode = rc
        if rc != 0 and first_failure is None:
            first_failure = (rc, rank)
            deadline = time.time() + GRACE_SECONDS
            for _, other in pending.values():
                other.terminate()
            while pending and time.time() < deadline:
                time.sleep(0.05)
                for opid, (_, other) in list(pending.items()):
                    if other.poll() is not None:
                        pending.pop(opid)
            for _, other in pending.values():
                other.kill()
    if first_failure is not None:
        return finish(first_failure[0], "run", first_failure[1])
    return finish(0, "run", None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
