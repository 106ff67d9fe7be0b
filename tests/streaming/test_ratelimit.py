"""The new-connection rate limit (in-process and in Redis) and the client IP rule."""

import pytest

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
    """Two limiters (as in two processes) with the same Redis share one window."""
    from streaming import ratelimit

    settings.WS_RATE_LIMIT = "4/minute"
    assert await _hits("10.9.9.9", 2) == [True, True]
    ratelimit._limiters.pop()  # a fresh storage object, like another process
    assert await _hits("10.9.9.9", 3) == [True, True, False]


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
