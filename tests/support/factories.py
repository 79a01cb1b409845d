"""Types shared by fixtures and the tests that use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rediscache import RedisCacheAdapter
from support.faults import FaultProxy
from support.redis_servers import RedisServer

# make_adapter(url, **options) -> a RedisCacheAdapter closed after the test
MakeAdapter = Callable[..., Awaitable[RedisCacheAdapter]]


class MakeProxy:
    """``await make_proxy(server)``: a started FaultProxy in front of ``server`` (the fixture closes them)."""

    def __init__(self) -> None:
        self.proxies: list[FaultProxy] = []

    async def __call__(self, server: RedisServer) -> FaultProxy:
        proxy = FaultProxy(server.host, server.port)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy
