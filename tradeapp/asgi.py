"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Importing this module changes nothing outside the app: ``routing_application`` is the plain
routing (what tests drive), and ``application`` (what servers serve) wraps it with
tradeapp.serving, which on the first scope starts the stale-debate janitor and, under daphne,
installs the server patches and tunes the GC.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeapp.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from streaming.auth import JwtQueryAuthMiddleware  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402
from tradeapp.serving import ServingProcess  # noqa: E402

# Origin is checked by the consumer (accept, DEBATE/ERROR, close 4003) so browsers see a code.
routing_application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": JwtQueryAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)

application = ServingProcess(routing_application)
