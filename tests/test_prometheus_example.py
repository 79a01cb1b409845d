"""examples/prometheus.py runs, and Prometheus's page shows the cache's counters with its prefix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.redis_servers import RedisServer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "prometheus.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_prometheus_example_exposes_the_counters(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), redis_server.url, str(_free_port()), key_prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    lines = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in done.stdout.splitlines() if "_total" in line}
    assert lines["rediscache_hits_total"] == 3
    assert lines["rediscache_writes_total"] == 3
    assert lines["rediscache_invalidated_total"] == 3
    assert lines["rediscache_factory_calls_total"] == 3
    assert 'rediscache_operation="delete_by_tags"' in done.stdout
