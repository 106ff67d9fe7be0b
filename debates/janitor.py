"""The periodic work of every serving process: take over debates whose runner died, and
resolve the verdicts that have come due (the track record)."""

import asyncio
import logging
import weakref

from asgiref.sync import sync_to_async
from django.conf import settings

from debates import lifecycle, track

logger = logging.getLogger(__name__)

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_tasks: set[asyncio.Task] = set()


def ensure_janitor() -> None:
    """Start, once per event loop, a task that takes over stale debates every STALE_AFTER_S."""
    loop = asyncio.get_running_loop()
    if loop in _loops or settings.DEBATE_STALE_AFTER_S <= 0:
        return
    _loops.add(loop)
    task = loop.create_task(janitor(), name="debate-janitor")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def janitor() -> None:
    """Take over stale debates and resolve due verdicts now, then every DEBATE_STALE_AFTER_S."""
    interval = float(settings.DEBATE_STALE_AFTER_S)
    while True:
        # Sweep first: a process that starts takes over what a dead one left at once.
        try:
            await sync_to_async(lifecycle.recover)()
        except Exception:
            logger.exception("stale debate sweep failed")
        try:
            # Bounded by the interval: a slow market API must not hold up the next takeover.
            # Cut short, a pass loses nothing (each forecast is resolved by one atomic update).
            await asyncio.wait_for(
                track.resolve_due(limit=int(settings.VERDICTS_RESOLVED_PER_PASS)), interval
            )
        except TimeoutError:
            logger.warning("verdict resolution cut short after %.0f s", interval)
        except Exception:
            logger.exception("verdict resolution failed")
        await asyncio.sleep(interval)
