"""New-connection rate limit per client IP (WS_RATE_LIMIT, "10/minute" by default).

Backed by the ``limits`` library with a moving window: RedisStorage (atomic Lua, shared by
every process, on the connection pool of streaming.backends; with several Redis nodes, each
client address's window on the node its address hashes to) when REDIS_URL is set, MemoryStorage
in this process otherwise.
"""

import ipaddress
import logging

from django.conf import settings
from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from streaming import backends
from streaming.backends import PerLoop

logger = logging.getLogger(__name__)

_limiters: PerLoop[dict] = PerLoop(dict)


def _storage_uri(url: str) -> str:
    return "async+" + url if not url.startswith("async+") else url


def _limiter(client_ip: str) -> MovingWindowRateLimiter:
    """The limiter of the Redis node that holds this client's window (streaming.backends)."""
    per_loop = _limiters.get()
    url = backends.node_url(client_ip) if backends.redis_url() else ""
    cache_key = (url, backends.key("ratelimit"))
    limiter = per_loop.get(cache_key)
    if limiter is None:
        if url:
            # The streaming layer's pool: one bounded, blocking pool per loop, not a second one
            # that raises past redis-py's default cap during a burst of handshakes.
            storage = RedisStorage(
                _storage_uri(url),
                implementation="redispy",
                key_prefix=backends.key("ratelimit"),
                connection_pool=backends.redis_client(client_ip).connection_pool,
            )
        else:
            storage = MemoryStorage()
        limiter = per_loop[cache_key] = MovingWindowRateLimiter(storage)
    return limiter


async def allow_connection(client_ip: str) -> bool:
    """Count one new connection from the IP; False when it is over the limit."""
    return await _limiter(client_ip).hit(parse(settings.WS_RATE_LIMIT), "ws-connect", client_ip)


def _header(scope, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]
    return ",".join(values)


def client_ip(scope) -> str | None:
    """The client's IP: the socket peer, or the Nth-from-right X-Forwarded-For entry when
    WS_TRUSTED_PROXIES = N > 0 (fewer entries than N: the socket peer)."""
    client = scope.get("client")
    peer = client[0] if client else None
    trusted = int(settings.WS_TRUSTED_PROXIES)
    if trusted > 0:
        entries = [e.strip() for e in _header(scope, b"x-forwarded-for").split(",") if e.strip()]
        if len(entries) >= trusted:
            candidate = entries[-trusted]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                logger.warning("ignoring a malformed X-Forwarded-For entry")
    return peer
