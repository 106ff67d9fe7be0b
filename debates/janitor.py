"""The periodic takeover of debates whose runner died or was released, in every serving
process (every DEBATE_SWEEP_S; a debate is stale after DEBATE_STALE_AFTER_S without heartbeat)."""

import asyncio
import logging
import weakref

from asgiref.sync import sync_to_async
from django.conf import settings

from debates import lifecycle

logger = logging.getLogger(__name__)

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_tasks: set[asyncio.Task] = set()


def ensure_janitor() -> None:
    """Start, once per event loop, a task that takes over stale debates every DEBATE_SWEEP_S."""
    loop = asyncio.get_running_loop()
    if loop in _loops or settings.DEBATE_STALE_AFTER_S <= 0:
        return
    _loops.add(loop)
    task = loop.create_task(janitor(), name="debate-janitor")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def janitor() -> None:
    """Take over stale (or released) debates now, then every DEBATE_SWEEP_S; meanwhile tell the
    viewers of debates whose runner went silent that they are being recovered."""
    interval = max(float(settings.DEBATE_SWEEP_S), 0.1)
    while True:
        # Sweep first: a process that starts takes over what a dead one left at once.
        try:
            await lifecycle.tell_silent()
            await sync_to_async(lifecycle.recover)()
        except Exception:
            logger.exception("stale debate sweep failed")
        await asyncio.sleep(interval)
