"""Shared fixtures: every test gets its own SUANLI_HOME; agents and job processes started by a test are
stopped after it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from jobhelpers import cleanup_home


@pytest.fixture(autouse=True)
def suanli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SUANLI_HOME", str(home))
    monkeypatch.delenv("SUANLI_DB_URL", raising=False)
    monkeypatch.setenv("SUANLI_POLICY", "fifo")
    yield home
    cleanup_home(home)


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL database on the server named by SUANLI_TEST_PG_URL (CI starts one)."""
    base = os.environ.get("SUANLI_TEST_PG_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CI must provide SUANLI_TEST_PG_URL (see .ci/run)")
        pytest.skip("no PostgreSQL server: set SUANLI_TEST_PG_URL=postgresql://user:pass@127.0.0.1/postgres")
    import psycopg

    name = f"suanli_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    from sqlalchemy import create_engine

    create_engine("postgresql+psycopg://" + url.split("://", 1)[1]).dispose()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, suanli_home: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{suanli_home / 'suanli.db'}"
    return request.getfixturevalue("pg_url")
