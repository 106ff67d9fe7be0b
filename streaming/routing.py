"""WebSocket URL routes."""

from django.urls import re_path

from streaming.consumers import DebateConsumer

# Any id reaches the consumer, so a malformed one gets a readable 4004 instead of a failed route;
# so does any other path (no id: 4004 after the usual checks, the rate limit first) instead of
# an HTTP 500 "No route found".
websocket_urlpatterns = [
    re_path(r"^ws/debate/(?P<debate_id>[^/]{1,64})/$", DebateConsumer.as_asgi()),
    re_path(r"", DebateConsumer.as_asgi()),
]
