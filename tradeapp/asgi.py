"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeapp.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from debates.middleware import StaleDebateJanitorMiddleware  # noqa: E402
from streaming.auth import JwtQueryAuthMiddleware  # noqa: E402
from streaming.backpressure import patch_daphne_send_buffer  # noqa: E402
from streaming.fastwrite import (  # noqa: E402
    patch_autobahn_config_log,
    patch_inline_socket_writes,
)
from streaming.redaction import patch_daphne_access_log  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402
from tradeapp.gc_tuning import tune_gc  # noqa: E402

# daphne's access log prints the request path with its query string (?token=...).
patch_daphne_access_log()
# A viewer that stops reading must not grow daphne's write buffer without bound.
patch_daphne_send_buffer()
# daphne's per-frame and per-connection overheads (streaming.fastwrite, docs/benchmarks.md).
patch_inline_socket_writes()
patch_autobahn_config_log()

# Origin is checked by the consumer (accept, DEBATE/ERROR, close 4003) so browsers see a code.
application = StaleDebateJanitorMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": JwtQueryAuthMiddleware(URLRouter(websocket_urlpatterns)),
        }
    )
)

# Last, so that everything imported so far is frozen out of the collector's passes.
tune_gc()
