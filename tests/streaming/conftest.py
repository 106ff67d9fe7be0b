"""Fixtures for streaming tests: isolated settings, a debate, and WebSocket communicators."""

import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from debates.models import Debate, DebateStatus
from streaming.fanout import close_hub
from tradeapp.asgi import routing_application as application  # no serving hooks

ORIGIN = "http://localhost:8000"
QA_TOKEN = "qa-token-for-tests"


@pytest.fixture(autouse=True)
def ws_settings(settings, redis_prefix):
    """In-process back-ends, a generous rate limit and keys no other test shares."""
    settings.DEBUG = True  # pytest-django turns DEBUG off; the QA token needs it
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.WS_ALLOWED_ORIGINS = [ORIGIN]
    settings.WS_QA_TOKEN = QA_TOKEN
    settings.WS_RATE_LIMIT = "10000/minute"
    settings.WS_PING_INTERVAL_S = 3600
    settings.TOKEN_FLUSH_INTERVAL_MS = 0
    settings.STREAMING_KEY_PREFIX = redis_prefix
    # No stale-debate janitor: these tests publish their own events for their debates.
    settings.DEBATE_STALE_AFTER_S = 0
    return settings


@pytest.fixture(autouse=True)
async def _hub_cleanup():
    """Stop this test's hub tasks with its event loop."""
    yield
    await close_hub()


@pytest.fixture
def use_redis(settings, redis_url):
    """Switch the streaming back-ends to the real Redis (keys under the test's prefix)."""
    settings.REDIS_URL = redis_url
    return redis_url


@pytest.fixture
def debate(db):
    """A running debate."""
    return Debate.objects.create(
        asset="AAPL", status=DebateStatus.RUNNING, runner_id="test", heartbeat_at=timezone.now()
    )


def communicator(
    debate_id,
    *,
    token: str | None = QA_TOKEN,
    last_seq=None,
    origin: str | None = ORIGIN,
    client=("127.0.0.1", 50000),
    headers=(),
) -> WebsocketCommunicator:
    """A communicator for /ws/debate/<id>/ with the given token, lastSeq, Origin and peer."""
    query = []
    if token is not None:
        query.append(f"token={token}")
    if last_seq is not None:
        query.append(f"lastSeq={last_seq}")
    path = f"/ws/debate/{debate_id}/" + ("?" + "&".join(query) if query else "")
    all_headers = list(headers)
    if origin is not None:
        all_headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, path, headers=all_headers)
    if client is not None:
        comm.scope["client"] = client
    return comm


async def connect(debate_id, **kwargs) -> tuple[WebsocketCommunicator, dict]:
    """Connect and return the communicator with its first message."""
    comm = communicator(debate_id, **kwargs)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    first = await comm.receive_json_from(timeout=10)
    return comm, first


async def expect_refusal(comm: WebsocketCommunicator, code: int) -> dict:
    """Assert the socket sends DEBATE/ERROR with `code` and closes with it."""
    connected, _ = await comm.connect(timeout=10)
    assert connected  # accepted first, so browsers can read the close code
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == "DEBATE/ERROR"
    assert error["payload"]["code"] == code
    close = await comm.receive_output(timeout=10)
    assert close == {"type": "websocket.close", "code": code}
    return error


async def receive_until(comm: WebsocketCommunicator, predicate, limit: int = 500) -> list[dict]:
    """Receive messages until one satisfies predicate; return all of them."""
    seen = []
    for _ in range(limit):
        message = await comm.receive_json_from(timeout=10)
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"no matching message in {limit}")


def new_id() -> str:
    """A debate id that does not exist."""
    return str(uuid.uuid4())
