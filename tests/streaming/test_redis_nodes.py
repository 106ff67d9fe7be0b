"""Several Redis nodes (REDIS_URLS), three redis-server processes of the test's own: each
debate's seq, log and audience on one node, the one its events are published on; processes'
liveness keys and rate-limit windows spread too; a restarted node serves again."""

import binascii
import contextlib
import uuid
from collections import Counter

import pytest
import redis
from channels.layers import get_channel_layer
from channels_redis.utils import _consistent_hash

from streaming import backends, presence, protocol, ratelimit
from streaming.eventlog import get_event_log
from streaming.publisher import publish_event
from tests.redis_nodes import redis_nodes

pytestmark = pytest.mark.redis
DEBATES = 24


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Three empty Redis nodes for this module."""
    with redis_nodes(tmp_path_factory.mktemp("redis-nodes"), 3) as started:
        yield started


@pytest.fixture
def sharded(settings, nodes, redis_prefix):
    """The streaming layer and the channel layer over the three nodes."""
    urls = [node.url for node in nodes]
    settings.REDIS_URLS = urls
    settings.REDIS_URL = urls[0]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": urls, "prefix": redis_prefix},
        }
    }
    return nodes


def test_the_placement_is_the_channel_layers_own():
    for i in range(500):
        name = f"tradeapp__group__debate.{uuid.UUID(int=i * 7919)}"
        for count in (1, 2, 3, 5):
            assert backends.node_index(name, count) == _consistent_hash(name, count)
    assert backends.node_index("x", 3) == int((binascii.crc32(b"x") & 0xFFF) / (4096 / 3))


def test_one_node_holds_every_key(settings):
    settings.REDIS_URLS = []
    settings.REDIS_URL = "redis://one:6379/0"
    assert backends.redis_urls() == ["redis://one:6379/0"]
    assert {backends.node_url(backends.debate_shard(uuid.uuid4())) for _ in range(20)} == {
        "redis://one:6379/0"
    }
    settings.REDIS_URL = ""
    assert backends.redis_urls() == []
    assert backends.node_url("anything") == ""


async def test_each_debates_keys_live_on_its_node_and_every_node_holds_some(sharded, redis_prefix):
    debates = [str(uuid.uuid4()) for _ in range(DEBATES)]
    for debate_id in debates:
        await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "pending"})
        await publish_event(debate_id, "TURN_CHANGE", {"currentAgent": "bull", "turn": 1})
        presence.joined(debate_id)
    await presence.publish_counts(every=True)

    homes = Counter()
    for debate_id in debates:
        home = backends.node_url(backends.debate_shard(debate_id))
        homes[home] += 1
        for node in sharded:
            found = sorted(node.keys(f"{redis_prefix}:stream:*:{debate_id}"))
            expected = [
                f"{redis_prefix}:stream:{kind}:{debate_id}" for kind in ("audience", "log", "seq")
            ]
            assert found == (expected if node.url == home else []), (debate_id, node.index)
        assert [seq for seq, _ in await get_event_log().read_after(debate_id, 0)] == [1, 2]
    assert set(homes) == {node.url for node in sharded}  # every node holds some debates
    assert await presence.audience(debates[0]) == 1
    assert presence.audience_counts(debates) == dict.fromkeys(debates, 1)


async def test_the_channel_layer_publishes_a_debate_on_the_node_that_holds_its_log(sharded):
    layer = get_channel_layer()
    for _ in range(20):
        debate_id = uuid.uuid4()
        group_channel = layer._get_layer()._get_group_channel_name(protocol.group_name(debate_id))
        assert group_channel == backends.debate_shard(debate_id)
        shard = layer._get_layer()._get_shard(group_channel)
        assert shard.host["address"] == backends.node_url(backends.debate_shard(debate_id))
    await layer.flush()


async def test_liveness_keys_and_rate_limits_spread_over_the_nodes(sharded, redis_prefix, settings):
    settings.WS_RATE_LIMIT = "2/minute"
    processes = [f"host:{pid}:abc" for pid in range(30)]
    for process in processes:
        await backends.redis_client(process).set(backends.key("process", process), 1, ex=60)
    alive = await presence.processes_alive([*processes, "host:gone:xyz"])
    assert alive == [True] * 30 + [False]
    assert all(len(node.keys(f"{redis_prefix}:stream:process:*")) > 0 for node in sharded)

    addresses = [f"10.0.0.{i}" for i in range(30)]
    for address in addresses:
        assert [await ratelimit.allow_connection(address) for _ in range(3)] == [True, True, False]
    assert all(node.keys(f"{redis_prefix}:stream:ratelimit*") for node in sharded)


async def _once_reconnected(call):
    """`call()`, again while it fails on a connection the restart cut (each fails once, unless
    the client retries)."""
    for _ in range(5):
        with contextlib.suppress(redis.ConnectionError):
            return await call()
    return await call()


async def test_a_restarted_node_comes_back_empty_and_serves_again(sharded, redis_prefix):
    node = sharded[1]
    debate_id = next(
        d
        for d in (str(uuid.uuid4()) for _ in range(1000))
        if backends.node_url(backends.debate_shard(d)) == node.url
    )
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(protocol.group_name(debate_id), channel)
    for turn in (1, 2, 3):
        await publish_event(debate_id, "TURN_CHANGE", {"currentAgent": "bull", "turn": turn})
    assert [(await layer.receive(channel))["seq"] for _ in range(3)] == [1, 2, 3]

    node.restart()
    again = await _once_reconnected(
        lambda: publish_event(debate_id, "TURN_CHANGE", {"currentAgent": "bear", "turn": 4})
    )
    # Its log went with the node, the numbering did not: the publisher raises the node's seq to
    # its newest first, so viewers still connected see 4 after 3 (docs/streaming.md, "Faults").
    seq = again["payload"]["seq"]
    assert seq == 4
    assert [s for s, _ in await get_event_log().read_after(debate_id, 0)] == [4]
    assert node.keys(f"{redis_prefix}:stream:seq:{debate_id}")
    received = await layer.receive(channel)
    assert (received["seq"], received["debate"]) == (seq, debate_id)
    await layer.flush()
