"""Small network helpers for the parts of a service that find each other on a pool (a federation's
SuperLink and SuperNodes, an ensemble's front and replicas)."""

from __future__ import annotations

import socket
import time
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

LOOPBACK = ("127.0.0.1", "localhost")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the caller binds it soon after; a race is possible, and caught)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def reachable(address: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections at HOST:PORT."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def _port(value: str) -> str:
    if not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError("the port must be 1-65535")
    return value


# HOST:PORT in a spec file (a SuperLink's, an ensemble's front or replica).
Address = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$"), AfterValidator(_port)]


def is_loopback(address: str | None) -> bool:
    """Whether `address` (None: the default, loopback and a free port) stays on this machine: a part
    listening on it binds 127.0.0.1, else every interface."""
    return address is None or address.split(":")[0] in LOOPBACK


def bind_host(address: str | None) -> str:
    return "127.0.0.1" if is_loopback(address) else "0.0.0.0"


class Peer:
    """Whether the part a process serves (a SuperNode's SuperLink, a replica's front) is still there,
    probed every few seconds: `step()` says "gone" once it answered and then missed `gone_after` probes
    in a row, "absent" when it never answered within `wait_s`, else None (keep going)."""

    def __init__(self, address: str, wait_s: float, gone_after: int = 3) -> None:
        self.address, self.wait_s, self.gone_after = address, wait_s, gone_after
        self.started, self.seen, self.misses = time.monotonic(), False, 0

    def step(self) -> str | None:
        if reachable(self.address):
            self.seen, self.misses = True, 0
            return None
        if self.seen:
            self.misses += 1
            return "gone" if self.misses >= self.gone_after else None
        return "absent" if time.monotonic() - self.started > self.wait_s else None
