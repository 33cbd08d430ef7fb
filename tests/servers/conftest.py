"""Fixtures of the real-server tests: each server is started once per module and stopped afterwards."""

from __future__ import annotations

import pytest

from tests.servers.servers import postgres_server, redis_server


@pytest.fixture(scope="module")
def redis():
    """A redis-server on a free loopback port (skips when redis-server is not installed)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster on a free loopback port (skips when initdb/pg_ctl are not installed)."""
    with postgres_server() as server:
        yield server
