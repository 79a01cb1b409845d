"""Each subcommand end to end against a real server, run as a subprocess."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter

from .conftest import RunCli, invoke_cli, run_cli


async def _seed(adapter: RedisCacheAdapter) -> None:
    for i in range(3):
        await adapter.set(CacheKey(key=f"a{i}", namespace="users", tags=["team:a"]), {"i": i})
    await adapter.set(CacheKey(key="ab", tags=["team:ab"]), 1)  # a longer tag with the same start
    await adapter.set(CacheKey(key="both", tags=["team:a:b", "other"]), 2)
    await adapter.set(CacheKey(key="plain"), 3)


@pytest.fixture
async def seeded(make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any) -> RedisCacheAdapter:
    adapter = await make_adapter(redis_server.url)
    await _seed(adapter)
    return adapter


async def test_ls_tag_lists_exactly_the_keys_carrying_the_tag(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli("ls", "--tag", "team:a", url=redis_server.url, prefix=key_prefix)

    assert result.code == 0, result.err
    assert sorted(result.out.split()) == ["users:a0", "users:a1", "users:a2"]


async def test_ls_count_namespace_and_pattern(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    counted = await cli("ls", "--namespace", "users", "--count", url=redis_server.url, prefix=key_prefix)
    matched = await cli("ls", "--pattern", "*b*", "--json", url=redis_server.url, prefix=key_prefix)

    assert (counted.code, counted.out.strip()) == (0, "3")
    assert sorted(matched.json()["keys"]) == ["ab", "both"]


async def test_invalidate_tag_yes_removes_them_and_prints_the_count(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli("invalidate", "--tag", "team:a", "--yes", url=redis_server.url, prefix=key_prefix)

    assert result.code == 0, result.err
    assert "removed 3 entries" in result.out
    assert await seeded.get(CacheKey(key="a0", namespace="users")) is None
    assert await seeded.get(CacheKey(key="ab")) is not None  # tag team:ab is another tag


async def test_invalidate_asks_first_and_a_no_removes_nothing(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli("invalidate", "--namespace", "users", url=redis_server.url, prefix=key_prefix, stdin="n\n")

    assert result.code == 1
    assert "Remove about 3 entries" in result.err
    assert await seeded.get(CacheKey(key="a0", namespace="users")) is not None


async def test_inspect_shows_the_entry_metadata(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    found = await cli("inspect", "a1", "--namespace", "users", "--json", url=redis_server.url, prefix=key_prefix)
    absent = await cli("inspect", "nothing-here", url=redis_server.url, prefix=key_prefix)

    report = found.json()
    assert found.code == 0
    assert (report["namespace"], report["tags"], report["current"], report["in_key_index"]) == (
        "users",
        ["team:a"],
        True,
        True,
    )
    assert report["generation"] == report["shard_generation"] and report["payload_bytes"] > 0
    assert report["created_at"] and report["expires_at"] is None
    assert absent.code == 1


async def test_stats_show_the_shared_counters_per_shard(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    await seeded.get(CacheKey(key="plain"))
    await seeded.get(CacheKey(key="missing"))
    await seeded.flush()

    result = await cli("stats", "--json", url=redis_server.url, prefix=key_prefix)

    figures = result.json()
    assert result.code == 0
    assert (figures["stats"]["total_hits"], figures["stats"]["total_misses"]) == (1, 1)
    (shard,) = figures["shards"]
    assert (shard["entries"], shard["tag_members"], shard["namespace_members"]) == (6, 6, 3)
    assert shard["index_memory"] > 0 and shard["entry_memory"] > 0


async def test_maintain_unindexes_an_entry_deleted_behind_the_cache(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    shard = seeded.layout.shard_of(b"plain")
    await seeded.transport.command("test", shard.slot, b"DEL", shard.entry_key(b"plain"))

    result = await cli("maintain", "--json", url=redis_server.url, prefix=key_prefix)

    assert result.code == 0
    assert result.json() == {"expired_unindexed": 0, "vanished_unindexed": 1}


async def test_fsck_is_clean_on_a_healthy_cache(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli("fsck", url=redis_server.url, prefix=key_prefix)

    assert result.code == 0, result.out
    assert "clean" in result.out


async def _delete_member(adapter: RedisCacheAdapter, client: redis.asyncio.Redis) -> None:
    shard = adapter.layout.shard_of(b"users:a1")
    assert await client.zrem(shard.tags, b"6:team:ausers:a1") == 1  # the tag index member, by hand


async def test_fsck_reports_an_index_member_deleted_by_hand(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    await _delete_member(seeded, redis_client)

    result = await cli("fsck", "--json", url=redis_server.url, prefix=key_prefix)

    assert result.code == 1
    (violation,) = result.json()["violations"]
    assert (violation["kind"], violation["full_key"]) == ("index-member-missing", "users:a1")


async def test_fsck_repair_puts_the_member_back(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    await _delete_member(seeded, redis_client)

    repaired = await cli("fsck", "--repair", url=redis_server.url, prefix=key_prefix)
    listed = await cli("ls", "--tag", "team:a", url=redis_server.url, prefix=key_prefix)

    assert repaired.code == 0, repaired.out
    assert "users:a1" in listed.out.split()


async def test_fsck_reports_and_repairs_a_wrong_bytes_count(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    await redis_client.hset(seeded.layout.shards[0].stats, "bytes", 99999)

    found = await cli("fsck", "--json", url=redis_server.url, prefix=key_prefix)
    repaired = await cli("fsck", "--repair", "--json", url=redis_server.url, prefix=key_prefix)

    assert [v["kind"] for v in found.json()["violations"]] == ["bytes-mismatch"]
    assert repaired.code == 0 and repaired.json()["healthy"]
    assert (await seeded.get_stats()).memory_usage_bytes < 99999


async def test_fsck_reports_a_stray_tag_member(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    shard = seeded.layout.shards[0]
    await redis_client.zadd(shard.tags, {b"5:ghostplain": 0})  # "plain" carries no tag

    found = await cli("fsck", "--json", url=redis_server.url, prefix=key_prefix)
    repaired = await cli("fsck", "--repair", url=redis_server.url, prefix=key_prefix)

    assert [(v["kind"], v["full_key"]) for v in found.json()["violations"]] == [("stray-member", "plain")]
    assert repaired.code == 0
    assert await redis_client.zscore(shard.tags, b"5:ghostplain") is None


async def test_doctor_on_a_healthy_server_exits_0(
    cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli("doctor", "--json", url=redis_server.url, prefix=key_prefix)

    report = result.json()
    assert result.code == 0, result.out
    levels = {finding["check"]: finding["level"] for finding in report["findings"]}
    assert {"latency", "server", "maxmemory", "replicas", "acl", "scripts", "layout"} <= set(levels)
    assert "problem" not in levels.values()
    assert report["facts"]["layout"]["shards_with_data"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("ls",),  # none of --tag, --namespace, --pattern
        ("ls", "--tag", "a", "--pattern", "b"),  # two of them
        ("invalidate", "--yes"),
        ("no-such-command",),
        ("fsck", "--batch", "0"),
        ("stats", "--shards", "0"),
    ],
)
async def test_usage_errors_exit_2(args: tuple[str, ...], redis_server: RedisServer, key_prefix: str) -> None:
    result = await invoke_cli(*args, "--url", redis_server.url, "--prefix", key_prefix)

    assert result.code == 2, result


async def test_a_prefix_with_braces_is_a_usage_error(redis_server: RedisServer) -> None:
    result = await invoke_cli("stats", "--url", redis_server.url, "--prefix", "a{b}")

    assert result.code == 2
    assert "key_prefix" in result.err


async def test_an_unreachable_server_exits_1_with_the_reason() -> None:
    # As a subprocess: the exit status an operator's script sees, from the interpreter itself.
    result = await run_cli("stats", "--url", "redis://127.0.0.1:1/0")

    assert result.code == 1
    assert "127.0.0.1:1" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("doctor",),
        ("stats",),
        ("inspect", "plain"),
        ("ls", "--tag", "team:a"),
        ("ls", "--tag", "team:a", "--count"),
        ("invalidate", "--tag", "other", "--yes"),
        ("maintain",),
        ("fsck",),
    ],
)
async def test_json_output_parses(
    args: tuple[str, ...], cli: RunCli, seeded: RedisCacheAdapter, redis_server: RedisServer, key_prefix: str
) -> None:
    result = await cli(*args, "--json", url=redis_server.url, prefix=key_prefix)

    assert result.code == 0, result.err
    assert isinstance(result.json(), dict)
