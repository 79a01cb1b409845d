"""The README's demo runs, on Redis when it has one and on the memory backend when it has none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.redis_servers import RedisServer

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def _run(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_runs_on_redis_with_two_instances(redis_server: RedisServer) -> None:
    out = _run({**os.environ, "REDIS_URL": redis_server.url})

    assert "two adapter instances sharing one cache" in out
    assert "a second instance on the same prefix reads config -> {'theme': 'dark'}" in out
    assert "20 answers, 1 database call" in out


def test_the_demo_says_when_it_runs_on_the_memory_backend() -> None:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server to be found

    out = _run(env)

    assert out.startswith("No Redis found")
    assert "delete_by_namespace('tenant:globex') -> 3 entries" in out
