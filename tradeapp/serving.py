"""Set up a serving process on its first scope: the stale-debate janitor, and under daphne the
server patches, GC tuning and the graceful shutdown (sockets closed with 1001, debates released
for another process to take over at once)."""

import logging
import sys

from debates.janitor import ensure_janitor
from debates.lifecycle import release_local
from streaming import server
from streaming.server.shutdown import on_shutdown
from tradeapp.gc_tuning import tune_gc

logger = logging.getLogger(__name__)


class ServingProcess:
    """ASGI wrapper: on the first scope, once, set this process up as a server: start the
    stale-debate janitor on the server's loop (daphne has no lifespan events, so the first scope
    is the earliest moment that loop is known; load balancers probe /healthz right after
    start-up), and, when daphne is the server, install streaming.server's patches and tune the
    garbage collector. Tests drive tradeapp.asgi.routing_application and get none of it.

    ``__call__`` is synchronous on purpose: daphne calls the application and writes a
    WebSocket's "connecting" access-log line right after, before the returned coroutine first
    runs, so the access-log redaction is in place for the very first line.
    """

    _asgi_single_callable = True  # asgiref would take a sync __call__ for ASGI 2

    def __init__(self, app) -> None:
        self.app = app
        self.checked = False

    def __call__(self, scope, receive, send):
        if not self.checked:
            self.checked = True
            self.set_up(send)
        return self.app(scope, receive, send)

    @staticmethod
    def set_up(send) -> None:
        """Install the patches and tune the GC when `send` is daphne's; start the janitor."""
        if server.is_daphne_send(send):
            server.install()
            tune_gc()
            # SIGTERM: sockets closed with 1001, this process's debates released for takeover.
            on_shutdown(send, release_local)
        elif "daphne.server" in sys.modules:
            logger.warning(
                "daphne serves but passes an ASGI send streaming.server does not recognise: "
                "server patches and GC tuning left off"
            )
        ensure_janitor()
