"""Options shared by every command (--db), kept in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suanli.api import Client

_options: dict[str, str | None] = {"db": None}
_client: list[Client] = []


def set_db(url: str | None) -> None:
    _options["db"] = url


def db_url() -> str:
    from suanli.store.paths import default_db_url, normalize_db_url

    return normalize_db_url(_options["db"]) if _options["db"] else default_db_url()


def client() -> Client:
    """The Client for this invocation (imported lazily: the CLI starts without the library loaded)."""
    if not _client:
        from suanli.api import Client

        _client.append(Client(_options["db"]))
    return _client[0]
