"""publish_event: seq, channel-layer message with pre-encoded text, and token coalescing."""

import asyncio

import orjson
import pytest
from channels.layers import get_channel_layer

from streaming import protocol
from streaming.eventlog import get_event_log
from streaming.publisher import flush, publish_event

DEBATE = "6f1c1d3e-0000-4000-8000-000000000003"


async def _subscribe():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(protocol.group_name(DEBATE), channel)
    return layer, channel


async def _drain(layer, channel, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]


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


async def test_tokens_coalesce_and_flush_before_other_events(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000  # only the non-token events flush here
    layer, channel = await _subscribe()
    words = ["The ", "stock ", "rises", "."]
    for word in words:
        result = await publish_event(
            DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": word, "turn": 1}
        )
        assert result["payload"]["seq"] is None  # buffered
    await publish_event(
        DEBATE,
        protocol.ARGUMENT_COMPLETE,
        {"agent": "bull", "content": "".join(words), "turn": 1},
    )
    messages = [orjson.loads(m["text"]) for m in await _drain(layer, channel, 2)]
    assert [m["type"] for m in messages] == [protocol.TOKEN_RECEIVED, protocol.ARGUMENT_COMPLETE]
    assert messages[0]["payload"]["token"] == messages[1]["payload"]["content"]
    assert [m["payload"]["seq"] for m in messages] == [1, 2]


async def test_tokens_of_another_turn_flush_the_previous_turn(settings):
    settings.TOKEN_FLUSH_INTERVAL_MS = 60_000
    layer, channel = await _subscribe()
    await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "a", "turn": 1})
    await publish_event(DEBATE, protocol.TOKEN_RECEIVED, {"agent": "bear", "token": "b", "turn": 2})
    await flush(DEBATE)
    messages = [orjson.loads(m["text"]) for m in await _drain(layer, channel, 2)]
    assert [(m["payload"]["turn"], m["payload"]["token"]) for m in messages] == [(1, "a"), (2, "b")]


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
