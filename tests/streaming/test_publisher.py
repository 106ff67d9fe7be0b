"""publish_event: seq, channel-layer message with pre-encoded text, and token coalescing."""

import asyncio
import time
from datetime import datetime

import orjson
import pytest
from channels.layers import get_channel_layer

from debates.models import Debate, DebateStatus
from streaming import backends, presence, protocol, publisher
from streaming.eventlog import get_event_log
from streaming.publisher import flush, flush_interval_ms, publish_event, publish_events

DEBATE = "6f1c1d3e-0000-4000-8000-000000000003"


async def _subscribe():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(protocol.group_name(DEBATE), channel)
    return layer, channel


async def _drain(layer, channel, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]


async def _actions(layer, channel, count: int) -> list[list[dict]]:
    """The actions of the next `count` channel-layer messages, grouped by message."""
    return [
        [orjson.loads(text) for _, text in protocol.layer_events(message)]
        for message in await _drain(layer, channel, count)
    ]


async def test_publish_assigns_seq_and_sends_encoded_text_once():
    layer, channel = await _subscribe()
    first = await publish_event(DEBATE, protocol.STATUS_UPDATE, {"status": "running"})
    second = await publish_event(DEBATE, "TURN_CHANGE", {"currentAgent": "bull", "turn": 1})
    assert first["payload"] == {"debateId": DEBATE, "status": "running", "seq": 1}
    assert second["payload"]["seq"] == 2
    messages = await _drain(layer, channel, 2)
    assert [m["type"] for m in messages] == ["debate.event", "debate.event"]
    assert [m["seq"] for m in messages] == [1, 2]
    assert orjson.loads(messages[0]["text"]) == first
    assert [s for s, _ in await get_event_log().read_after(DEBATE, 0)] == [1, 2]


async def test_publish_refuses_unknown_types_and_missing_fields():
    with pytest.raises(ValueError, match="not a debate event"):
        await publish_event(DEBATE, "DEBATE/CONNECTED", {})
    with pytest.raises(ValueError, match="token"):
        await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "turn": 1})


