"""Fixtures for the data tests: a local replay server and fast HTTP settings."""

from __future__ import annotations

import pytest

from tests.data.replay import ReplayServer

# Tiny delays keep the fault tests fast; the schedule's shape is what is tested.
FAST_HTTP = {"timeout_seconds": 0.5, "attempts": 3, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "max_retry_after_seconds": 5}


@pytest.fixture
def replay():
    with ReplayServer() as server:
        yield server
