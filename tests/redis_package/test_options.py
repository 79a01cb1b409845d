"""ConnectionOptions: the deadlines in layers and their defaults."""

from __future__ import annotations

import pytest

from rediscache import ConnectionOptions, RedisCacheAdapter


def test_the_defaults_bound_a_dead_server_to_about_a_second_and_tolerate_a_slow_network() -> None:
    options = ConnectionOptions()

    assert options.operation_timeout == 1.0
    # A round trip under half of socket_timeout fits an attempt; under a fifth of connect_timeout,
    # the handshake's round trips fit a connect.
    assert options.socket_timeout <= options.operation_timeout
    assert 0.4 * options.socket_timeout < 0.2 * options.connect_timeout
    assert options.pool_wait == options.operation_timeout


@pytest.mark.parametrize(
    "bad",
    [
        {"socket_timeout": 0},
        {"connect_timeout": -1},
        {"operation_timeout": 0},
        {"retries": -1},
        {"max_connections": 0},
        {"pool_timeout": 0},
    ],
)
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ConnectionOptions(**bad)  # type: ignore[arg-type]


def test_the_pool_wait_never_exceeds_the_call_budget() -> None:
    assert ConnectionOptions(pool_timeout=5.0, operation_timeout=1.0).pool_wait == 1.0
    assert ConnectionOptions(pool_timeout=0.2).pool_wait == 0.2


async def test_flat_keywords_override_the_options_object() -> None:
    adapter = RedisCacheAdapter(options=ConnectionOptions(socket_timeout=0.3, retries=0), operation_timeout=2.0)
    try:
        assert adapter.transport.options == ConnectionOptions(socket_timeout=0.3, retries=0, operation_timeout=2.0)
    finally:
        await adapter.close()
