"""Lua scripts on Redis, batched: the calls an event loop makes within one pass of its loop go to
each Redis node as one pipeline (one write, one read), not one round trip each.

Every connect runs two short scripts (its rate-limit window, and the catch-up snapshot of its
debate's log). One round trip each costs the server's loop a send and a wake-up; in a storm of
thousands of connects a second those round trips (and their wait for a pooled connection) were
most of the set-up time (docs/benchmarks.md). A call waits at most until the loop's current pass
ends; a lone call costs what it did before. Scripts run by their SHA1 (EVALSHA); a node that
does not know one (restarted, or never asked) is sent the script once and the calls again.
"""

import asyncio
import hashlib
from dataclasses import dataclass, field

from redis.exceptions import NoScriptError

from streaming import backends
from streaming.backends import PerLoop

MAX_PIPELINE = 1000


@dataclass(frozen=True)
class LuaScript:
    """A Lua script's text and its SHA1 (what EVALSHA names it by)."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())  # noqa: S324


Call = tuple[LuaScript, list, list, asyncio.Future]


class _Batches:
    """The calls queued on one event loop, per Redis node, until the loop's pass ends."""

    def __init__(self) -> None:
        self.queued: dict[str, tuple[str, list[Call]]] = {}  # node URL -> (a shard, calls)
        self.sending: set[asyncio.Task] = set()

    def add(self, shard, call: Call) -> None:
        if not self.queued:
            asyncio.get_running_loop().call_soon(self.flush)
        url = backends.node_url(shard)
        self.queued.setdefault(url, (shard, []))[1].append(call)

    def flush(self) -> None:
        queued, self.queued = self.queued, {}
        for shard, calls in queued.values():
            for start in range(0, len(calls), MAX_PIPELINE):
                task = asyncio.create_task(_send(shard, calls[start : start + MAX_PIPELINE]))
                self.sending.add(task)
                task.add_done_callback(self.sending.discard)


_batches: PerLoop[_Batches] = PerLoop(_Batches)


async def run_script(shard, script: LuaScript, keys: list, args: list):
    """Run `script` on the Redis node of `shard` (streaming.backends.node_url), batched with the
    other calls of this loop pass; return its reply."""
    future = asyncio.get_running_loop().create_future()
    _batches.get().add(shard, (script, keys, args, future))
    return await future


async def _pipeline(client, calls: list[Call]) -> list:
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args, _future in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


async def _send(shard, calls: list[Call]) -> None:
    client = backends.redis_client(shard)
    try:
        replies = await _pipeline(client, calls)
        unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            for script in {calls[i][0] for i in unknown}:
                await client.script_load(script.text)
            again = await _pipeline(client, [calls[i] for i in unknown])
            for i, reply in zip(unknown, again, strict=True):
                replies[i] = reply
    except BaseException as exc:
        for *_call, future in calls:
            if future.done():
                continue
            if isinstance(exc, Exception):
                future.set_exception(_own_copy(exc))  # each waiter raises the failure's type
            else:
                future.cancel()
        if not isinstance(exc, Exception):
            raise
        return
    for (*_call, future), reply in zip(calls, replies, strict=True):
        if future.done():
            continue  # its socket went away meanwhile
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)


def _own_copy(exc: Exception) -> Exception:
    """A copy of `exc` for one waiter (a shared one would grow its traceback with every raise)."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # noqa: BLE001 - a type that cannot be rebuilt is shared as it is
        return exc
    copy.__cause__ = exc
    return copy
