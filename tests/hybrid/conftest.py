"""Fixtures of the hybrid adapter's own tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from support.redis_servers import RedisServer, how_to_get_redis, local_server


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that kill connections, freeze or restart it."""
    if shutil.which("redis-server") is None:
        pytest.fail(how_to_get_redis("a local redis-server binary (to stop and restart a server)"), pytrace=False)
    with local_server() as server:
        yield server
