"""Where a run goes (which event loop), and stopping a run wherever it is.

Getting onto an event loop. DRF 3.18 has no async views, so start/cancel are sync views; under
daphne Django runs them in asgiref's SyncToAsync thread, where ``async_to_sync`` runs a
coroutine on the server's own event loop. With Redis (REDIS_URL), ``launch()`` runs the debate
on this process's runner loop, in one daemon thread: a large audience's fan-out on the server
loop then neither delays the first token nor slows the debate (socket writes release the GIL),
and the Redis channel layer and event log work from any loop. Without Redis the in-memory
channel layer belongs to the server loop, so the debate must run there: ``launch()`` finds that
loop through ``async_to_sync`` (public asgiref behaviour: it runs a one-line coroutine and gets
back the loop it ran on) and schedules the debate on it with ``asyncio.run_coroutine_threadsafe``.
If that loop is not running (a WSGI server, the sync test client, a shell), asgiref made a
throwaway loop, so the runner loop is used as well. From async code (run_debate, async tests)
``launch()`` just creates a task. Every task is kept until it
ends so it is never garbage-collected mid-debate.

Stopping. ``stop(debate_id, runner_id)`` reaches the debate's run in this process at once, or in
the process that runs it through the control channel (``debate.stop``, streaming.control, handled
by debates.runs.run.on_stop_command); the run's heartbeat is the fallback when that message is
lost.
"""

import asyncio
import concurrent.futures
import contextvars
import logging
import threading

from asgiref.sync import async_to_sync
from django.conf import settings

from debates.runs.run import DebateRun
from streaming import control

logger = logging.getLogger(__name__)

MAX_KEPT_FUTURES = 1000

_tasks: set[asyncio.Task] = set()
_futures: dict[str, concurrent.futures.Future] = {}
_lock = threading.Lock()
_runner_thread_loop: asyncio.AbstractEventLoop | None = None
_runner_thread: threading.Thread | None = None


async def _current_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's loop when called from a sync view under it, else None."""
    loop = async_to_sync(_current_loop)()
    return loop if loop.is_running() else None


def _runner_thread_wanted() -> bool:
    return bool(settings.REDIS_URL)


def runner_loop() -> asyncio.AbstractEventLoop:
    """This process's own runner loop, in a daemon thread (see the module docstring)."""
    global _runner_thread_loop, _runner_thread
    with _lock:
        if _runner_thread_loop is None or _runner_thread_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="debate-runner", daemon=True)
            thread.start()
            _runner_thread_loop, _runner_thread = loop, thread
        return _runner_thread_loop


async def _cancel_everything() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stop_runner_loop(timeout: float = 10.0) -> None:
    """Cancel what runs on this process's runner loop, then stop and close it (tests)."""
    global _runner_thread_loop, _runner_thread
    with _lock:
        loop, thread = _runner_thread_loop, _runner_thread
        _runner_thread_loop = _runner_thread = None
    if loop is None or loop.is_closed():
        return
    asyncio.run_coroutine_threadsafe(_cancel_everything(), loop).result(timeout)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)
    loop.close()


async def _tracked(run: DebateRun) -> str:
    task = asyncio.current_task()
    _tasks.add(task)
    try:
        return await run.run()
    except Exception:
        # Nobody may await a background run: say why it crashed (its heartbeat goes stale).
        logger.exception("runner of debate %s crashed", run.debate_id)
        raise
    finally:
        _tasks.discard(task)


def launch(debate_id, **run_kwargs) -> asyncio.Task | concurrent.futures.Future:
    """Run a claimed debate in the background on this process's event loop."""
    run = DebateRun(debate_id, **run_kwargs)
    run.register()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        run.loop = loop
        task = loop.create_task(_tracked(run))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return task
    loop = None if _runner_thread_wanted() else _server_loop()
    loop = loop or runner_loop()
    run.loop = loop
    # Start the task in an empty context: the request's context holds asgiref's executor for the
    # view's thread, which quits when the request ends, and sync_to_async would then fail.
    future = contextvars.Context().run(asyncio.run_coroutine_threadsafe, _tracked(run), loop)
    with _lock:
        if len(_futures) >= MAX_KEPT_FUTURES:
            for key in [k for k, f in _futures.items() if f.done()]:
                del _futures[key]
        _futures[run.debate_id] = future
    return future


def background_future(debate_id) -> concurrent.futures.Future | None:
    """The future of a debate launched from sync code (kept after it ends, for tests and tools)."""
    return _futures.get(str(debate_id))


def stop(debate_id, runner_id: str, reason: str = "cancelled") -> None:
    """Tell the debate's run, in whichever process runs it, to stop now (sync, thread-safe)."""
    message = {"type": "debate.stop", "debate": str(debate_id), "reason": reason}
    try:
        control.send_sync(runner_id, message)
    except Exception:
        # The status is already in the database; the run sees it at its next heartbeat.
        logger.exception("could not send the stop of debate %s", debate_id)


def notify(debate_id, runner_id: str) -> None:
    """Wake the debate's run, wherever it runs, to read its moderator controls now (sync,
    thread-safe); the run's heartbeat reads them anyway, so a lost message only delays it."""
    if not runner_id:
        return
    message = {"type": "debate.controls", "debate": str(debate_id)}
    try:
        control.send_sync(runner_id, message)
    except Exception:
        logger.exception("could not wake the run of debate %s", debate_id)
