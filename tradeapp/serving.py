"""Set up a daphne serving process on its first scope: the server patches and GC tuning."""

import logging
import sys

from streaming import server
from tradeapp.gc_tuning import tune_gc

logger = logging.getLogger(__name__)


class DaphneServingSetup:
    """ASGI wrapper: on the first scope, when daphne is the server, install streaming.server's
    patches and tune the garbage collector, once; tests and other servers get neither.

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
        """Install the patches and tune the GC when `send` is daphne's."""
        if server.is_daphne_send(send):
            server.install()
            tune_gc()
        elif "daphne.server" in sys.modules:
            logger.warning(
                "daphne serves but passes an ASGI send streaming.server does not recognise: "
                "server patches and GC tuning left off"
            )
