"""Who is here: each server process's liveness key, and the one audience count of each debate.

The audience of a debate is the number of its open sockets that passed every check, summed over
every server process. Each process counts its own exactly (the hub moves the count as viewers
join and leave: ``joined``/``left``). With REDIS_URL each process also writes its counts into
one hash per debate (``<prefix>:stream:audience:<id>``, a field per process holding
``count:epoch``, the epoch from the Redis server's clock), for the debates whose count changed at
most every FLUSH_S and for all of them on every hub tick; a reader sums the fields written within
3 x WS_PING_INTERVAL_S, so a killed process's viewers drop out on their own. One key per debate,
so the count lives on the debate's node when Redis is sharded. Without Redis one process serves
everyone and its own counts are the audience.

This is the only viewer count: DEBATE/CONNECTED.viewers (``viewers_now``, no I/O: this process's
exact count plus the other processes' as last read, at most FLUSH_S old), the publisher's
coalescing interval (``audience_spread``: the largest count of one process, what a message costs
that process), the REST ``viewerCount`` and the admin (``audience_counts``). No database query
counts viewers.

Liveness: each process refreshes ``<prefix>:stream:process:<id>`` on its hub tick (TTL 3 x
WS_PING_INTERVAL_S); the stale-viewer sweep (streaming.services) reads it.
"""

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Iterable

import redis
from django.conf import settings

from streaming import backends
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)

FLUSH_S = 0.5

_WRITE_LUA = """
local now = redis.call('TIME')[1]
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[i + 1])
  if count > 0 then
    redis.call('HSET', key, ARGV[1], count .. ':' .. now)
    redis.call('EXPIRE', key, ARGV[#ARGV])
  else
    redis.call('HDEL', key, ARGV[1])
  end
end
return 1
"""

# The audience (the sum of the live processes' counts) and the largest count of one process.
_SUM_LUA = """
local now = tonumber(redis.call('TIME')[1])
local total = 0
local busiest = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  local sep = string.find(value, ':', 1, true)
  if sep and now - tonumber(string.sub(value, sep + 1)) <= tonumber(ARGV[1]) then
    local count = tonumber(string.sub(value, 1, sep - 1))
    total = total + count
    busiest = math.max(busiest, count)
  end
end
return {total, busiest}
"""

_local: Counter[str] = Counter()  # debate id -> this process's open sockets
_seen: dict[str, tuple[int, int]] = {}  # debate id -> (audience, this process's part) last read
_dirty: set[str] = set()
_lock = threading.Lock()
_flusher: asyncio.Task | None = None


def alive_ttl_s() -> int:
    """Seconds a process's liveness key and audience fields last without a refresh."""
    return max(int(3 * float(settings.WS_PING_INTERVAL_S)), 5)


def _audience_key(debate_id) -> str:
    return backends.key("audience", debate_id)


# --- this process's viewers ------------------------------------------------------------------


def joined(debate_id: str) -> None:
    """Called by the hub when a checked socket starts watching the debate in this process."""
    _move(debate_id, +1)


def left(debate_id: str) -> None:
    """Called by the hub when such a socket stops watching."""
    _move(debate_id, -1)


def _move(debate_id: str, delta: int) -> None:
    with _lock:
        _local[debate_id] += delta
        if _local[debate_id] <= 0:
            del _local[debate_id]
        _dirty.add(debate_id)
    if backends.redis_url():
        _schedule_flush()


def local_counts() -> dict[str, int]:
    """This process's open sockets per debate."""
    with _lock:
        return dict(_local)


def viewers_now(debate_id: str) -> int:
    """The debate's audience without I/O: this process's exact count plus the other processes'
    as last read (DEBATE/CONNECTED.viewers)."""
    with _lock:
        here = _local.get(debate_id, 0)
        total, here_then = _seen.get(debate_id, (here, here))
    return max(total - here_then, 0) + here


# --- Redis -------------------------------------------------------------------------------------


def _schedule_flush() -> None:
    global _flusher
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # the next hub tick writes it
    if _flusher is None or _flusher.done() or _flusher.get_loop() is not loop:
        _flusher = loop.create_task(_flush_soon(), name="audience-flush")


async def _flush_soon() -> None:
    await asyncio.sleep(FLUSH_S)
    try:
        await publish_counts()
    except Exception:
        logger.warning("writing the audience counts failed", exc_info=True)


