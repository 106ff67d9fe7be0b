"""The per-debate event log: assigns seq 1, 2, 3, ... and keeps every event's text for resume.

With REDIS_URL: one Lua script INCRs the debate's seq key (first raised to the publisher's
newest seq when Redis came back empty, so the numbering continues) and XADDs the event text under
the stream ID ``<seq>-0``, so two processes can never share a seq and the stream is ordered by seq;
both keys get EVENT_LOG_TTL_S (refreshed on every append), on the debate's Redis node
(streaming.backends). Without Redis: a dict in this process.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings

from streaming import backends
from streaming.scripts import LuaScript, run_script

READ_PAGE = 1000

_APPEND_LUA = """
local floor = tonumber(ARGV[4])
if floor > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') < floor then
  redis.call('SET', KEYS[1], floor)
end
local seq = redis.call('INCR', KEYS[1])
local text = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], seq .. '-0', 't', text)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {seq, text}
"""

# Events logged before Redis lost them (a restart), put back under their own seqs: each one newer
# than the seq key is added (the keys came back empty, or never had it).
_RESTORE_LUA = """
for i = 1, #ARGV - 1, 2 do
  local seq = tonumber(ARGV[i])
  if seq > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('XADD', KEYS[2], seq .. '-0', 't', ARGV[i + 1])
    redis.call('SET', KEYS[1], seq)
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
redis.call('EXPIRE', KEYS[2], ARGV[#ARGV])
return 1
"""

# The newest seq and a page of events after a seq, in one round trip (a connect's catch-up,
# batched with the other connects of the loop's pass: streaming.scripts).
_SNAPSHOT = LuaScript("""
local seq = redis.call('GET', KEYS[1])
return {seq, redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}
""")


def _ttl() -> int:
    return int(settings.EVENT_LOG_TTL_S)


def _events(entries) -> list[tuple[int, str]]:
    return [(int(entry_id.split(b"-")[0]), fields[b"t"].decode()) for entry_id, fields in entries]


def _raw_events(entries) -> list[tuple[int, str]]:
    # XRANGE inside Lua comes back unparsed: [id, [b"t", text]] per entry (see _APPEND_LUA).
    return [(int(entry_id.split(b"-")[0]), fields[1].decode()) for entry_id, fields in entries]


class RedisEventLog:
    """The event log in a Redis Stream per debate, shared by every process."""

    async def append(self, debate_id, head: str, tail: str, floor: int = 0) -> tuple[int, str]:
        """Assign the next seq (above ``floor``, the newest seq the caller logged: a Redis that
        came back empty continues the numbering) and store ``head + seq + tail``; return
        (seq, text)."""
        client = backends.debate_client(debate_id)
        script = client.register_script(_APPEND_LUA)
        seq, text = await script(
            keys=[backends.key("seq", debate_id), backends.key("log", debate_id)],
            args=[head, tail, _ttl(), floor],
        )
        return int(seq), text.decode() if isinstance(text, bytes) else text

    async def restore(self, debate_id, events: list[tuple[int, str]]) -> None:
        """Put back logged events Redis may have lost (it restarted empty) under their seqs;
        those the log still holds are left alone."""
        client = backends.debate_client(debate_id)
        args = [part for seq, text in events for part in (seq, text)]
        await client.register_script(_RESTORE_LUA)(
            keys=[backends.key("seq", debate_id), backends.key("log", debate_id)],
            args=[*args, _ttl()],
        )

    async def read_after(self, debate_id, after_seq: int) -> list[tuple[int, str]]:
        """Every stored event with seq > after_seq, in order."""
        client = backends.debate_client(debate_id)
        stream = backends.key("log", debate_id)
        out: list[tuple[int, str]] = []
        start = f"{after_seq + 1}-0"
        while True:
            entries = await client.xrange(stream, min=start, max="+", count=READ_PAGE)
            out += _events(entries)
            if len(entries) < READ_PAGE:
                return out
            start = f"{out[-1][0] + 1}-0"

    async def last_seq(self, debate_id) -> int:
        """The newest seq of the debate, 0 when none is logged (or the log expired)."""
        value = await backends.debate_client(debate_id).get(backends.key("seq", debate_id))
        return int(value) if value else 0

    async def snapshot(self, debate_id, after_seq: int) -> tuple[int, list[tuple[int, str]]]:
        """The newest seq and every stored event with seq > after_seq, read together."""
        value, entries = await run_script(
            backends.debate_shard(debate_id),
            _SNAPSHOT,
            [backends.key("seq", debate_id), backends.key("log", debate_id)],
            [f"{max(after_seq, 0) + 1}-0", READ_PAGE],
        )
        events = _raw_events(entries)
        if len(entries) == READ_PAGE:
            events += await self.read_after(debate_id, events[-1][0])
        return (int(value) if value else 0), events


@dataclass
class _MemoryLog:
    events: list[tuple[int, str]] = field(default_factory=list)
    expires_at: float = 0.0


class MemoryEventLog:
    """The event log in this process (no REDIS_URL): one process serves every viewer."""

    def __init__(self) -> None:
        self._logs: dict[str, _MemoryLog] = {}

    def _get(self, debate_id) -> _MemoryLog | None:
        log = self._logs.get(backends.key(debate_id))
        if log is not None and log.expires_at < time.monotonic():
            del self._logs[backends.key(debate_id)]
            return None
        return log

    async def append(self, debate_id, head: str, tail: str, floor: int = 0) -> tuple[int, str]:
        """Assign the next seq and store ``head + seq + tail``; return (seq, text)."""
        log = self._get(debate_id)
        if log is None:
            log = self._logs[backends.key(debate_id)] = _MemoryLog()
        seq = (log.events[-1][0] if log.events else 0) + 1
        text = f"{head}{seq}{tail}"
        log.events.append((seq, text))
        log.expires_at = time.monotonic() + _ttl()
        return seq, text

    async def restore(self, debate_id, events: list[tuple[int, str]]) -> None:
        """Nothing to put back: this process's log is lost only with the process."""

    async def read_after(self, debate_id, after_seq: int) -> list[tuple[int, str]]:
        """Every stored event with seq > after_seq, in order."""
        log = self._get(debate_id)
        if log is None:
            return []
        # seq n sits at index n - 1 (seqs start at 1, without gaps).
        return list(log.events[max(after_seq, 0) :])

    async def last_seq(self, debate_id) -> int:
        """The newest seq of the debate, 0 when none is logged (or the log expired)."""
        log = self._get(debate_id)
        return log.events[-1][0] if log and log.events else 0

    async def snapshot(self, debate_id, after_seq: int) -> tuple[int, list[tuple[int, str]]]:
        """The newest seq and every stored event with seq > after_seq, read together."""
        return await self.last_seq(debate_id), await self.read_after(debate_id, after_seq)


_redis_log = RedisEventLog()
_memory_log = MemoryEventLog()


def get_event_log() -> RedisEventLog | MemoryEventLog:
    """The event log for the current settings."""
    return _redis_log if backends.redis_url() else _memory_log
