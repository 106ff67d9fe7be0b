"""A graceful stop of a daphne process: on SIGTERM, before Twisted shuts down, run a coroutine
(the caller's hand-over) and close every open WebSocket with 1001 (going away).

Not a patch (nothing is replaced): ``on_shutdown(send, hand_over)`` registers a Twisted
"before shutdown" trigger on the reactor of the daphne server behind ``send``. Without it daphne
cancels its consumers and drops the sockets (clients see 1006), and the debates it ran wait to
go stale before anyone takes them over. Written for daphne 4.2.3 (``Server.connections``, the
protocol behind its ASGI send) and Twisted 26.10.0; the 1001 goes out through daphne's
``serverClose`` (streaming.server.close_codes lets autobahn send RFC codes).
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from streaming.server.fast_path import daphne_protocol

logger = logging.getLogger(__name__)

GOING_AWAY = 1001
HAND_OVER_TIMEOUT_S = 8.0

_registered = False


def close_websockets(server, code: int = GOING_AWAY) -> int:
    """Send a close frame with `code` on every open WebSocket of the daphne server; how many."""
    ws_protocol = sys.modules.get("daphne.ws_protocol")
    closed = 0
    for protocol in list(getattr(server, "connections", {})):
        if ws_protocol is None or not isinstance(protocol, ws_protocol.WebSocketProtocol):
            continue
        try:
            protocol.serverClose(code=code)
            closed += 1
        except Exception:  # one socket that cannot close must not stop the others
            logger.debug("closing a socket on shutdown failed", exc_info=True)
    return closed


def on_shutdown(send, hand_over: Callable[[], Awaitable[object]]) -> bool:
    """Once per process: on daphne's shutdown, close its sockets with 1001, then await
    `hand_over()` (at most HAND_OVER_TIMEOUT_S) before the reactor stops; False when `send` is
    not daphne's."""
    global _registered
    protocol = daphne_protocol(send)
    if protocol is None or _registered:
        return False
    server = send.func.__self__
    from twisted.internet import defer, reactor  # a daphne process: its reactor is installed

    def before_shutdown():
        closed = close_websockets(server)
        logger.info("shutting down: %d sockets closed with %d", closed, GOING_AWAY)
        task = asyncio.ensure_future(asyncio.wait_for(hand_over(), HAND_OVER_TIMEOUT_S))
        deferred = defer.Deferred.fromFuture(task)
        deferred.addErrback(lambda failure: logger.error("hand-over failed: %s", failure.value))
        return deferred

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    _registered = True
    return True
