"""The ports the test servers listen on.

By default a server gets a port the kernel hands out as free. ``REDISCACHE_TEST_PORTS=LOW-HIGH``
(inclusive) confines every listening socket the fixtures open to that range: the servers, their
cluster bus ports and the test proxies. Several runs on one machine can then be given disjoint
ranges, and a firewall or a port allocation policy can be respected.

Either way, another process may take a port between this check and the server binding it: callers
retry with another port when the bind fails.
"""

from __future__ import annotations

import os
import random
import re
import socket

PORTS_VARIABLE = "REDISCACHE_TEST_PORTS"
LOCALHOST = "127.0.0.1"
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_ATTEMPTS = 200


class PortRangeError(ValueError):
    """``REDISCACHE_TEST_PORTS`` is malformed, or has no free port left."""


def port_range() -> range | None:
    """The range of ``REDISCACHE_TEST_PORTS``, or ``None`` when it is unset or empty."""
    text = os.environ.get(PORTS_VARIABLE, "")
    if not text.strip():
        return None
    match = _RANGE.match(text)
    if match is None:
        raise PortRangeError(f"{PORTS_VARIABLE}={text!r}: expected LOW-HIGH, for example 20000-20999")
    low, high = int(match[1]), int(match[2])
    if not 1024 <= low <= high <= 65535:
        raise PortRangeError(f"{PORTS_VARIABLE}={text!r}: need 1024 <= LOW <= HIGH <= 65535")
    return range(low, high + 1)


def in_allowed_range(port: int) -> bool:
    allowed = port_range()
    return allowed is None or port in allowed


def free_port(exclude: frozenset[int] = frozenset()) -> int:
    """A port free right now: from ``REDISCACHE_TEST_PORTS`` when set, else one the kernel picks."""
    allowed = port_range()
    if allowed is None:
        for _ in range(_ATTEMPTS):
            port = _bind_and_release(0)
            if port not in exclude:
                return port
        raise PortRangeError("the kernel kept handing out excluded ports")
    candidates = [port for port in allowed if port not in exclude]
    random.shuffle(candidates)  # parallel runs sharing a range rarely race for the same port
    for port in candidates[:_ATTEMPTS]:
        if is_free(port):
            return port
    raise PortRangeError(f"no free port in {PORTS_VARIABLE}={allowed.start}-{allowed.stop - 1}")


def free_ports(count: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """``count`` distinct free ports."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_port(exclude | frozenset(ports)))
    return ports


def is_free(port: int) -> bool:
    try:
        _bind_and_release(port)
    except OSError:
        return False
    return True


def _bind_and_release(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, port))
        return int(sock.getsockname()[1])


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (Linux: read from ``/proc``); empty elsewhere."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


__all__ = [
    "LOCALHOST",
    "PORTS_VARIABLE",
    "PortRangeError",
    "free_port",
    "free_ports",
    "in_allowed_range",
    "is_free",
    "listening_ports",
    "port_range",
]