async def publish_counts(*, every: bool = False) -> None:
    """Write this process's counts of the debates that changed (``every``: of all it watches,
    the hub tick's refresh), and read back their audiences for ``viewers_now``."""
    if not backends.redis_url():
        return
    with _lock:
        ids = sorted(set(_local) | _dirty) if every else sorted(_dirty)
        _dirty.clear()
        counts = [_local.get(debate_id, 0) for debate_id in ids]
    if not ids:
        return
    written = dict(zip(ids, counts, strict=True))
    for node_ids in _by_node(ids).values():
        write = backends.redis_client(backends.debate_shard(node_ids[0])).register_script(
            _WRITE_LUA
        )
        node_counts = [written[debate_id] for debate_id in node_ids]
        await write(
            keys=[_audience_key(i) for i in node_ids],
            args=[process_id(), *node_counts, alive_ttl_s()],
        )
    totals = await _read_audiences(ids)
    with _lock:
        for debate_id, total, count in zip(ids, totals, counts, strict=True):
            if debate_id in _local:
                _seen[debate_id] = (total, count)
            else:
                _seen.pop(debate_id, None)


def _by_node(debate_ids: list[str]) -> dict[str, list[str]]:
    """The debates grouped by the Redis node that holds their keys (streaming.backends)."""
    nodes: dict[str, list[str]] = {}
    for debate_id in debate_ids:
        nodes.setdefault(backends.node_url(backends.debate_shard(debate_id)), []).append(debate_id)
    return nodes


async def _read_spreads(debate_ids: list[str]) -> list[tuple[int, int]]:
    """(audience, largest count of one process) of these debates: one pipeline per node."""
    spreads: dict[str, tuple[int, int]] = {}
    for node_ids in _by_node(debate_ids).values():
        client = backends.redis_client(backends.debate_shard(node_ids[0]))
        script = client.register_script(_SUM_LUA)
        async with client.pipeline(transaction=False) as pipe:
            for debate_id in node_ids:
                await script(keys=[_audience_key(debate_id)], args=[alive_ttl_s()], client=pipe)
            replies = await pipe.execute()
        spreads.update((i, (int(t), int(b))) for i, (t, b) in zip(node_ids, replies, strict=True))
    return [spreads[debate_id] for debate_id in debate_ids]


async def _read_audiences(debate_ids: list[str]) -> list[int]:
    return [total for total, _busiest in await _read_spreads(debate_ids)]


async def audience(debate_id) -> int:
    """The debate's audience now, over every process (one Redis call with REDIS_URL)."""
    return (await audience_spread(debate_id))[0]


async def audience_spread(debate_id) -> tuple[int, int]:
    """The debate's audience and the most viewers one server process holds of it (what each of
    its messages costs that process: a write per viewer); one Redis call with REDIS_URL."""
    key = str(debate_id)
    if not backends.redis_url():
        with _lock:
            here = _local.get(key, 0)
        return here, here
    return (await _read_spreads([key]))[0]


def audience_counts(debate_ids: Iterable) -> dict:
    """Each debate's audience, keyed as given (REST and admin; one round trip with Redis)."""
    ids = list(debate_ids)
    if not backends.redis_url():
        with _lock:
            return {debate_id: _local.get(str(debate_id), 0) for debate_id in ids}
    if not ids:
        return {}
    try:
        return _summed_counts(ids)
    except redis.RedisError:
        # Redis is down: the debates are still readable, with this process's own viewers.
        logger.warning("reading audiences failed; counting this process's viewers only")
        with _lock:
            return {debate_id: _local.get(str(debate_id), 0) for debate_id in ids}


def _summed_counts(ids: list) -> dict:
    totals: dict = {}
    for node_ids in _by_node(ids).values():
        client = backends.redis_sync_client(backends.debate_shard(node_ids[0]))
        script = client.register_script(_SUM_LUA)
        pipe = client.pipeline(transaction=False)
        for debate_id in node_ids:
            script(keys=[_audience_key(debate_id)], args=[alive_ttl_s()], client=pipe)
        totals.update((i, total) for i, (total, _b) in zip(node_ids, pipe.execute(), strict=True))
    return {debate_id: int(totals[debate_id]) for debate_id in ids}


async def process_keepalive() -> None:
    """Refresh this process's liveness key (Redis only), and its audience fields with it."""
    if backends.redis_url():
        client = backends.redis_client(process_id())
        await client.set(backends.key("process", process_id()), 1, ex=alive_ttl_s())
        await publish_counts(every=True)


async def processes_alive(processes: list[str]) -> list[bool]:
    """Whether each process's liveness key exists (Redis only; one MGET per node)."""
    by_node: dict[str, list[str]] = {}
    for process in processes:
        by_node.setdefault(backends.node_url(process), []).append(process)
    alive: dict[str, bool] = {}
    for node_processes in by_node.values():
        keys = [backends.key("process", p) for p in node_processes]
        flags = await backends.redis_client(node_processes[0]).mget(keys)
        alive.update((p, flag is not None) for p, flag in zip(node_processes, flags, strict=True))
    return [alive[process] for process in processes]


def reset() -> None:
    """Forget this process's counts (tests)."""
    global _flusher
    with _lock:
        _local.clear()
        _seen.clear()
        _dirty.clear()
    _flusher = None
