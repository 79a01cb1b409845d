"""docs/recipes/tls.md, run: its block and its bullets against a throwaway TLS-only redis-server
that demands client certificates (mutual TLS), with a CA and certificates made by the ``openssl``
CLI for this module.

Not skipped when ``openssl`` or a TLS-enabled ``redis-server`` is missing: the tests fail and say
so (Debian's and the redis:7 image's servers are built with TLS; CI has both).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from support.redis_servers import (
    RedisServer,
    RedisUnavailableError,
    require_binary,
    start_local_process,
    throwaway_processes,
)

from rediscache import CacheConnectionError, CacheKey, HybridCacheAdapter, RedisCacheAdapter

from ._recipe import marked_block, read_until_in_l1, run_block, substituted

PAGE = "recipes/tls.md"
# The server's certificate names it by host name only, like most: the recipe reaches it by that name
# (the name check passes), and 127.0.0.1 is the recipe's "server reached by IP" for ssl_check_hostname.
SERVER_NAMES = "DNS:localhost"

# The extensions Python's strict verification (VERIFY_X509_STRICT, on by default since 3.13) wants.
# A config of our own also keeps the distribution's openssl.cnf out of it.
OPENSSL_CONFIG = f"""
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {SERVER_NAMES}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
# EC keys: generating them takes milliseconds where RSA takes up to a second.
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the server has


