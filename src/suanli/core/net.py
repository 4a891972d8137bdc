"""Small network helpers for the parts of a service that find each other on a pool (a federation's
SuperLink and SuperNodes, an ensemble's front and replicas)."""

from __future__ import annotations

import socket


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
