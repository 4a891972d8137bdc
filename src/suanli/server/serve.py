"""Run the team server: uvicorn serving the app, HTTPS when given a certificate and key."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from suanli.core.errors import BadInput, SuanliError


def serve(
    db_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    start_agent: bool = True,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted. The scheduler agent for the same database is started (if none runs),
    so jobs submitted here are placed and run by the same live scheduler as local ones."""
    import uvicorn

    from suanli.server.app import create_app

    if (tls_cert is None) != (tls_key is None):
        raise BadInput("--tls-cert/--tls-key", str(tls_cert or tls_key), "give both, or neither")
    for field, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise BadInput(field, str(path), "no such file")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a small response waits for the client's delayed ACK
    # (Nagle), 40 ms per request on Linux.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except OSError as e:
        listener.close()
        raise SuanliError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    listener.listen(2048)
    app = create_app(db_url, start_agent=start_agent)
    if start_agent:
        from suanli.run import control

        control.ensure_agent(app.state.store.url)
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        app,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    if on_ready:
        on_ready(f"{scheme}://{shown}:{listener.getsockname()[1]}")
    server.run(sockets=[listener])
