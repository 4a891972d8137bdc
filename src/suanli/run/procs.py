"""Finding and stopping every process an attempt started, wherever it went.

An attempt's processes are found two ways, so that neither `setsid` nor a double fork hides one:
- the supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER), so orphaned descendants are re-parented
  to it rather than to init and stay in its process tree while it lives;
- every process of the attempt carries SUANLI_ATTEMPT_TOKEN (a random value per attempt) in its
  environment, inherited by whatever it starts; after the supervisor is gone, a scan of
  /proc/*/environ finds the rest (the way Jenkins' ProcessTreeKiller finds a build's processes).
A process that both leaves the supervisor's tree and clears its environment is beyond both; cgroups
would catch it, and are not used (see docs/jobs.md).

Standard library only (and monitor/collect.py, which is too at import): the supervisor imports this and
must start in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable

from suanli.monitor.collect import children_map, pids, subtree

TOKEN_VAR = "SUANLI_ATTEMPT_TOKEN"
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the process tree."""
    return [p for p in subtree(root, children_map())[1:] if not _is_zombie(p)]


def with_token(token: str) -> list[int]:
    """Live processes (of this user; others' environments cannot be read) carrying `token`."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    me = os.getpid()
    for pid in pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and not _is_zombie(pid):
            found.append(pid)
    return found


def attempt_processes(token: str | None, root: int | None = None) -> list[int]:
    """The attempt's live processes: `root`'s descendants and every process carrying `token`."""
    pids = set(descendants(root)) if root is not None else set()
    if token:
        pids.update(with_token(token))
    pids.discard(os.getpid())
    return sorted(pids)


def _reap_children() -> None:
    """Collect exited children (as a subreaper, orphans become ours), so they stop counting as live."""
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_all(
    find: Callable[[], list[int]], grace_s: float, *, wait_s: float = 30.0, reap: bool = False
) -> list[int]:
    """SIGTERM what `find` returns, SIGKILL what is left after `grace_s`, and wait until nothing is
    found (re-finding each round: a dying process may start another). Returns the pids still alive
    after `wait_s` (normally none: only a process stuck in the kernel survives SIGKILL)."""
    pids = find()
    if not pids:
        return []
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        if reap:
            _reap_children()
        pids = find()
        _signal_all(pids, signal.SIGTERM)  # newcomers get the same warning
    deadline = time.monotonic() + wait_s
    while pids and time.monotonic() < deadline:
        _signal_all(pids, signal.SIGKILL)
        time.sleep(0.02)
        if reap:
            _reap_children()
        pids = find()
    return pids
