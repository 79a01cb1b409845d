"""``doctor`` on servers configured the ways it warns about: a server of this test's own,
reconfigured with CONFIG SET / ACL SETUSER."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter

from .conftest import RunCli


@pytest.fixture
async def admin(private_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(private_server.url)
    yield client
    await client.aclose()


def _findings(report: dict[str, object]) -> dict[str, dict[str, str]]:
    return {finding["check"]: finding for finding in report["findings"]}  # type: ignore[attr-defined, index]


async def test_doctor_reports_allkeys_lru_as_a_notice_and_exits_0(
    cli: RunCli, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str
) -> None:
    await admin.config_set("maxmemory", "100mb")
    await admin.config_set("maxmemory-policy", "allkeys-lru")

    result = await cli("doctor", "--json", url=private_server.url, prefix=key_prefix)
    strict = await cli("doctor", "--strict", url=private_server.url, prefix=key_prefix)

    finding = _findings(result.json())["maxmemory"]
    assert result.code == 0  # safe for correctness: a hit-rate loss, documented as a notice
    assert finding["level"] == "notice"
    assert "allkeys-lru" in finding["detail"] and "misses" in finding["detail"]
    assert finding["fix"]
    assert strict.code == 1  # --strict: notices count


async def test_doctor_on_an_under_privileged_user_exits_1_with_the_fix(
    cli: RunCli, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str
) -> None:
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all", "-evalsha", "-zrem")
    parts = urlsplit(private_server.url)
    url = parts._replace(netloc=f"app:secret@{parts.hostname}:{parts.port}").geturl()

    result = await cli("doctor", "--json", url=url, prefix=key_prefix)

    acl = _findings(result.json())["acl"]
    assert result.code == 1
    assert acl["level"] == "problem"
    assert "evalsha" in acl["detail"] and "zrem" in acl["detail"]
    assert acl["fix"].startswith("ACL SETUSER app") and "+evalsha" in acl["fix"]


async def test_doctor_on_a_user_limited_to_other_keys_exits_1(
    cli: RunCli, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str
) -> None:
    await admin.execute_command("ACL", "SETUSER", "other", "on", ">secret", "~elsewhere:*", "&*", "+@all")
    parts = urlsplit(private_server.url)
    url = parts._replace(netloc=f"other:secret@{parts.hostname}:{parts.port}").geturl()

    result = await cli("doctor", url=url, prefix=key_prefix)

    assert result.code == 1
    assert "ACL SETUSER other ~" in result.out


@pytest.mark.cluster
async def test_doctor_and_ls_on_a_cluster(
    cli: RunCli, redis_cluster: object, cluster_client: object, key_prefix: str
) -> None:
    url = redis_cluster.url  # type: ignore[attr-defined]
    adapter = RedisCacheAdapter(url, key_prefix=key_prefix, cluster=True)
    try:
        for i in range(40):
            await adapter.set(CacheKey(key=f"k{i}", tags=["even" if i % 2 == 0 else "odd"]), i)
    finally:
        await adapter.close()

    doctor = await cli("doctor", "--cluster", "--json", url=url, prefix=key_prefix)
    listed = await cli("ls", "--cluster", "--tag", "even", url=url, prefix=key_prefix)
    fsck = await cli("fsck", "--cluster", url=url, prefix=key_prefix)

    findings = _findings(doctor.json())
    assert doctor.code == 0, doctor.out
    assert findings["cluster"]["level"] == "ok"
    assert sum(doctor.json()["facts"]["shard_spread"].values()) == 16
    assert sorted(listed.out.split()) == sorted(f"k{i}" for i in range(0, 40, 2))
    assert fsck.code == 0, fsck.out
