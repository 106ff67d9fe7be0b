"""Hypothesis-generated client frames and query strings against the consumer: always a typed
answer (never a crash, a 4500 or a 1011), and another viewer of the debate keeps its events."""

import json
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from debates.models import Debate, DebateStatus
from streaming import protocol
from streaming.fanout import close_hub
from streaming.publisher import publish_event
from tests.streaming.conftest import ORIGIN, QA_TOKEN, application, connect

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(max_examples=40)  # on the profile of tests/conftest.py

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TYPES = st.sampled_from([protocol.PING, protocol.PONG, protocol.CONNECTED, "", "DEBATE/", None])
FRAMES = st.one_of(
    st.text(max_size=200).map(lambda text: {"text": text}),
    st.binary(min_size=1, max_size=64).map(lambda data: {"bytes": data}),
    JSON_VALUES.map(lambda value: {"text": json.dumps(value)}),
    st.builds(
        lambda kind, extra: {"text": json.dumps({"type": kind, **extra})},
        TYPES,
        st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
    ),
    st.integers(1, 3000).map(lambda depth: {"text": "[" * depth + "]" * depth}),
)
PARAM_NAMES = st.sampled_from(["token", "lastSeq", "lastseq", "x", ""]) | st.text(max_size=8)
PARAM_VALUES = (
    st.sampled_from([QA_TOKEN, "0", "-1", "99999999999999999999", "1e3", "", "null"])
    | st.text(max_size=40)
    | st.integers().map(str)
)
QUERIES = st.one_of(
    st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=4).map(
        lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    ),
    st.text(max_size=80).map(lambda text: quote(text, safe="=&%;+")),
)


def _answer_kind(message: dict) -> str:
    if message["type"] == protocol.ERROR:
        return f"error {message['payload']['code']}"
    return message["type"]


async def _viewer_still_served(viewer: WebsocketCommunicator, debate_id) -> None:
    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "running"})
    event = await viewer.receive_json_from(timeout=10)
    assert event["type"] == protocol.STATUS_UPDATE


async def _new_debate_id():
    """A running debate of this example's own (no events from earlier examples to replay)."""
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.RUNNING, runner_id="fuzz", heartbeat_at=timezone.now()
    )
    return debate.id


async def _frames_scenario(frames: list[dict]) -> None:
    debate_id = await _new_debate_id()
    viewer, _ = await connect(debate_id)
    client, _ = await connect(debate_id)
    try:
        for frame in frames:
            await client.send_input({"type": "websocket.receive", **frame})
            while not await client.receive_nothing(timeout=0.02):
                output = await client.receive_output(timeout=5)
                assert output["type"] == "websocket.send", output
                answer = _answer_kind(json.loads(output["text"]))
                assert answer in {protocol.PONG, "error 4400"}, (frame, answer)
        # The fuzzing client is still open: a valid PING is answered, events still come.
        await client.send_json_to({"type": protocol.PING})
        assert (await client.receive_json_from(timeout=5))["type"] == protocol.PONG
        await _viewer_still_served(viewer, debate_id)
        assert (await client.receive_json_from(timeout=5))["type"] == protocol.STATUS_UPDATE
    finally:
        await client.disconnect()
        await viewer.disconnect()
        await close_hub()


async def _query_scenario(query: str) -> None:
    debate_id = await _new_debate_id()
    viewer, _ = await connect(debate_id)
    client = WebsocketCommunicator(
        application, f"/ws/debate/{debate_id}/?{query}", headers=[(b"origin", ORIGIN.encode())]
    )
    client.scope["client"] = ("127.0.0.1", 50001)
    try:
        connected, _ = await client.connect(timeout=10)
        assert connected
        first = json.loads((await client.receive_output(timeout=10))["text"])
        assert _answer_kind(first) in {protocol.CONNECTED, "error 4001"}, (query, first)
        if first["type"] == protocol.ERROR:
            close = await client.receive_output(timeout=10)
            assert close == {"type": "websocket.close", "code": 4001}
        await _viewer_still_served(viewer, debate_id)
    finally:
        await client.disconnect()
        await viewer.disconnect()
        await close_hub()


@FUZZ
@given(frames=st.lists(FRAMES, max_size=6))
def test_any_client_frames_get_a_typed_answer_and_spare_other_viewers(frames):
    async_to_sync(_frames_scenario)(frames)


@FUZZ
@given(query=QUERIES)
def test_any_query_string_gets_connected_or_4001_and_spares_other_viewers(query):
    async_to_sync(_query_scenario)(query)
