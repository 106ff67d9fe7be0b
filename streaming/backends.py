"""Shared back-ends of the streaming layer: the Redis clients (async per event loop, and one sync
client per process) and key names."""

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

import redis
from django.conf import settings
from redis import asyncio as aioredis

MAX_CONNECTIONS = 200
POOL_TIMEOUT_S = 10.0

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One object per event loop, made by `factory` on first use in that loop (async clients,
    queues and tasks belong to one loop; tests and the runner thread have loops of their own)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """The running loop's object."""
        loop = asyncio.get_running_loop()
        obj = self._objects.get(loop)
        if obj is None:
            obj = self._objects[loop] = self._factory()
        return obj

    def pop(self) -> T | None:
        """Forget the running loop's object and return it, if it had one."""
        return self._objects.pop(asyncio.get_running_loop(), None)

    def items(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        """Every loop's object, with its loop (e.g. to reach sockets held by another loop)."""
        return [(loop, obj) for loop, obj in list(self._objects.items()) if not loop.is_closed()]


_clients: PerLoop[dict] = PerLoop(dict)


def redis_url() -> str:
    """The Redis URL, or "" when the streaming layer runs in-process."""
    return settings.REDIS_URL or ""


def key(*parts) -> str:
    """A namespaced Redis key (STREAMING_KEY_PREFIX isolates deployments and tests)."""
    prefix = getattr(settings, "STREAMING_KEY_PREFIX", "tradeapp")
    return ":".join([prefix, "stream", *(str(p) for p in parts)])


def redis_client() -> aioredis.Redis:
    """The async Redis client of the running event loop (clients are bound to one loop)."""
    per_loop = _clients.get()
    url = redis_url()
    client = per_loop.get(url)
    if client is None:
        # A burst of handshakes waits for a connection instead of failing with 4500.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_S,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        client = aioredis.Redis.from_pool(pool)
        per_loop[url] = client
    return client


_sync_clients: dict[str, redis.Redis] = {}
_sync_lock = threading.Lock()


def redis_sync_client() -> redis.Redis:
    """The process's sync Redis client (thread-safe pool), for views and the admin."""
    url = redis_url()
    with _sync_lock:
        client = _sync_clients.get(url)
        if client is None:
            client = _sync_clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=5, socket_timeout=5, health_check_interval=30
            )
        return client