async def test_first_token_goes_out_at_once_then_tokens_coalesce_until_another_event(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000  # only the non-token events flush here
    layer, channel = await _subscribe()
    words = ["The ", "stock ", "rises", "."]
    results = [
        await publish_event(
            DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": word, "turn": 1}
        )
        for word in words
    ]
    assert [r["payload"]["seq"] for r in results] == [1, None, None, None]
    complete = await publish_event(
        DEBATE,
        protocol.ARGUMENT_COMPLETE,
        {"agent": "bull", "content": "".join(words), "turn": 1},
    )
    assert complete["payload"]["seq"] == 3
    first, rest = await _actions(layer, channel, 2)  # the held tokens go with the event
    assert [m["type"] for m in first + rest] == [
        protocol.TOKEN_RECEIVED,
        protocol.TOKEN_RECEIVED,
        protocol.ARGUMENT_COMPLETE,
    ]
    assert [m["payload"]["token"] for m in first + rest[:1]] == ["The ", "stock rises."]
    assert (
        "".join(m["payload"]["token"] for m in first + rest[:1]) == (rest[1]["payload"]["content"])
    )
    assert [m["payload"]["seq"] for m in first + rest] == [1, 2, 3]


async def test_tokens_of_another_turn_go_out_at_once_with_the_previous_turns_rest(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000
    layer, channel = await _subscribe()
    tokens = [("bull", "a", 1), ("bull", "a2", 1), ("bear", "b", 2), ("bear", "b2", 2)]
    for agent, token, turn in tokens:
        await publish_event(
            DEBATE, protocol.TOKEN_RECEIVED, {"agent": agent, "token": token, "turn": turn}
        )
    await flush(DEBATE)
    messages = await _actions(layer, channel, 3)
    assert [[(m["payload"]["turn"], m["payload"]["token"]) for m in ms] for ms in messages] == [
        [(1, "a")],
        [(1, "a2"), (2, "b")],
        [(2, "b2")],
    ]


async def test_a_token_after_a_quiet_interval_goes_out_at_once(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 20
    await _subscribe()
    token = {"agent": "bull", "token": "x", "turn": 1}
    assert (await publish_event(DEBATE, protocol.TOKEN_RECEIVED, token))["payload"]["seq"] == 1
    await asyncio.sleep(0.05)  # longer than the interval: nothing is waiting to be merged
    assert (await publish_event(DEBATE, protocol.TOKEN_RECEIVED, token))["payload"]["seq"] == 2


def test_the_interval_widens_with_the_audience_up_to_the_cap(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 50
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 50
    settings.TOKEN_FLUSH_MAX_MS = 1000
    assert flush_interval_ms(0) == 50
    assert flush_interval_ms(1_000) == 50
    assert flush_interval_ms(5_000) == 250
    assert flush_interval_ms(50_000) == 1000
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 0
    assert flush_interval_ms(50_000) == 50
    settings.TOKEN_FLUSH_INTERVAL_MS = 0  # coalescing off stays off
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 50
    assert flush_interval_ms(50_000) == 0


async def _watched_debate(settings, viewers: int):
    """A running debate with an audience of `viewers` (as this process's hub counts them),
    coalescing at 60 s per viewer, and a channel in its group: (debate id, layer, channel)."""
    settings.TOKEN_FLUSH_INTERVAL_MS = 1
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 60_000_000
    settings.TOKEN_FLUSH_MAX_MS = 600_000
    debate = await Debate.objects.acreate(asset="BTC", status=DebateStatus.RUNNING)
    key = str(debate.id)
    for _ in range(viewers + 1):
        presence.joined(key)
    presence.left(key)  # a viewer that left is not counted
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(protocol.group_name(key), channel)
    return key, layer, channel


@pytest.mark.django_db(transaction=True)
async def test_a_running_debate_coalesces_by_its_counted_audience(settings):
    key, layer, channel = await _watched_debate(settings, viewers=3)  # 180 s

    await publish_event(key, protocol.STATUS_UPDATE, {"status": "running"})
    assert publisher._stream(key).viewers == 3  # counted when `running` is published
    # A large audience: everything waits for the next tick (180 s away), even a turn's opening.
    events = [
        (protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1}),
        (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "x", "turn": 1}),
        (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "y", "turn": 1}),
    ]
    for kind, payload in events:
        assert (await publish_event(key, kind, payload))["payload"]["seq"] is None
    # The final status waits for the tick too, then goes with everything held: 3 viewers at
    # 100 s per 1,000 make it 0.3 s after the first message.
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 100_000
    final = await publish_event(key, protocol.STATUS_UPDATE, {"status": "completed"})
    assert final["payload"]["seq"] == 4  # sent when publish returns, never left to a timer
    first, second = await _drain(layer, channel, 2)
    assert second["ts"] - first["ts"] >= 0.3
    running, rest = (
        [orjson.loads(t) for _, t in protocol.layer_events(m)] for m in (first, second)
    )
    assert [(a["type"], a["payload"]["seq"]) for a in running + rest] == [
        (protocol.STATUS_UPDATE, 1),
        (protocol.TURN_CHANGE, 2),
        (protocol.TOKEN_RECEIVED, 3),
        (protocol.STATUS_UPDATE, 4),
    ]
    assert rest[1]["payload"]["token"] == "xy"
    assert publisher._stream(key).audience is None  # a new stream: the old one stopped


async def test_the_timer_flushes_tokens(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 1
    layer, channel = await _subscribe()
    for word in ["x", "y"]:
        await publish_event(
            DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": word, "turn": 1}
        )
    messages = [orjson.loads(m["text"]) for m in await _drain(layer, channel, 1)]
    assert "".join(m["payload"]["token"] for m in messages) in {"xy", "x"}
    if messages[0]["payload"]["token"] == "x":  # the timer fired between the two tokens
        messages += [orjson.loads(m["text"]) for m in await _drain(layer, channel, 1)]
    assert "".join(m["payload"]["token"] for m in messages) == "xy"


async def test_zero_interval_disables_coalescing(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 0
    layer, channel = await _subscribe()
    for word in ["x", "y", "z"]:
        result = await publish_event(
            DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": word, "turn": 1}
        )
        assert result["payload"]["seq"] is not None
    messages = [orjson.loads(m["text"]) for m in await _drain(layer, channel, 3)]
    assert [m["payload"]["token"] for m in messages] == ["x", "y", "z"]


async def test_publish_with_redis_log(use_redis):
    layer, channel = await _subscribe()
    await publish_event(DEBATE, protocol.STATUS_UPDATE, {"status": "running"})
    await publish_event(DEBATE, protocol.STATUS_UPDATE, {"status": "completed"})
    messages = await _drain(layer, channel, 2)
    assert [m["seq"] for m in messages] == [1, 2]
    assert await get_event_log().last_seq(DEBATE) == 2


async def test_events_published_together_are_one_message_with_consecutive_seqs(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000
    layer, channel = await _subscribe()
    await publish_event(DEBATE, protocol.STATUS_UPDATE, {"status": "pending"})
    actions = await publish_events(
        DEBATE,
        [
            (protocol.STATUS_UPDATE, {"status": "running"}),
            ("TURN_CHANGE", {"currentAgent": "bull", "turn": 1}),
            (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "Up", "turn": 1}),
        ],
    )
    assert [a["payload"]["seq"] for a in actions] == [2, 3, 4]
    single, together = await _drain(layer, channel, 2)
    assert protocol.layer_events(single) == [(1, single["text"])]
    assert [seq for seq, _ in protocol.layer_events(together)] == [2, 3, 4]
    assert [orjson.loads(text) for _, text in protocol.layer_events(together)] == actions
    # A token sent together is not held back: the next one of its turn is coalesced after it.
    nxt = {"agent": "bull", "token": " more", "turn": 1}
    assert (await publish_event(DEBATE, protocol.TOKEN_RECEIVED, nxt))["payload"]["seq"] is None


async def test_a_malformed_event_stops_the_whole_group_before_anything_is_sent():
    layer, channel = await _subscribe()
    with pytest.raises(ValueError, match="token"):
        await publish_events(
            DEBATE,
            [
                (protocol.STATUS_UPDATE, {"status": "running"}),
                (protocol.TOKEN_RECEIVED, {"agent": "bull", "turn": 1}),
            ],
        )
    assert await get_event_log().last_seq(DEBATE) == 0
    assert channel not in layer.channels or layer.channels[channel].empty()


@pytest.mark.django_db(transaction=True)
async def test_the_audience_is_counted_with_running_so_the_opening_turn_coalesces(settings):
    key, layer, channel = await _watched_debate(settings, viewers=2)  # 120 s

    opening = [
        (protocol.STATUS_UPDATE, {"status": "running"}),
        (protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1}),
        (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "a", "turn": 1}),
    ]
    sent = await publish_events(key, opening)
    assert [a["payload"]["seq"] for a in sent] == [1, 2, 3]  # the first message goes at once
    assert publisher._stream(key).viewers == 2  # counted before it was sent
    following = publisher._stream(key).audience
    assert following is not None
    # The next token of the same turn waits for the tick instead of a message of its own.
    held = await publish_event(
        key, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "b", "turn": 1}
    )
    assert held["payload"]["seq"] is None
    assert publisher._stream(key).audience is following  # "running" did not restart the count

    publisher.release(key)
    await asyncio.sleep(0)
    assert following.cancelled()
    assert publisher._stream(key).audience is None
    await publisher.flush(key)
    assert len(await _drain(layer, channel, 2)) == 2


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _ms(epoch: float) -> float:
    return int(epoch * 1000) / 1000  # timestamps are truncated to the millisecond


