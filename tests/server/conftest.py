"""The server tests' fixture: one real team server per test module."""

from __future__ import annotations

import pytest
from serverhelpers import TeamServer, start_server, stop_server


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> TeamServer:
    """One server per test module (starting one costs seconds); tests make their own jobs."""
    server = start_server(tmp_path_factory.mktemp("team") / "home")
    yield server
    stop_server(server)
