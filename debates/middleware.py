"""ASGI middleware that starts a serving process's stale-debate janitor on its first request."""

from debates.runs.janitor import ensure_janitor


class StaleDebateJanitorMiddleware:
    """Start the janitor on the first HTTP or WebSocket scope, on the server's own event loop.

    daphne has no lifespan events, so the first scope is the earliest moment the server loop is
    known; load balancers probe /healthz and /readyz right after start-up, so in production that
    is within seconds of the process starting.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.started = False

    async def __call__(self, scope, receive, send):
        if not self.started and scope["type"] in ("http", "websocket"):
            self.started = True
            ensure_janitor()
        return await self.app(scope, receive, send)
