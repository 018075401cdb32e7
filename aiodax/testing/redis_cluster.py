"""A private Redis Cluster on 127.0.0.1: three masters and a replica of each.

:class:`RedisCluster` starts six ``redis-server`` processes (:class:`RedisServer`,
cluster mode, a one-second node timeout) and joins them with
``redis-cli --cluster create``::

    with RedisCluster() as cluster:
        cache = aiodax.Cache(redis=aiodax.RedisTier(cluster.url, cluster=True))
        ...
        cluster.fail_over("aiodax:v1:{ns}:bus")   # SIGKILL the key's master

It needs ``redis-server`` and ``redis-cli`` on ``PATH`` (``ServerUnavailable``
otherwise) and never touches another Redis: every node has its own free ports and
temporary directory.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from types import TracebackType
from typing import Self

from aiodax.testing.redis_server import RedisServer, _free_port
from aiodax.testing.servers import HOST, ServerUnavailable

__all__ = ["RedisCluster"]

_MASTERS = 3
_NODE_TIMEOUT_MS = 1000


class RedisCluster:
    """Three masters with a replica each, on loopback; see the module docstring."""

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self._startup_timeout = startup_timeout
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """A URL of one live master: what a cluster client starts from."""
        for node in self.nodes:
            if node.running and self._role(node) == "master":
                return node.url
        raise RuntimeError("no master of the RedisCluster is running")

    def start(self) -> Self:
        cli = shutil.which("redis-cli")
        if cli is None or shutil.which("redis-server") is None:
            raise ServerUnavailable("redis-server and redis-cli are needed for a RedisCluster")
        for _ in range(2 * _MASTERS):
            node = RedisServer(
                args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(_NODE_TIMEOUT_MS),
                    "--cluster-port",
                    str(_free_port()),
                    # A replica that never synced cannot take over: sync at once.
                    "--repl-diskless-sync-delay",
                    "0",
                ]
            )
            self.nodes.append(node.start())
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=self._startup_timeout,
        )
        self.wait_until_healthy()
        return self

    def wait_until_healthy(self) -> None:
        """Wait until every live node says the cluster is ok and every replica has
        synced with its master (after a start or a failover)."""
        deadline = time.monotonic() + self._startup_timeout
        while True:
            live = [node for node in self.nodes if node.running]
            states = [self._cli(node, "CLUSTER", "INFO") for node in live]
            synced = all(
                "master_link_status:up" in self._cli(node, "INFO", "replication")
                for node in live
                if self._role(node) == "slave"
            )
            if synced and all("cluster_state:ok" in state for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the RedisCluster did not become healthy: {states}")
            time.sleep(0.1)

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        slot = int(self._cli(self.nodes[0], "CLUSTER", "KEYSLOT", key))
        for node in self.nodes:
            if not node.running or self._role(node) != "master":
                continue
            for line in self._cli(node, "CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for span in fields[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return node
        raise RuntimeError(f"no live master serves slot {slot}")

    def fail_over(self, key: str) -> RedisServer:
        """SIGKILL the master of ``key``'s slot; returns once its replica took over."""
        master = self.master_of(key)
        master.kill()
        deadline = time.monotonic() + self._startup_timeout
        while True:
            try:
                if self.master_of(key) is not master:
                    break
            except RuntimeError:
                pass  # no master for the slot yet: the replica is being promoted
            if time.monotonic() > deadline:
                raise RuntimeError("no replica took over the killed master's slots")
            time.sleep(0.1)
        self.wait_until_healthy()
        return master

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _role(self, node: RedisServer) -> str:
        info = self._cli(node, "ROLE")
        return info.splitlines()[0] if info else ""

    @staticmethod
    def _cli(node: RedisServer, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(node.port), *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return done.stdout.strip()
