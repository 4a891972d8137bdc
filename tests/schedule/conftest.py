"""Fixtures for the scheduling tests: where the public traces are (skipped when absent), and a replay
helper. Helpers live in sched_helpers.py: test modules import helpers by name, never from conftest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sched_helpers import replay


def _shared_data() -> Path | None:
    env = os.environ.get("SUANLI_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    for c in candidates:
        if (c / "traces").is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    data = _shared_data()
    if data is None:
        pytest.skip("public traces not found: set SUANLI_SHARED_DATA to the shared/data folder")
    return data / "traces"


@pytest.fixture
def run():
    return replay
