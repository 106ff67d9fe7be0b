"""The periodic work of every serving process: take over debates whose runner died or was
released (every DEBATE_SWEEP_S; a debate is stale after DEBATE_STALE_AFTER_S without heartbeat),
and resolve the verdicts that have come due (every VERDICT_RESOLVE_INTERVAL_S: the track record)."""

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
    """Start, once per event loop, a task that takes over stale debates every DEBATE_SWEEP_S."""
    loop = asyncio.get_running_loop()
    if loop in _loops or settings.DEBATE_STALE_AFTER_S <= 0:
        return
    _loops.add(loop)
    task = loop.create_task(janitor(), name="debate-janitor")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def resolve_verdicts(budget_s: float) -> None:
    """One pass of the track record: resolve due verdicts, for at most ``budget_s`` seconds."""
    try:
        # Cut short, a pass loses nothing (each verdict is resolved by one atomic update).
        await asyncio.wait_for(
            track.resolve_due(limit=int(settings.VERDICTS_RESOLVED_PER_PASS)), budget_s
        )
    except TimeoutError:
        logger.warning("verdict resolution cut short after %.0f s", budget_s)
    except Exception:
        logger.exception("verdict resolution failed")


async def janitor() -> None:
    """Take over stale (or released) debates now, then every DEBATE_SWEEP_S; meanwhile tell the
    viewers of debates whose runner went silent that they are being recovered; and resolve due
    verdicts now, then every VERDICT_RESOLVE_INTERVAL_S."""
    interval = max(float(settings.DEBATE_SWEEP_S), 0.1)
    resolve_every = max(float(settings.VERDICT_RESOLVE_INTERVAL_S), 0.1)
    loop = asyncio.get_running_loop()
    resolving: asyncio.Task | None = None
    next_resolution = loop.time()
    try:
        while True:
            # Sweep first: a process that starts takes over what a dead one left at once.
            try:
                await lifecycle.tell_silent()
                await sync_to_async(lifecycle.recover)()
            except Exception:
                logger.exception("stale debate sweep failed")
            # Beside the sweep, never in its way: a slow market API must not delay a takeover.
            if loop.time() >= next_resolution and (resolving is None or resolving.done()):
                resolving = loop.create_task(
                    resolve_verdicts(resolve_every), name="verdict-resolution"
                )
                next_resolution = loop.time() + resolve_every
            await asyncio.sleep(interval)
    finally:
        if resolving is not None and not resolving.done():
            resolving.cancel()
            await asyncio.gather(resolving, return_exceptions=True)
