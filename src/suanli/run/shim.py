"""The supervisor of one attempt: runs `setup` then `run` (once per worker), stops every process the
attempt started once it ends (procs.py: it is their subreaper and they carry its token), and only then
writes the outcome to result.json and exits.

It keeps jobs independent of the agent: if the agent dies, the job runs on, and the next agent reads
result.json (or, if this supervisor vanished too, stops what is left of the attempt and knows it was
lost). Imports only the standard library so it starts in tens of milliseconds.

Its exit code tells the agent what result.json could not (a full disk): 0 the result was written,
RESULT_UNWRITTEN_OK / RESULT_UNWRITTEN_FAILED the job succeeded / failed but the file could not be
written.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from suanli.core.files import write_private
from suanli.run import procs
from suanli.run.worker_env import describe_exit, rank_environment

GRACE_SECONDS = 10.0
RESULT_UNWRITTEN_OK = 10
RESULT_UNWRITTEN_FAILED = 11


def _say(message: str) -> None:
    """A line to the attempt's log, unbuffered; on a full disk it is lost, and nothing else fails."""
    with contextlib.suppress(OSError):
        os.write(2, message.encode() + b"\n")


class Supervisor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.launch = json.loads((root / "launch.json").read_text())
        self.token = self.launch.get("token") or os.environ.get(procs.TOKEN_VAR, "")
        secrets_file = root / "secrets.json"
        secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        secrets_file.unlink(missing_ok=True)  # read once: secrets stay on disk no longer than needed
        self.env = {**self.launch["env"], **secrets, procs.TOKEN_VAR: self.token}
        self.children: list[subprocess.Popen] = []
        self.stopping: str | None = None

    def on_term(self, signum: int, _frame: object) -> None:
        self.stopping = signal.Signals(signum).name
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)

    def start(self, script: str, env: dict[str, str]) -> subprocess.Popen:
        child = subprocess.Popen(["bash", "-c", script], cwd=self.launch["workdir"], env=env)
        self.children.append(child)
        return child

    def run(self) -> dict:
        """Setup, then the workers; the outcome as result.json holds it."""
        launch = self.launch
        if launch.get("setup"):
            try:
                setup = self.start(launch["setup"], self.env)
            except OSError as e:
                return {"exit_code": None, "signal": None, "phase": "setup", "rank": None,
                        "reason": f"setup could not start: {e}"}  # fmt: skip
            rc = setup.wait()
            self.children.clear()
            if rc != 0 or self.stopping:
                return self.result(rc, "setup", None)
        n = launch["num_workers"]
        for rank in range(n):
            worker_env = dict(self.env)
            if n > 1:
                worker_env.update(rank_environment(rank, n, n, "127.0.0.1", launch["master_port"]))
            try:
                self.start(launch["run"], worker_env)
            except OSError as e:
                self.on_term(signal.SIGTERM, None)
                return {"exit_code": None, "signal": None, "phase": "run", "rank": rank,
                        "reason": f"worker {rank} could not start: {e}"}  # fmt: skip
        return self.wait_workers()

    def wait_workers(self) -> dict:
        """Wait for all workers; the first failure stops the rest (a data-parallel job cannot go on
        without it). Orphans re-parented to us are reaped here too."""
        pending = {c.pid: (rank, c) for rank, c in enumerate(self.children)}
        first_failure: tuple[int, int] | None = None
        kill_at = None
        while pending:
            # A worker reaped by Popen.poll() (send_signal polls first, in on_term) carries its code.
            reaped = next((pid for pid, (_, c) in pending.items() if c.returncode is not None), None)
            if reaped is not None:
                pid, rc = reaped, pending[reaped][1].returncode
            else:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    if any(c.returncode is not None for _, c in pending.values()):
                        continue
                    break
                if pid == 0:
                    if kill_at is not None and time.monotonic() > kill_at:
                        for _, other in pending.values():
                            other.kill()
                    time.sleep(0.05)
                    continue
                if pid not in pending:
                    continue
                rc = os.waitstatus_to_exitcode(status)
            rank, child = pending.pop(pid)
            child.returncode = rc
            if rc != 0 and first_failure is None:
                first_failure = (rc, rank)
                kill_at = time.monotonic() + GRACE_SECONDS
                for _, other in pending.values():
                    other.terminate()
        if first_failure is not None:
            return self.result(first_failure[0], "run", first_failure[1])
        return self.result(0, "run", None)

    def result(self, rc: int, phase: str, rank: int | None) -> dict:
        who = "setup" if phase == "setup" else ""
        if phase != "setup" and rank is not None and self.launch["num_workers"] > 1:
            who = f"worker {rank}"
        exit_code, sig, why = describe_exit(rc, who)
        if self.stopping:
            why = f"stopped by {self.stopping}; {why}"
        return {"exit_code": exit_code, "signal": sig, "phase": phase, "rank": rank, "reason": why}

    def stop_leftovers(self) -> None:
        """Every process the attempt started ends with it: background jobs, `setsid`, daemons."""
        grace = float(self.launch.get("grace_s", GRACE_SECONDS))
        left = procs.stop_all(lambda: procs.attempt_processes(self.token, os.getpid()), grace, reap=True)
        if left:
            _say(f"suanli: processes {left} of this attempt survived SIGKILL")


def _own_account() -> dict:
    """CPU time and the largest process's peak memory of every process the attempt ran and reaped (the
    supervisor is their subreaper; its own use is not the job's), from the kernel's accounting: what
    seff reports for a Slurm job."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": children.ru_utime + children.ru_stime,
        "max_rss_bytes": children.ru_maxrss * 1024,  # Linux counts KiB
    }


def main(run_dir: str) -> int:
    root = Path(run_dir)
    procs.become_subreaper()
    write_private(root / "shim.pid", str(os.getpid()))
    try:
        sup = Supervisor(root)
    except (OSError, ValueError, KeyError) as e:
        result = {"exit_code": None, "signal": None, "phase": "launch", "rank": None,
                  "reason": f"the supervisor could not read its launch file: {e}"}  # fmt: skip
        sup = None
    else:
        os.umask(int(sup.launch.get("umask", 0o022)))
        signal.signal(signal.SIGTERM, sup.on_term)
        signal.signal(signal.SIGINT, sup.on_term)
        try:
            result = sup.run()
        finally:
            sup.stop_leftovers()
    result["at"] = time.time()
    result.update(_own_account())
    try:
        write_private(root / "result.json", json.dumps(result))
    except OSError as e:  # a full disk: the exit code still says how the job went
        _say(f"suanli: could not write {root / 'result.json'}: {e}")
        ok = result["exit_code"] == 0 and result["signal"] is None
        return RESULT_UNWRITTEN_OK if ok else RESULT_UNWRITTEN_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
