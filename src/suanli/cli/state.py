"""Options shared by every command (--db), kept in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suanli.api import Client
    from suanli.remote import RemoteClient

_options: dict[str, str | None] = {"db": None}
_client: list[Client | RemoteClient] = []


def set_db(url: str | None) -> None:
    """Called once per invocation: the next `client()` is made for it (a process may invoke many)."""
    _options["db"] = url
    _client.clear()


def db_url() -> str:
    from suanli.store.paths import default_db_url, normalize_db_url

    return normalize_db_url(_options["db"]) if _options["db"] else default_db_url()


def remote() -> RemoteClient | None:
    """The team server this user logged in to (`suanli login`), unless --db names a database."""
    if _options["db"]:
        return None
    from suanli.remote import RemoteClient, load_credentials

    creds = load_credentials()
    return RemoteClient(creds) if creds else None


def client() -> Client | RemoteClient:
    """The Client for this invocation: the team server's after `suanli login`, else the local state
    (imported lazily: the CLI starts without the library loaded)."""
    if not _client:
        from suanli.api import Client

        _client.append(remote() or Client(_options["db"]))
    return _client[0]
