"""WebSocket URL routes."""

from django.urls import re_path

from streaming.consumers import DebateConsumer

# Any id reaches the consumer, so a malformed one gets a readable 4004 instead of a failed route.
websocket_urlpatterns = [
    re_path(r"^ws/debate/(?P<debate_id>[^/]{1,64})/$", DebateConsumer.as_asgi()),
]
