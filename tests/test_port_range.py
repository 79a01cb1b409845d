"""``REDISCACHE_TEST_PORTS=LOW-HIGH`` confines every socket the fixtures listen on (tests/support/ports.py)."""

from __future__ import annotations

import random
import sys

import pytest
from support.ports import PORTS_VARIABLE, PortRangeError, is_free, listening_ports, port_range
from support.proxy import CountingProxy
from support.redis_servers import SERVER_KINDS, RedisCluster, RedisServer, local_cluster, local_server, server_binary

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads listening sockets from /proc")

WINDOW = 40


def _free_window() -> range:
    """A window of ports that are all free right now (the test then confines its servers to it)."""
    for _ in range(50):
        low = random.randrange(21000, 29000)
        window = range(low, low + WINDOW)
        if all(is_free(port) for port in window):
            return window
    pytest.fail("found no window of free ports to test with")


def _ports_of(server: RedisServer) -> set[int]:
    assert server.process is not None
    return listening_ports(server.process.pid)


def test_a_malformed_range_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("20000", "20000-", "a-b", "30000-20000", "80-90"):
        monkeypatch.setenv(PORTS_VARIABLE, bad)
        with pytest.raises(PortRangeError, match=PORTS_VARIABLE):
            port_range()


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_server_started_under_a_port_range_listens_only_inside_it(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    binary = server_binary(kind)  # type: ignore[arg-type]
    if binary is None:
        pytest.fail(f"no {kind}-server binary to start")
    window = _free_window()
    monkeypatch.setenv(PORTS_VARIABLE, f"{window.start}-{window.stop - 1}")

    with local_server(binary=binary) as server:
        ports = _ports_of(server)

    assert server.port in window
    assert ports and ports <= set(window), (ports, window)


def test_a_cluster_started_under_a_port_range_keeps_its_bus_ports_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    window = _free_window()
    monkeypatch.setenv(PORTS_VARIABLE, f"{window.start}-{window.stop - 1}")

    with local_cluster() as cluster:
        ports = [_ports_of(node) for node in cluster.nodes]

    for node, listening in zip(cluster.nodes, ports, strict=True):
        assert node.bus_port is not None
        assert listening == {node.port, node.bus_port}, (listening, window)
        assert listening <= set(window)


async def test_a_proxy_started_under_a_port_range_listens_inside_it(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    window = _free_window()
    monkeypatch.setenv(PORTS_VARIABLE, f"{window.start}-{window.stop - 1}")

    async with CountingProxy(redis_server.host, redis_server.port) as proxy:
        assert proxy.port in window


@pytest.mark.skipif(port_range() is None, reason=f"{PORTS_VARIABLE} is not set for this run")
def test_the_session_servers_listen_inside_the_runs_port_range(request: pytest.FixtureRequest) -> None:
    allowed = port_range()
    assert allowed is not None
    servers: list[RedisServer] = []
    for kind in SERVER_KINDS:
        servers.append(request.getfixturevalue(f"{kind}_server"))
        cluster: RedisCluster = request.getfixturevalue(f"{kind}_cluster")
        servers += cluster.nodes
    started = [server for server in servers if server.owned and server.process is not None]
    if not started:
        pytest.skip("every server of this run is external (REDIS_URL and the like): none was started here")
    for server in started:
        assert _ports_of(server) <= set(allowed), (server.address, _ports_of(server), allowed)
