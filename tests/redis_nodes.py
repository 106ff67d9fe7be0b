"""Redis nodes of a test's own: `redis-server` processes on free loopback ports, never the shared
Redis, so a test may stop and restart them. Always stopped afterwards; a missing redis-server
fails the test (scripts/test.sh installs Debian's package)."""

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from bench.launcher import HOST, free_port

READY_TIMEOUT_S = 20


class RedisNode:
    """One redis-server without persistence: a restart comes back empty, as a lost node does."""

    def __init__(self, run_dir: Path, index: int) -> None:
        self.run_dir = run_dir
        self.index = index
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if not binary:
            pytest.fail("redis-server is required for the multi-Redis tests")
        log = (self.run_dir / f"redis-{self.index}.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            cwd=self.run_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, f"redis-server {self.index} exited"
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            assert time.monotonic() < deadline, f"redis-server {self.index} did not answer"
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server (a node lost) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        """A sync client of this node."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def keys(self, pattern: str) -> list[str]:
        """The keys matching `pattern` on this node."""
        client = self.client()
        try:
            return [key.decode() for key in client.scan_iter(pattern, count=1000)]
        finally:
            client.close()


@contextlib.contextmanager
def redis_nodes(run_dir: Path, count: int = 3):
    """`count` started RedisNodes, always stopped on exit."""
    nodes = [RedisNode(run_dir, i) for i in range(count)]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