async def test_an_event_carries_its_creation_time_and_when_the_outbox_sent_it(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000  # tokens wait until the argument completes
    layer, channel = await _subscribe()
    token = {"agent": "bull", "turn": 1}
    await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {**token, "token": "The "})
    before_second = time.time()
    await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {**token, "token": "stock "})
    after_second = time.time()
    await asyncio.sleep(0.05)
    await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {**token, "token": "rises."})
    before_complete = time.time()
    await publish_event(
        DEBATE, protocol.ARGUMENT_COMPLETE, {**token, "content": "The stock rises."}
    )
    first, (merged, complete) = await _actions(layer, channel, 2)

    assert merged["payload"]["token"] == "stock rises."
    # The merged frame is as old as its first token; it was sent with the argument.
    assert _ms(before_second) <= _epoch(merged["timestamp"]) <= after_second
    assert _epoch(merged["publishedAt"]) >= _ms(before_complete)
    assert merged["publishedAt"] == complete["publishedAt"]
    assert _epoch(complete["timestamp"]) >= _ms(before_complete)
    assert first[0]["timestamp"] <= first[0]["publishedAt"]
    # The log holds the same texts, publishedAt included.
    logged = [orjson.loads(text) for _, text in await get_event_log().read_after(DEBATE, 0)]
    assert logged == [first[0], merged, complete]


async def test_a_publish_handed_to_the_loop_running_the_debate_keeps_its_creation_time(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 0
    layer, channel = await _subscribe()
    await publish_event(DEBATE, protocol.STATUS_UPDATE, {"status": "running"})  # owns the loop
    stream = publisher._streams[DEBATE]

    def from_another_thread() -> float:
        called = time.time()
        asyncio.run(publish_event(DEBATE, "TURN_CHANGE", {"currentAgent": "bull", "turn": 1}))
        return called

    async with stream.lock:  # the debate's loop is busy publishing: the handed event waits
        publishing = asyncio.ensure_future(asyncio.to_thread(from_another_thread))
        async with asyncio.timeout(10):
            while not stream.lock._waiters:  # noqa: ASYNC110 - asyncio.Lock has no event for it
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        released = time.time()
    called = await publishing
    _running, (turn,) = await _actions(layer, channel, 2)
    assert _ms(called) <= _epoch(turn["timestamp"]) < _ms(released)
    assert _epoch(turn["publishedAt"]) >= _ms(released)


async def test_the_interval_follows_the_busiest_process_not_the_whole_audience(settings, use_redis):
    settings.TOKEN_FLUSH_INTERVAL_MS = 50
    debate_id = "6f1c1d3e-0000-4000-8000-0000000000b5"
    for _ in range(300):
        presence.joined(debate_id)  # this process: 300 viewers
    await presence.publish_counts(every=True)
    client = backends.debate_client(debate_id)
    now = (await client.time())[0]
    key = backends.key("audience", debate_id)
    await client.hset(key, mapping={"host:2:aa": f"700:{now}", "host:3:bb": f"200:{now}"})

    assert await presence.audience_spread(debate_id) == (1200, 700)
    assert await presence.audience(debate_id) == 1200
    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "running"})
    # Each message costs the busiest process 700 writes: the interval is set by those.
    assert publisher._stream(debate_id).viewers == 700
    assert flush_interval_ms(700) == 50.0  # 700 viewers at 50 ms per 1,000: the base
    settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS = 1000
    assert flush_interval_ms(publisher._stream(debate_id).viewers) == 700
    publisher.release(debate_id)
