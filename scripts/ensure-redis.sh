#!/usr/bin/env bash
# Make sure the tests (or the demo) can get a Redis server: REDIS_URL, a local redis-server binary
# (the test fixtures start throwaway servers from it) or a Docker engine (testcontainers).
# On a fresh Debian/Ubuntu machine where we are root, install redis-server with apt-get.
# With --optional (the demo), a missing Redis is fine: the demo falls back to the memory backend.
set -euo pipefail
optional=false
[ "${1:-}" = "--optional" ] && optional=true

# The TLS recipe's tests make their certificates with openssl (present on most machines).
if ! $optional && ! command -v openssl >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "openssl not found: installing it with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >&2 || true
fi

if [ -n "${REDIS_URL:-}" ] || command -v redis-server >/dev/null 2>&1; then exit 0; fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2; then
    exit 0
  fi
fi
$optional && exit 0
cat >&2 <<'MSG'
No Redis available. Any one of these works:
  - install redis-server (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)
  - set REDIS_URL (and REDIS_CLUSTER_URL for the cluster tests) to servers you own
  - start a Docker engine (the tests then use testcontainers), or `docker compose up -d`
MSG
exit 1
