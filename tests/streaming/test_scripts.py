"""Lua scripts batched per loop pass (streaming.scripts), on a Redis node of the test's own: one
pipeline for a pass's calls, a script the node forgot sent again, a failure raised to every
waiter."""

import asyncio
import contextlib

import pytest
import redis

from streaming import backends
from streaming.scripts import LuaScript, run_script
from tests.redis_nodes import redis_nodes

pytestmark = pytest.mark.redis

DOUBLE = LuaScript("return {KEYS[1], tonumber(ARGV[1]) * 2}")


@pytest.fixture
def node(settings, tmp_path):
    """One Redis node of this test's own, as the streaming layer's Redis."""
    with redis_nodes(tmp_path, 1) as (started,):
        settings.REDIS_URLS = []
        settings.REDIS_URL = started.url
        yield started


async def _doubles(count: int) -> list:
    return await asyncio.gather(*(run_script("s", DOUBLE, [f"k{i}"], [i]) for i in range(count)))


async def test_the_calls_of_one_pass_are_one_pipeline_with_each_reply_to_its_caller(node):
    replies = await _doubles(300)
    assert replies == [[f"k{i}".encode(), 2 * i] for i in range(300)]
    pool = backends.redis_client("s").connection_pool
    assert len(pool._available_connections) + len(pool._in_use_connections) == 1


async def test_a_node_that_forgot_the_script_is_sent_it_again(node):
    assert (await _doubles(3))[2] == [b"k2", 4]
    node.client().script_flush()  # as a restarted node: it no longer knows the SHA
    assert await _doubles(5) == [[f"k{i}".encode(), 2 * i] for i in range(5)]


async def test_a_node_that_is_down_fails_every_waiter_with_its_own_error(node):
    assert await _doubles(2)
    node.stop()
    results = await asyncio.gather(
        *(run_script("s", DOUBLE, ["k"], [1]) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, redis.ConnectionError) for r in results), results
    assert len({id(r) for r in results}) == 4
    node.start()
    with contextlib.suppress(redis.ConnectionError):
        await run_script("s", DOUBLE, ["k"], [1])  # a pooled connection the stop cut, if any
    assert await run_script("s", DOUBLE, ["k"], [21]) == [b"k", 42]
