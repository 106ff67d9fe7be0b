"""Shared back-ends of the streaming layer: the Redis clients (async per event loop, and one sync
client per process), which Redis node holds which keys, and key names.

With several Redis nodes (REDIS_URLS) every key lives on the node ``node_url(shard)`` names,
one function for every user of Redis keys: a debate's keys (seq, event log, audience) on the node
of ``debate_shard(id)``, which is the node the channel layer publishes the debate's events on
(its group's channel name, hashed the channel layer's way), so one node carries all of a debate;
a process's liveness key on the node of its id; a client's rate-limit window on the node of its
address. With one node every key is on it.
"""

import asyncio
import binascii
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

import redis
from django.conf import settings
from redis import asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as SyncRetry

from streaming import protocol

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

RING = 4096  # channels_redis places channels on a ring of 4096 slots (CRC32 & 0xFFF)


def redis_url() -> str:
    """The (first) Redis node's URL, or "" when the streaming layer runs in-process."""
    return settings.REDIS_URL or ""


def redis_urls() -> list[str]:
    """Every Redis node, in the channel layer's order (REDIS_URLS, else REDIS_URL); empty
    in-process."""
    if not settings.REDIS_URL:
        return []
    return list(getattr(settings, "REDIS_URLS", None) or [settings.REDIS_URL])


def node_index(shard: str, nodes: int) -> int:
    """The node, of `nodes`, that holds `shard`: the channel layer's placement (a CRC32 ring)."""
    if nodes <= 1:
        return 0
    return int((binascii.crc32(shard.encode()) & (RING - 1)) / (RING / nodes))


def node_url(shard) -> str:
    """The URL of the Redis node that holds the keys of `shard` (a debate_shard, a process id,
    a client address): the one routing of Redis keys."""
    urls = redis_urls()
    if not urls:
        return ""
    return urls[node_index(str(shard), len(urls))] if shard != "" else urls[0]


def debate_shard(debate_id) -> str:
    """The shard of everything of one debate: the channel layer's name for the debate's group,
    so its keys sit on the node that carries its events."""
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return f"{config.get('prefix', 'asgi')}__group__{protocol.group_name(debate_id)}"


def debate_client(debate_id) -> aioredis.Redis:
    """The async Redis client of the node that holds the debate's keys."""
    return redis_client(debate_shard(debate_id))


def key(*parts) -> str:
    """A namespaced Redis key (STREAMING_KEY_PREFIX isolates deployments and tests)."""
    prefix = getattr(settings, "STREAMING_KEY_PREFIX", "tradeapp")
    return ":".join([prefix, "stream", *(str(p) for p in parts)])


def redis_client(shard="") -> aioredis.Redis:
    """The async Redis client, of the running event loop (clients are bound to one loop), of the
    node that holds `shard`'s keys (node_url; no shard: the first node)."""
    return url_client(node_url(shard))


def url_client(url: str) -> aioredis.Redis:
    """The running event loop's pooled async client of the Redis node at `url`."""
    per_loop = _clients.get()
    client = per_loop.get(url)
    if client is None:
        # A burst of handshakes waits for a connection instead of failing with 4500.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_S,
            socket_connect_timeout=5,
            health_check_interval=30,
            **settings.REDIS_RECONNECT,  # a connection Redis closed is reopened, not an error
        )
        client = aioredis.Redis.from_pool(pool)
        per_loop[url] = client
    return client


_sync_clients: dict[str, redis.Redis] = {}
_sync_lock = threading.Lock()


def redis_sync_client(shard="") -> redis.Redis:
    """The process's sync Redis client (thread-safe pool) of the node that holds `shard`'s keys
    (no shard: the first node), for views and the admin."""
    return url_sync_client(node_url(shard))


def url_sync_client(url: str) -> redis.Redis:
    """The process's pooled sync client of the Redis node at `url`."""
    with _sync_lock:
        client = _sync_clients.get(url)
        if client is None:
            client = _sync_clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=5,
                socket_timeout=5,
                health_check_interval=30,
                retry=SyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
        return client
