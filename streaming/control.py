"""The one control channel: commands to the server process that holds a socket or runs a debate.

Every process that may receive commands listens on one channel-layer group of its own,
``control.<process>`` (one subscription per process, started by its hub or its first run:
``ensure_listening``). ``send(process, message)`` dispatches at once when the process is this
one, and otherwise publishes to that process's group (with REDIS_URL; without it one process
is everything). Handlers are registered per message type by the app that owns them, in its
AppConfig.ready(): streaming closes viewers (``viewers.disconnect``), debates stops and steers
its runs (``debate.stop``). A handler is called on the listener's loop, or in the sender's
thread for a local command, so it must be quick and thread-safe (hop to its own loop).
"""

import asyncio
import logging
import re
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils.module_loading import import_string

from streaming import backends
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]

_handlers: dict[str, Handler | str] = {}
_listener: asyncio.Task | None = None


def group_for(process: str) -> str:
    """The control group of a process (channel-layer group names allow [a-zA-Z0-9._-])."""
    return "control." + re.sub(r"[^a-zA-Z0-9._-]", "-", process)[:90]


def handle(message_type: str, handler: Handler | str) -> None:
    """Register the handler of one command type (an app's ready()); a dotted path is imported
    when the first such command arrives, so registering costs an app no start-up time."""
    _handlers[message_type] = handler


def dispatch(message: dict) -> bool:
    """Run the command's handler here; False when nothing handles its type."""
    message_type = message.get("type", "")
    handler = _handlers.get(message_type)
    if handler is None:
        logger.warning("no handler for control message %r", message_type)
        return False
    try:
        if isinstance(handler, str):
            handler = _handlers[message_type] = import_string(handler)
        handler(message)
    except Exception:
        logger.exception("control message %r failed", message.get("type"))
    return True


async def send(process: str, message: dict) -> None:
    """Deliver a command to the process (here at once, else through the channel layer)."""
    if process == process_id() or not backends.redis_url():
        dispatch(message)
        return
    await get_channel_layer().group_send(group_for(process), message)


def send_sync(process: str, message: dict) -> None:
    """``send`` from sync code (views, admin actions, commands)."""
    if process == process_id() or not backends.redis_url():
        dispatch(message)
        return
    async_to_sync(send)(process, message)


async def ensure_listening() -> None:
    """Listen on this process's control group from the running loop, unless already listening
    (only with REDIS_URL: without it every command is local)."""
    global _listener
    if not backends.redis_url():
        return
    if _listener is not None and not _listener.done() and not _listener.get_loop().is_closed():
        return
    layer = get_channel_layer()
    channel = await layer.new_channel("control.")
    await layer.group_add(group_for(process_id()), channel)
    _listener = asyncio.get_running_loop().create_task(_listen(channel), name="control")


async def _listen(channel: str) -> None:
    layer = get_channel_layer()
    try:
        while True:
            try:
                dispatch(await layer.receive(channel))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("control channel receive failed")
                await asyncio.sleep(0.5)
    finally:
        try:
            await layer.group_discard(group_for(process_id()), channel)
        except Exception:
            logger.debug("control group_discard failed", exc_info=True)


async def stop_listening() -> None:
    """Stop this process's listener when it runs on this loop (tests, shutdown)."""
    global _listener
    task, _listener = _listener, None
    if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def forget_listener() -> None:
    """Cancel the listener on whatever loop runs it, and forget it (tests)."""
    global _listener
    task, _listener = _listener, None
    if task is not None and not task.done() and not task.get_loop().is_closed():
        task.get_loop().call_soon_threadsafe(task.cancel)
