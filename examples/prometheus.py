"""Expose rediscache's OpenTelemetry metrics to Prometheus, with the OTel Prometheus exporter.

    pip install 'rediscache[otel]' opentelemetry-sdk opentelemetry-exporter-prometheus
    python examples/prometheus.py [REDIS_URL] [PORT] [KEY_PREFIX]

It serves http://127.0.0.1:PORT/metrics (default 9464, the exporter's usual port), makes some
traffic through an adapter and a CacheService, then reads its own /metrics page and prints the
rediscache lines: what Prometheus would scrape. In an application, the first block (the reader,
the provider, the HTTP server) is all there is to it; point a Prometheus scrape job at the port.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from datetime import timedelta

from opentelemetry import metrics as otel_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server

from rediscache import CacheService, RedisCacheAdapter


def expose(port: int) -> None:
    """Once, at start-up, before the adapters are built."""
    start_http_server(port, addr="127.0.0.1")
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


async def traffic(url: str, prefix: str) -> None:
    adapter = RedisCacheAdapter(url, key_prefix=prefix)
    service = CacheService(adapter, default_ttl=timedelta(minutes=5))
    try:
        for i in range(3):
            await service.get_or_set(f"user:{i}", lambda: {"name": "x"}, tags=["users"])  # 3 misses, 3 writes
        for i in range(3):
            await service.get(f"user:{i}")  # 3 hits
        await adapter.delete_by_tags(["users"])  # 3 invalidated
    finally:
        await adapter.close()


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://localhost:6379/0"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9464
    prefix = sys.argv[3] if len(sys.argv) > 3 else "promdemo"
    expose(port)
    asyncio.run(traffic(url, prefix))
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in page.splitlines():
        if line.startswith("rediscache_") and f'rediscache_prefix="{prefix}"' in line and "_bucket" not in line:
            print(line)


if __name__ == "__main__":
    main()
