"""The connection settings of issue 9 the network tests use, and the slack their time bounds allow."""

from __future__ import annotations

from typing import Any

# The documented defaults (/tmp/api-issue9.md, docs/contract.md "Redis"). The tests pass them
# explicitly, so a change of default does not silently change what they test; the frozen-server
# tests pass nothing, to check that the defaults are these.
SOCKET_TIMEOUT = 0.5  # one command attempt
CONNECT_TIMEOUT = 1.5  # a new connection: TCP + handshake; not charged to the call
OPERATION_TIMEOUT = 1.0  # one call: waiting for a connection + attempts + retries
RETRIES = 1
MAX_CONNECTIONS = 50

TIMEOUTS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT,
    "connect_timeout": CONNECT_TIMEOUT,
    "operation_timeout": OPERATION_TIMEOUT,
    "retries": RETRIES,
}

# Added to a promised bound: the watchdog's tick, the proxy running in the test's own event loop,
# and a loaded 2-core machine. Generous, so a pass means "bounded as promised", not "fast".
SLACK = 0.75

# Outer guard around a call expected to fail on its own: a hang shows as asyncio's TimeoutError
# (a test failure), never as a stuck run.
HANG_GUARD = 15.0
