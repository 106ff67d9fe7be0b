"""The new-connection rate limit (in-process and in Redis) and the client IP rule."""

import asyncio
from collections import Counter

import pytest

from streaming import backends
from streaming.ratelimit import allow_connection, client_ip


async def _hits(ip: str, n: int) -> list[bool]:
    return [await allow_connection(ip) for _ in range(n)]


async def test_memory_limit_allows_ten_a_minute_per_ip(settings):
    settings.WS_RATE_LIMIT = "10/minute"
    assert await _hits("10.0.0.1", 11) == [True] * 10 + [False]
    assert await allow_connection("10.0.0.2")


async def test_redis_limit_is_shared_and_per_ip(settings, use_redis):
    settings.WS_RATE_LIMIT = "3/minute"
    assert await _hits("10.0.0.1", 4) == [True, True, True, False]
    assert await allow_connection("10.0.0.2")


async def test_redis_limit_is_shared_by_two_processes(settings, use_redis):
    """Two event loops with clients of their own (as two processes) share one window."""
    settings.WS_RATE_LIMIT = "4/minute"
    assert await _hits("10.9.9.9", 2) == [True, True]
    elsewhere = await asyncio.to_thread(asyncio.run, _hits("10.9.9.9", 3))
    assert elsewhere == [True, True, False]


async def test_a_storm_of_checks_shares_round_trips_and_counts_each(settings, use_redis):
    settings.WS_RATE_LIMIT = "5/minute"
    ips = [f"10.1.{i // 250}.{i % 250}" for i in range(300)] * 6  # each address six times
    results = await asyncio.gather(*(allow_connection(ip) for ip in ips))
    allowed = Counter(ip for ip, ok in zip(ips, results, strict=True) if ok)
    assert set(allowed.values()) == {5}
    assert len(allowed) == 300
    # 1,800 checks made in one pass of the loop went out together, as two pipelines of at most
    # 1,000: two pooled connections, not one per check (the pool opens one per command in flight).
    pool = backends.redis_client(ips[0]).connection_pool
    assert len(pool._available_connections) + len(pool._in_use_connections) == 2


def _scope(peer="203.0.113.5", xff=None):
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return {"client": (peer, 1234), "headers": headers}


def test_client_ip_is_the_socket_peer_by_default(settings):
    settings.WS_TRUSTED_PROXIES = 0
    assert client_ip(_scope(xff="1.2.3.4")) == "203.0.113.5"


@pytest.mark.parametrize(
    ("trusted", "xff", "expected"),
    [
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (2, "10.0.0.1", "203.0.113.5"),  # fewer entries than trusted proxies
        (1, "not-an-ip", "203.0.113.5"),
    ],
)
def test_client_ip_with_trusted_proxies(settings, trusted, xff, expected):
    settings.WS_TRUSTED_PROXIES = trusted
    assert client_ip(_scope(xff=xff)) == expected


def test_client_ip_without_client():
    assert client_ip({"headers": []}) is None
