"""Topology changes on a private Redis Cluster with replicas, for the tests in ``tests/topology``.

Every operation checks that it did what it claims before it returns (a failover really promoted the
replica, a moved slot really left its old master, a lagging replica really missed the writes), so a
failing topology test points at the adapter, not at the harness. Failures of the harness itself are
:class:`TopologyError` with what each node said.

Everything here is synchronous (plain redis-py clients, ``time.sleep`` polling): a test calls it with
``asyncio.to_thread`` so that the load it runs meanwhile keeps going on the event loop.

Only servers of a cluster this session started (``RedisCluster.owned`` with local processes) are
signalled, reconfigured or flushed, and only by their own PID.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from support.redis_servers import CLUSTER_SLOTS, RedisCluster, RedisServer, wait_for_replicas

__all__ = [
    "ClusterOps",
    "Moved",
    "NodeLine",
    "Promotion",
    "TopologyError",
    "parse_cluster_nodes",
    "slot_of",
]

SETTLE_TIMEOUT = 20.0
POLL = 0.02
ADMIN_TIMEOUT = 1.0
MIGRATE_TIMEOUT_MS = 5000
# A replica whose master refuses its credentials stays disconnected: it retries once a second and fails.
NO_SUCH_USER = "rediscache-tests-no-such-user"

_T = TypeVar("_T")


class TopologyError(AssertionError):
    """The cluster did not do what a harness operation expected (not the adapter's fault)."""


def slot_of(key: bytes | str) -> int:
    """The cluster slot of a key (for a shard: ``slot_of(shard.ledger)``)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


@dataclass(frozen=True)
class NodeLine:
    """One line of ``CLUSTER NODES``: what one node believes about one node."""

    node_id: str
    address: str  # host:port
    flags: frozenset[str]
    master_id: str | None
    link: str
    slots: tuple[tuple[int, int], ...]  # owned ranges; migrating/importing markers are in ``moving``
    moving: tuple[str, ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?"})

    def owns(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeLine]:
    lines = []
    for raw in text.strip().splitlines():
        fields = raw.split()
        node_id, address, flags, master = fields[0], fields[1], fields[2], fields[3]
        slots: list[tuple[int, int]] = []
        moving: list[str] = []
        for item in fields[8:]:
            if item.startswith("["):
                moving.append(item)
            elif "-" in item:
                low, high = item.split("-")
                slots.append((int(low), int(high)))
            else:
                slots.append((int(item), int(item)))
        lines.append(
            NodeLine(
                node_id=node_id,
                address=address.split("@")[0],
                flags=frozenset(flags.split(",")),
                master_id=None if master == "-" else master,
                link=fields[7],
                slots=tuple(slots),
                moving=tuple(moving),
            )
        )
    return lines


@dataclass(frozen=True)
class Promotion:
    """A replica that became master in place of ``old_master``, with monotonic timestamps."""

    old_master: RedisServer
    new_master: RedisServer
    started: float  # just before the failover command or the signal
    settled: float  # every live node agreed on the new master and reported cluster_state:ok


@dataclass(frozen=True)
class Moved:
    slot: int
    source: RedisServer
    target: RedisServer
    keys: int
    batches: int
    started: float
    finished: float  # every master had been told the new owner, and all nodes agreed on it


class ClusterOps:
    """Failovers, crashes, freezes, reshards and replication lag on a cluster this session started."""

    def __init__(self, cluster: RedisCluster) -> None:
        if not cluster.owned or not cluster.replicas:
            raise ValueError("topology operations need a private cluster with replicas (local_cluster_with_replicas)")
        self.cluster = cluster
        self.servers: list[RedisServer] = [*cluster.nodes, *cluster.replicas]
        self.node_timeout = cluster.node_timeout_ms / 1000
        self.masters_expected = len(cluster.nodes)
        self._ids: dict[int, str] = {}
        self._frozen: set[int] = set()  # ports of SIGSTOPped servers
        self._reconfigured: dict[int, dict[str, str]] = {}  # port -> settings to put back

    # -- looking ------------------------------------------------------------------------------------

    def admin(self, server: RedisServer, *, decode: bool = True, timeout: float = ADMIN_TIMEOUT) -> redis.Redis:
        """A plain client of one node, without retries (the harness must see failures as they are)."""
        return redis.Redis(
            host=server.host,
            port=server.port,
            decode_responses=decode,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def call(self, server: RedisServer, *args: Any, decode: bool = True, timeout: float = ADMIN_TIMEOUT) -> Any:
        client = self.admin(server, decode=decode, timeout=timeout)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def live(self) -> list[RedisServer]:
        """Servers whose process runs and is not frozen: the ones that can answer."""
        return [s for s in self.servers if s.is_running() and s.port not in self._frozen]

    def node_id(self, server: RedisServer) -> str:
        # A node keeps its id across restarts (nodes.conf), so it is asked once.
        if server.port not in self._ids:
            self._ids[server.port] = str(self.call(server, "CLUSTER", "MYID"))
        return self._ids[server.port]

    def server_of(self, node_id: str) -> RedisServer:
        for server in self.servers:
            if self.node_id(server) == node_id:
                return server
        raise TopologyError(f"no server of this cluster has node id {node_id}")

    def view(self, server: RedisServer) -> list[NodeLine]:
        return parse_cluster_nodes(self.call(server, "CLUSTER", "NODES"))

    def info(self, server: RedisServer, section: str) -> dict[str, Any]:
        client = self.admin(server)
        try:
            return dict(client.info(section))
        finally:
            client.close()

    def cluster_info(self, server: RedisServer) -> dict[str, str]:
        text = str(self.call(server, "CLUSTER", "INFO"))
        return dict(line.split(":", 1) for line in text.strip().splitlines() if ":" in line)

    def role(self, server: RedisServer) -> str:
        return str(self.info(server, "replication")["role"])

    def slot_owner(self, slot: int) -> RedisServer:
        """The master serving ``slot``, as every live node agrees (TopologyError when they do not)."""
        owners: dict[str, str | None] = {}
        for server in self.live():
            owner = [line.node_id for line in self.view(server) if line.is_master and line.owns(slot)]
            owners[server.address] = owner[0] if len(owner) == 1 else None
        if len(set(owners.values())) != 1 or None in owners.values():
            raise TopologyError(f"nodes disagree on the owner of slot {slot}: {owners}")
        return self.server_of(next(iter(owners.values())))  # type: ignore[arg-type]

    def replica_of(self, master: RedisServer) -> RedisServer:
        """The one live replica of ``master`` (as the master itself sees it)."""
        master_id = self.node_id(master)
        lines = [
            line
            for line in self.view(master)
            if line.master_id == master_id and "slave" in line.flags and not line.failing
        ]
        if len(lines) != 1:
            raise TopologyError(f"{master.address} has {len(lines)} replicas, expected 1: {lines}")
        return self.server_of(lines[0].node_id)

    def masters(self) -> list[RedisServer]:
        """The masters that serve slots, as the first live node sees them."""
        lines = self.view(self.live()[0])
        return [self.server_of(line.node_id) for line in lines if line.is_master and line.slots and not line.failing]

    def keys_present(self, server: RedisServer, keys: Iterable[bytes]) -> int:
        """How many of ``keys`` (one slot) ``server`` holds; works on a replica too (READONLY)."""
        keys = list(keys)
        client = self.admin(server, decode=False)
        try:
            client.execute_command("READONLY")
            return sum(int(client.execute_command("EXISTS", *keys[i : i + 500])) for i in range(0, len(keys), 500))
        finally:
            client.close()

    def keys_in_slot(self, server: RedisServer, slot: int) -> int:
        """How many keys of ``slot`` ``server`` holds (a replica answers for its own copy)."""
        return int(self.call(server, "CLUSTER", "COUNTKEYSINSLOT", slot))

    def replication_offset(self, server: RedisServer) -> int:
        info = self.info(server, "replication")
        return int(info["slave_repl_offset"] if info["role"] == "slave" else info["master_repl_offset"])

    # -- waiting ------------------------------------------------------------------------------------

    def wait_until(self, what: str, check: Callable[[], _T | None], timeout: float = SETTLE_TIMEOUT) -> _T:
        """Poll ``check`` until it returns something other than None; errors of a node count as 'not yet'."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                result = check()
            except (redis.RedisError, OSError, TopologyError) as exc:
                last = exc
            else:
                if result is not None:
                    return result
            time.sleep(POLL)
        raise TopologyError(f"{what}: not reached within {timeout}s (last error: {last!r}); {self.describe()}")

    def settled_on(self, slot: int, master: RedisServer) -> bool | None:
        """True once every live node reports cluster_state:ok and names ``master`` for ``slot``."""
        if self.role(master) != "master":
            return None
        for server in self.live():
            if self.cluster_info(server).get("cluster_state") != "ok":
                return None
        return True if self.slot_owner(slot) is master else None

    def describe(self) -> str:
        """What every server says about the cluster (for error messages)."""
        parts = []
        for server in self.servers:
            if not server.is_running():
                parts.append(f"{server.address}: not running")
            elif server.port in self._frozen:
                parts.append(f"{server.address}: frozen (SIGSTOP)")
            else:
                try:
                    state = self.cluster_info(server).get("cluster_state")
                    nodes = self.call(server, "CLUSTER", "NODES")
                    repl = self.info(server, "replication")
                    link = repl.get("master_link_status", "-")
                    parts.append(f"{server.address}: state={state} role={repl['role']} link={link}\n{nodes}")
                except (redis.RedisError, OSError) as exc:
                    parts.append(f"{server.address}: {exc!r}")
        return "\n".join(parts)

    # -- failovers ----------------------------------------------------------------------------------

    def failover(self, master: RedisServer, option: str | None = None) -> Promotion:
        """``CLUSTER FAILOVER [FORCE|TAKEOVER]`` on the replica of ``master``; returns once settled.

        Settled: the replica is master, every live node agrees it serves the master's slots and
        reports cluster_state:ok, and the old master (when it runs) is a replica of it.
        """
        replica = self.replica_of(master)
        slot = self._first_slot_of(master)
        started = time.monotonic()
        self.call(replica, "CLUSTER", "FAILOVER", *([option] if option else []))
        self.wait_until(f"failover of {master.address} to {replica.address}", lambda: self.settled_on(slot, replica))
        settled = time.monotonic()
        if master in self.live():
            self.wait_until(
                f"{master.address} following {replica.address}",
                lambda: True if self._follows(master, replica) else None,
            )
        return Promotion(old_master=master, new_master=replica, started=started, settled=settled)

    def kill_master(self, master: RedisServer) -> Promotion:
        """SIGKILL ``master``'s process; returns once its replica was promoted and the cluster is ok again."""
        replica = self.replica_of(master)
        slot = self._first_slot_of(master)
        started = time.monotonic()
        master.kill()  # SIGKILL to its PID, waits for the process to be gone
        self.wait_until(
            f"promotion of {replica.address} after {master.address} was killed",
            lambda: self.settled_on(slot, replica),
            timeout=SETTLE_TIMEOUT + self.node_timeout * 4,
        )
        return Promotion(old_master=master, new_master=replica, started=started, settled=time.monotonic())

    def _follows(self, replica: RedisServer, master: RedisServer) -> bool:
        info = self.info(replica, "replication")
        return (
            info["role"] == "slave"
            and int(info["master_port"]) == master.port
            and info.get("master_link_status") == "up"
        )

    def _first_slot_of(self, master: RedisServer) -> int:
        line = next(line for line in self.view(master) if "myself" in line.flags)
        if not line.is_master or not line.slots:
            raise TopologyError(f"{master.address} is not a master serving slots: {line}")
        return line.slots[0][0]

    # -- freezing -----------------------------------------------------------------------------------

    def freeze(self, server: RedisServer) -> None:
        """SIGSTOP the process: it keeps its sockets (connections hang instead of being refused)."""
        if not server.is_running() or server.process is None:
            raise TopologyError(f"{server.address} is not running")
        os.kill(server.process.pid, signal.SIGSTOP)
        self._frozen.add(server.port)

    def thaw(self, server: RedisServer) -> None:
        if server.port in self._frozen and server.process is not None and server.is_running():
            os.kill(server.process.pid, signal.SIGCONT)
        self._frozen.discard(server.port)

    def forbid_automatic_failover(self, replica: RedisServer) -> None:
        """The replica no longer takes over a master it believes failed (until :meth:`restore`)."""
        self._set_config(replica, "cluster-replica-no-failover", "yes")

    # -- replication lag ----------------------------------------------------------------------------

    def cut_replication(self, replica: RedisServer) -> int:
        """Disconnect ``replica`` from its master and keep it disconnected; returns its offset then.

        The replica is told to authenticate to its master as a user the master does not have, then
        its replication connection is killed on the master: it retries every second and is refused,
        so from now on it receives nothing (unlike a SIGSTOPped replica, which would find the missed
        stream waiting in its socket buffer when resumed). It still runs, answers and takes part in
        the cluster, so it can be promoted with ``CLUSTER FAILOVER TAKEOVER``.
        """
        master = self.server_of(self._master_id_of(replica))
        self._set_config(replica, "masteruser", NO_SUCH_USER, reset="")
        self._set_config(replica, "masterauth", "wrong", reset="")
        self.call(master, "CLIENT", "KILL", "TYPE", "replica")
        self.wait_until(
            f"replication link of {replica.address} down",
            lambda: True if self.info(replica, "replication").get("master_link_status") == "down" else None,
        )
        offset = self.replication_offset(replica)
        # The master must no longer count it: WAIT on the master then sees no replica at all.
        self.wait_until(
            f"{master.address} without connected replicas",
            lambda: True if int(self.info(master, "replication")["connected_slaves"]) == 0 else None,
        )
        return offset

    def assert_still_cut(self, replica: RedisServer, offset: int) -> None:
        """The replica is still disconnected and has not moved past ``offset`` (it did not catch up)."""
        info = self.info(replica, "replication")
        now = int(info["slave_repl_offset"])
        if info.get("master_link_status") != "down" or now != offset:
            raise TopologyError(f"{replica.address} caught up: link {info.get('master_link_status')}, offset {now}")

    def _master_id_of(self, replica: RedisServer) -> str:
        line = next(line for line in self.view(replica) if "myself" in line.flags)
        if line.master_id is None or "slave" not in line.flags:
            raise TopologyError(f"{replica.address} is not a replica: {line}")
        return line.master_id

    # -- resharding ---------------------------------------------------------------------------------

    def move_slot(
        self,
        slot: int,
        target: RedisServer,
        *,
        batch: int = 10,
        pause: float = 0.02,
        last: Callable[[bytes], bool] | None = None,
    ) -> Moved:
        """Move ``slot`` to ``target`` as redis-cli's reshard does, slowly enough for load to hit it.

        IMPORTING on the target, MIGRATING on the source, ``MIGRATE ... KEYS`` of ``batch`` keys at a
        time with ``pause`` seconds in between (clients meanwhile get ASK and TRYAGAIN answers), then
        ``SETSLOT NODE`` on the target, the source and every other master. Keys for which ``last``
        is true move after all the others (a resharding tool may move a slot's keys in any order).
        Checks that the source kept no key of the slot and that every live node names the target.
        """
        source = self.slot_owner(slot)
        if source is target:
            raise TopologyError(f"slot {slot} is already on {target.address}")
        source_id, target_id = self.node_id(source), self.node_id(target)
        started = time.monotonic()
        self.call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self.call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = batches = 0
        deadline = started + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            present = self.call(source, "CLUSTER", "GETKEYSINSLOT", slot, 100_000, decode=False)
            if not present:
                break
            early = [key for key in present if last is None or not last(key)]
            keys = (early or present)[:batch]
            answer = self.call(
                source, "MIGRATE", target.host, target.port, "", 0, MIGRATE_TIMEOUT_MS, "KEYS", *keys, decode=False
            )
            if answer not in (b"OK", b"NOKEY"):
                raise TopologyError(f"MIGRATE of slot {slot} answered {answer!r}")
            moved += len(keys)
            batches += 1
            time.sleep(pause)
        else:
            raise TopologyError(f"slot {slot} still has keys on {source.address} after {SETTLE_TIMEOUT}s")
        # Target first (it stops asking for ASKING), then the source (it refuses if a key was left), then
        # the other masters, so that nobody points clients at a node that does not serve the slot.
        self.call(target, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.call(source, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for master in self.masters():
            if master is not source and master is not target:
                self.call(master, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        left = int(self.call(source, "CLUSTER", "COUNTKEYSINSLOT", slot))
        if left:
            raise TopologyError(f"{left} keys of slot {slot} stayed on {source.address}")
        self.wait_until(f"slot {slot} on {target.address}", lambda: self.settled_on(slot, target))
        self.wait_until(f"no migration marks left for slot {slot}", lambda: None if self._moving() else True)
        return Moved(slot, source, target, moved, batches, started, time.monotonic())

    def _moving(self) -> list[str]:
        return [mark for server in self.live() for line in self.view(server) for mark in line.moving]

    # -- putting things back ------------------------------------------------------------------------

    def restore(self) -> None:
        """Back to a healthy cluster: every process running and thawed, settings put back, every node
        ok and agreeing, every master with one replica that is linked and caught up."""
        for server in self.servers:
            if server.port in self._frozen:
                self.thaw(server)
        for server in self.servers:
            if not server.is_running():
                server.start()  # same port and nodes.conf: it rejoins, as a replica if it was failed over
        for port, settings in list(self._reconfigured.items()):
            server = next(s for s in self.servers if s.port == port)
            for name, value in settings.items():
                self.call(server, "CONFIG", "SET", name, value)
            del self._reconfigured[port]
        self.wait_until("a healthy cluster", self._healthy, timeout=SETTLE_TIMEOUT + self.node_timeout * 4)
        wait_for_replicas(self.servers, len(self.servers) - self.masters_expected)

    def flush(self) -> None:
        """Empty every master (this session's own servers only); replicas follow."""
        for master in self.masters():
            self.call(master, "FLUSHALL")

    def _healthy(self) -> bool | None:
        count = len(self.servers)
        masters: dict[str, int] = {}
        for server in self.servers:
            info = self.cluster_info(server)
            if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(count):
                return None
            if info.get("cluster_slots_assigned") != str(CLUSTER_SLOTS) or info.get("cluster_slots_ok") != str(
                CLUSTER_SLOTS
            ):
                return None
            lines = self.view(server)
            if any(line.failing or line.moving or "noaddr" in line.flags for line in lines):
                return None
            masters = {line.node_id: 0 for line in lines if line.is_master and line.slots}
            for line in lines:
                if line.master_id in masters:
                    masters[line.master_id] += 1
            if len(masters) != self.masters_expected or set(masters.values()) != {1}:
                return None
        for server in self.servers:
            if self.info(server, "replication").get("master_link_status", "up") != "up":
                return None
        return True

    def _set_config(self, server: RedisServer, name: str, value: str, reset: str | None = None) -> None:
        if reset is None:
            answer = self.call(server, "CONFIG", "GET", name)  # redis-py parses it into {name: value}
            reset = str(answer[name] if isinstance(answer, dict) else answer[1])
        self._reconfigured.setdefault(server.port, {}).setdefault(name, reset)
        self.call(server, "CONFIG", "SET", name, value)
