"""Types shared by fixtures and the tests that use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rediscache import RedisCacheAdapter

# make_adapter(url, **options) -> a RedisCacheAdapter closed after the test
MakeAdapter = Callable[..., Awaitable[RedisCacheAdapter]]