def _openssl(workdir: Path, *args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise pytest.fail.Exception(
            "the TLS recipe's tests need the `openssl` CLI to make their certificates "
            "(e.g. `sudo apt-get install openssl`)",
            pytrace=False,
        )
    result = subprocess.run([openssl, *args], cwd=workdir, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


def _make_ca(workdir: Path, name: str) -> None:
    _openssl(workdir, "req", "-x509", "-config", "openssl.cnf", "-extensions", "ca", *NEW_KEY,
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=test {name}")  # fmt: skip


def _make_signed(workdir: Path, name: str, extensions: str, serial: int) -> None:
    _openssl(workdir, "req", "-new", "-config", "openssl.cnf", *NEW_KEY,
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
    _openssl(workdir, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", str(serial), "-days", "2", "-extfile", "openssl.cnf", "-extensions", extensions,
             "-out", f"{name}.pem")  # fmt: skip


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    workdir = tmp_path_factory.mktemp("tls")
    (workdir / "openssl.cnf").write_text(OPENSSL_CONFIG)
    _make_ca(workdir, "ca")
    _make_ca(workdir, "other-ca")
    _make_signed(workdir, "server", "server", 1)
    _make_signed(workdir, "client", "client", 2)
    return Certificates(
        ca=workdir / "ca.pem",
        server_cert=workdir / "server.pem",
        server_key=workdir / "server.key",
        client_cert=workdir / "client.pem",
        client_key=workdir / "client.key",
        other_ca=workdir / "other-ca.pem",
    )


@pytest.fixture(scope="module")
def tls_server(certificates: Certificates) -> Iterator[RedisServer]:
    """A redis-server that speaks TLS only (``--port 0``) and demands a client certificate."""
    try:
        binary = require_binary("redis")
    except RedisUnavailableError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
    probe = ssl.create_default_context(cafile=str(certificates.ca))
    probe.check_hostname = False  # it knocks at 127.0.0.1, which the certificate does not name
    probe.load_cert_chain(str(certificates.client_cert), str(certificates.client_key))

    def argv(port: int, workdir: Path) -> list[str]:
        return [
            "--port", "0",
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(workdir),
            "--save", "",
            "--appendonly", "no",
            "--tls-cert-file", str(certificates.server_cert),
            "--tls-key-file", str(certificates.server_key),
            "--tls-ca-cert-file", str(certificates.ca),
            "--tls-auth-clients", "yes",
        ]  # fmt: skip

    with throwaway_processes("tls") as (workdir, servers):
        servers.append(start_local_process(workdir, argv, binary=binary, scheme="rediss", tls=probe))
        yield servers[0]


def _recipe(server: RedisServer, certificates: Certificates, key_prefix: str) -> str:
    return substituted(
        marked_block(PAGE),
        {
            "cache.internal:6380": f"localhost:{server.port}",
            "/etc/ssl/redis/ca.pem": str(certificates.ca),
            "/etc/ssl/redis/client.pem": str(certificates.client_cert),
            "/etc/ssl/redis/client.key": str(certificates.client_key),
            'key_prefix="myapp"': f'key_prefix="{key_prefix}"',
        },
    )


async def _round_trip(cache: Any, key_prefix: str) -> None:
    """set, get, delete_by_tags and get again: a write, a read and an invalidation script."""
    key = CacheKey(key=f"{key_prefix}:user:1", namespace="users", tags=["user:1"])
    await cache.set(key, {"name": "Ada"})
    entry = await cache.get(key)
    assert entry is not None and entry.value == {"name": "Ada"}
    assert await cache.delete_by_tags(["user:1"]) == 1
    assert await cache.get(key) is None


NO_CLIENT_CERTIFICATE = "peer did not return a certificate"  # redis-server's log line (OpenSSL's reason)


def _log(server: RedisServer) -> str:
    assert server.workdir is not None
    return (server.workdir / "redis.log").read_text(errors="replace")


@pytest.fixture
async def recipe_cache(tls_server: RedisServer, certificates: Certificates, key_prefix: str) -> AsyncIterator[Any]:
    cache = run_block(_recipe(tls_server, certificates, key_prefix))["cache"]
    assert isinstance(cache, RedisCacheAdapter)
    try:
        yield cache
    finally:
        await cache.close()


async def test_the_recipe_block_works_over_mutual_tls(recipe_cache: RedisCacheAdapter, key_prefix: str) -> None:
    await _round_trip(recipe_cache, key_prefix)


async def test_the_recipe_url_without_the_client_certificate_is_refused(
    tls_server: RedisServer, certificates: Certificates, key_prefix: str
) -> None:
    code = _recipe(tls_server, certificates, key_prefix)
    # Drop the two lines of the client's certificate and key: the server's own stays verified.
    code = substituted(code, {f'"&ssl_certfile={certificates.client_cert}"': '""'})
    code = substituted(code, {f'"&ssl_keyfile={certificates.client_key}"': '""'})
    cache = run_block(code)["cache"]
    refusals = _log(tls_server).count(NO_CLIENT_CERTIFICATE)
    try:
        with pytest.raises(CacheConnectionError):
            await cache.set(CacheKey(key=f"{key_prefix}:k"), 1)
    finally:
        await cache.close()
    # The client sees only a reset connection; the server says why it closed it.
    assert _log(tls_server).count(NO_CLIENT_CERTIFICATE) > refusals


CLIENT_CERTIFICATE = "ssl_certfile={client_cert}&ssl_keyfile={client_key}"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "rediss://localhost:{port}/0?ssl_ca_certs={other_ca}&" + CLIENT_CERTIFICATE,
            "CERTIFICATE_VERIFY_FAILED",
            id="untrusted-ca",
        ),
        pytest.param(
            "rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&" + CLIENT_CERTIFICATE,
            "IP address mismatch",
            id="name-not-in-certificate",
        ),
        pytest.param("redis://localhost:{port}/0", None, id="plain-tcp"),
    ],
)
async def test_a_server_is_verified_and_speaks_only_tls(
    tls_server: RedisServer, certificates: Certificates, key_prefix: str, url: str, reason: str | None
) -> None:
    """``ssl_cert_reqs=required`` is the default: a server whose certificate ``ssl_ca_certs`` did not
    sign, or which does not name the host, is refused. And the server has no plain port: the
    recipe's traffic is TLS."""
    url = url.format(port=tls_server.port, **vars(certificates))
    cache = RedisCacheAdapter(url, key_prefix=key_prefix)
    try:
        with pytest.raises(CacheConnectionError, match=reason):
            await cache.set(CacheKey(key=f"{key_prefix}:k"), 1)
    finally:
        await cache.close()


async def test_ssl_check_hostname_false_relaxes_only_the_name_check(
    tls_server: RedisServer, certificates: Certificates, key_prefix: str
) -> None:
    client_certificate = CLIENT_CERTIFICATE.format(**vars(certificates))
    relaxed = f"ssl_ca_certs={certificates.ca}&ssl_check_hostname=false&{client_certificate}"
    by_ip = RedisCacheAdapter(f"rediss://127.0.0.1:{tls_server.port}/0?{relaxed}", key_prefix=key_prefix)
    # The certificate is still verified: one from another CA is refused.
    untrusted = RedisCacheAdapter(
        f"rediss://127.0.0.1:{tls_server.port}/0?{relaxed.replace(str(certificates.ca), str(certificates.other_ca))}",
        key_prefix=key_prefix,
    )
    try:
        await _round_trip(by_ip, key_prefix)
        with pytest.raises(CacheConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.set(CacheKey(key=f"{key_prefix}:k"), 1)
    finally:
        await by_ip.close()
        await untrusted.close()


async def test_a_ready_client_brings_its_tls_settings(
    tls_server: RedisServer, certificates: Certificates, key_prefix: str
) -> None:
    """The bullet's form: ``RedisCacheAdapter(client=redis.asyncio.Redis(host=..., ssl=True, ssl_ca_certs=...))``."""
    client = redis.asyncio.Redis(
        host="localhost",
        port=tls_server.port,
        ssl=True,
        ssl_ca_certs=str(certificates.ca),
        ssl_certfile=str(certificates.client_cert),
        ssl_keyfile=str(certificates.client_key),
    )
    cache = RedisCacheAdapter(client=client, key_prefix=key_prefix)
    try:
        await _round_trip(cache, key_prefix)
    finally:
        await cache.close()
        await client.aclose()


async def test_the_hybrids_subscriber_uses_the_same_tls_settings(
    tls_server: RedisServer, certificates: Certificates, key_prefix: str
) -> None:
    """The hybrid subscribes over TLS with the recipe's settings, and hears another instance's
    invalidation: its L1 copy is dropped."""
    code = _recipe(tls_server, certificates, key_prefix)
    writer = HybridCacheAdapter.from_redis(run_block(code)["cache"])
    reader = HybridCacheAdapter.from_redis(run_block(code)["cache"])
    key = CacheKey(key=f"{key_prefix}:user:2", tags=["user:2"])
    try:
        assert await reader.wait_until_coherent(timeout=5.0)
        await writer.set(key, "v1")
        await read_until_in_l1(reader, key, "v1")
        assert await writer.delete_by_tags(["user:2"]) == 1
        deadline = time.monotonic() + 5.0
        while await reader.get(key) is not None:
            assert time.monotonic() < deadline, "the reader's L1 still serves an entry deleted 5 s ago"
            await asyncio.sleep(0.01)
    finally:
        await writer.close()
        await reader.close()
