"""The event log: seq assignment, ordered reads after a seq, TTL; in-process and in Redis."""

import asyncio

import orjson
import pytest
import redis

from streaming import backends, protocol
from streaming.eventlog import MemoryEventLog, RedisEventLog, get_event_log

DEBATE = "6f1c1d3e-0000-4000-8000-000000000002"


def _parts(n: int) -> tuple[str, str]:
    return protocol.event_text_parts(
        protocol.STATUS_UPDATE, {"debateId": DEBATE, "status": f"s{n}"}, protocol.now_iso()
    )


async def _exercise(log) -> None:
    assert await log.last_seq(DEBATE) == 0
    assert await log.read_after(DEBATE, 0) == []
    assert await log.snapshot(DEBATE, 0) == (0, [])
    results = await asyncio.gather(*(log.append(DEBATE, *_parts(i)) for i in range(30)))
    seqs = sorted(seq for seq, _ in results)
    assert seqs == list(range(1, 31))
    for seq, text in results:
        assert orjson.loads(text)["payload"]["seq"] == seq
    assert await log.last_seq(DEBATE) == 30
    after = await log.read_after(DEBATE, 25)
    assert [seq for seq, _ in after] == [26, 27, 28, 29, 30]
    assert dict(after) == {seq: text for seq, text in results if seq > 25}
    assert len(await log.read_after(DEBATE, 0)) == 30
    assert await log.read_after(DEBATE, 30) == []
    assert await log.snapshot(DEBATE, 25) == (30, after)
    assert await log.snapshot(DEBATE, 30) == (30, [])
    assert await log.snapshot(DEBATE, -3) == (30, await log.read_after(DEBATE, 0))


async def test_memory_event_log():
    await _exercise(MemoryEventLog())


async def test_memory_event_log_is_chosen_without_redis():
    assert isinstance(get_event_log(), MemoryEventLog)


async def test_memory_event_log_expires(settings):
    settings.EVENT_LOG_TTL_S = -1
    log = MemoryEventLog()
    await log.append(DEBATE, *_parts(1))
    assert await log.last_seq(DEBATE) == 0


async def test_redis_event_log(use_redis, settings):
    assert isinstance(get_event_log(), RedisEventLog)
    await _exercise(RedisEventLog())
    client = redis.Redis.from_url(use_redis)
    try:
        ttl = client.ttl(backends.key("log", DEBATE))
        assert 0 < ttl <= settings.EVENT_LOG_TTL_S
        assert 0 < client.ttl(backends.key("seq", DEBATE)) <= settings.EVENT_LOG_TTL_S
        client.delete(backends.key("log", DEBATE), backends.key("seq", DEBATE))
    finally:
        client.close()


async def test_redis_event_log_pages_long_logs(use_redis):
    log = RedisEventLog()
    for i in range(2100):
        await log.append(DEBATE, *_parts(i))
    assert [s for s, _ in await log.read_after(DEBATE, 5)] == list(range(6, 2101))
    latest, events = await log.snapshot(DEBATE, 5)
    assert latest == 2100
    assert events == await log.read_after(DEBATE, 5)


@pytest.mark.parametrize("after", [-5, 0])
async def test_read_after_non_positive_reads_everything(after):
    log = MemoryEventLog()
    await log.append(DEBATE, *_parts(1))
    assert len(await log.read_after(DEBATE, after)) == 1


async def test_redis_event_log_after_an_empty_restart_keeps_its_numbering(use_redis):
    log = RedisEventLog()
    logged = [await log.append(DEBATE, *_parts(i)) for i in range(3)]
    client = redis.Redis.from_url(use_redis)
    try:
        client.delete(backends.key("seq", DEBATE), backends.key("log", DEBATE))  # Redis lost it
    finally:
        client.close()
    # The publisher still holds seq 3 (its send failed): put back, then the next event is 4.
    await log.restore(DEBATE, logged[2:])
    seq, _text = await log.append(DEBATE, *_parts(4), floor=3)
    assert seq == 4
    assert [s for s, _ in await log.read_after(DEBATE, 0)] == [3, 4]
    await log.restore(DEBATE, logged[2:])  # already there: left alone
    assert [s for s, _ in await log.read_after(DEBATE, 0)] == [3, 4]
