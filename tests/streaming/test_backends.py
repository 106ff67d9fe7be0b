"""The per-loop Redis client: a burst larger than its pool waits instead of failing."""

import asyncio

from streaming import backends
from streaming.ratelimit import allow_connection


async def test_a_burst_larger_than_the_pool_waits_for_a_connection(use_redis, monkeypatch):
    monkeypatch.setattr(backends, "MAX_CONNECTIONS", 2)
    client = backends.redis_client()
    counter = backends.key("burst")
    results = await asyncio.gather(*(client.incr(counter) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert len(client.connection_pool._available_connections) <= 2
    await client.delete(counter)


async def test_the_rate_limit_shares_the_bounded_pool(use_redis, monkeypatch, settings):
    monkeypatch.setattr(backends, "MAX_CONNECTIONS", 2)
    settings.WS_RATE_LIMIT = "1000/minute"
    # More handshakes at once than redis-py's default pool cap (100) would allow.
    assert all(await asyncio.gather(*(allow_connection("10.7.7.7") for _ in range(150))))
    pool = backends.redis_client().connection_pool
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
