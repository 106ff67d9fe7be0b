"""Live vote tallies: DEBATE/VOTES, a latest-value snapshot per debate, coalesced.

A vote written (debates.services.vote_cast) calls ``tally_changed`` on commit. Each process
sends a debate's tallies at most once per VOTES_TALLY_INTERVAL_MS: the first change after a
quiet interval goes out at once, later ones with one trailing message at the end of the
interval, which reads the tallies afresh (one aggregate query), so however many votes arrive,
the last message carries the final tallies. The message is one channel-layer
``{"type": "debate.votes", "debate", "version", "text"}`` to the debate's group; no seq, no
event log: the tallies are a value, not a history. Each hub (streaming.fanout) keeps the newest
version it has received per debate, writes it to its local viewers at most once per interval,
and gives it to a socket right after its catch-up (a late joiner or a resuming client gets the
current tallies once, then each change).

``version`` is the number of votes written to the debate (rows plus changes of side), read in
the same query as the counts, so a higher version always holds the newer tallies, whichever
process read them.

The timer lives on the server's event loop (a sync view reaches it through ``async_to_sync``,
as debates.runs.launch does); without one (a WSGI server, a shell, the sync test client) every
change is sent at once.
"""

import asyncio
import contextlib
import contextvars
import logging
import threading
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from debates.selectors import vote_swing, vote_tallies
from streaming import protocol

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_next_at: dict[str, float] = {}  # debate id -> monotonic time of its next allowed message
_due: dict[str, asyncio.TimerHandle | None] = {}  # debate ids with a message scheduled
_tasks: set[asyncio.Task] = set()


def interval_s() -> float:
    """The coalescing interval of DEBATE/VOTES, in seconds (0: every change at once)."""
    return max(float(settings.VOTES_TALLY_INTERVAL_MS), 0.0) / 1000.0


def current(debate_id) -> tuple[int, str]:
    """The debate's tallies now as (version, DEBATE/VOTES text); a database read."""
    tallies = vote_tallies(debate_id=debate_id)
    result = vote_swing(tallies)
    message = protocol.votes(
        debate_id,
        version=tallies.version,
        before=result["before"],
        after=result["after"],
        swing=result["swing"],
        moved_to=result["moved_to"],
    )
    return tallies.version, protocol.encode(message)


async def _current_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's running loop (found once per process), or None outside a server."""
    global _loop
    with _lock:
        if _loop is not None and _loop.is_running():
            return _loop
    loop = async_to_sync(_current_loop)()
    if not loop.is_running():
        return None
    with _lock:
        _loop = loop
    return loop


def tally_changed(debate_id) -> None:
    """Called on commit after a vote changed the debate's tallies: send them, coalesced."""
    key = str(debate_id)
    loop = _server_loop()
    if loop is None:
        async_to_sync(send_tallies)(key)
        return
    # A fresh context: the timer and its task carry nothing of the request that voted.
    loop.call_soon_threadsafe(_schedule, key, context=contextvars.Context())


def _schedule(key: str) -> None:
    """On the server loop: send now after a quiet interval, else once at the interval's end."""
    if key in _due:
        return  # a message is already due: it will read these votes too
    loop = asyncio.get_running_loop()
    delay = max(_next_at.get(key, 0.0) - time.monotonic(), 0.0)
    _due[key] = None
    if delay <= 0:
        _start(loop, key)
    else:
        _due[key] = loop.call_later(delay, _start, loop, key)


def _start(loop: asyncio.AbstractEventLoop, key: str) -> None:
    _next_at[key] = time.monotonic() + interval_s()
    task = loop.create_task(_send_due(key), name="votes-tally")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _send_due(key: str) -> None:
    # Forget the due message before reading: a vote committed during the read schedules the
    # next one, which reads again.
    _due.pop(key, None)
    try:
        await send_tallies(key)
    except Exception:
        logger.warning("sending the vote tallies of debate %s failed", key, exc_info=True)


async def send_tallies(debate_id) -> int:
    """Read the debate's tallies and send them to every process watching it; their version."""
    version, text = await database_sync_to_async(current)(debate_id)
    message = {"type": "debate.votes", "debate": str(debate_id), "version": version, "text": text}
    await get_channel_layer().group_send(protocol.group_name(debate_id), message)
    return version


def reset() -> None:
    """Forget the scheduled messages and the server loop (tests)."""
    global _loop
    with _lock:
        _loop = None
    for handle in list(_due.values()):
        if handle is not None:
            handle.cancel()
    for task in list(_tasks):
        with contextlib.suppress(RuntimeError):  # its loop may be closed already
            task.cancel()
    _tasks.clear()
    _due.clear()
    _next_at.clear()
