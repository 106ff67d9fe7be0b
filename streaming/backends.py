"""Shared back-ends of the streaming layer: the per-event-loop async Redis client and key names."""

import asyncio
import weakref

from django.conf import settings
from redis import asyncio as aioredis

MAX_CONNECTIONS = 200
POOL_TIMEOUT_S = 10.0

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def redis_url() -> str:
    """The Redis URL, or "" when the streaming layer runs in-process."""
    return settings.REDIS_URL or ""


def key(*parts) -> str:
    """A namespaced Redis key (STREAMING_KEY_PREFIX isolates deployments and tests)."""
    prefix = getattr(settings, "STREAMING_KEY_PREFIX", "tradeapp")
    return ":".join([prefix, "stream", *(str(p) for p in parts)])


def redis_client() -> aioredis.Redis:
    """The async Redis client of the running event loop (clients are bound to one loop)."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
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
