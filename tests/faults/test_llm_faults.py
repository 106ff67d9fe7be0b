"""LLM faults through the OpenAI-compatible stub (a real HTTP server, the real langchain-openai
client): a slow first token, a stall mid-stream, 429 and 503 with Retry-After, a malformed SSE
chunk, a reset connection. A failed turn is restarted with backoff a bounded number of times
(its TURN_CHANGE again, then the whole turn); past that the debate fails with a clear error
event and its finished arguments kept."""

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from debates import services
from debates.models import Argument
from debates.runs.run import DebateRun
from streaming import protocol
from tests.stubs.events import (
    BIG_LAYER,
    EventCollector,
    close_async_db_connections,  # noqa: F401 - a fixture
)
from tests.stubs.openai_stub import OpenAIStub

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]

TURN_RETRIES = 2


@pytest.fixture
def stub():
    server = OpenAIStub().start()
    with override_settings(
        DEBATE_LLM="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.base_url,
        OPENAI_MODEL="stub-model",
        OPENAI_TIMEOUT_S=2.0,
        OPENAI_MAX_RETRIES=1,
        DEBATE_LLM_TURN_RETRIES=TURN_RETRIES,
        TOKEN_FLUSH_INTERVAL_MS=0,
        CHANNEL_LAYERS=BIG_LAYER,
    ):
        yield server
    server.stop()


async def _run(user, max_turns: int) -> tuple[str, EventCollector, object]:
    debate = await sync_to_async(services.debate_create)(
        asset="ETH", max_turns=max_turns, created_by=user
    )
    debate = await sync_to_async(services.debate_claim)(debate=debate, runner_id="r1")
    async with EventCollector(debate.id) as events:
        status = await DebateRun(debate.id, runner_id="r1").run()
        await events.finished.wait()
    await debate.arefresh_from_db()
    return status, events, debate


def _turn_text(events: EventCollector, turn: int) -> str:
    """The text of `turn` as a client builds it: tokens since that turn's last TURN_CHANGE."""
    text = ""
    for event in events.events:
        payload = event["payload"]
        if event["type"] == protocol.TURN_CHANGE and payload["turn"] == turn:
            text = ""  # (re)starts the turn
        elif event["type"] == protocol.TOKEN_RECEIVED and payload["turn"] == turn:
            text += payload["token"]
    return text


async def _saved(debate) -> list[tuple[int, str]]:
    return [(a.turn, a.content) async for a in Argument.objects.filter(debate=debate)]


async def test_a_reset_and_a_malformed_stream_restart_the_turn(stub, user):
    stub.plan.extend(["ok", "drop", "malformed"])  # turn 2 fails twice, then streams
    status, events, debate = await _run(user, max_turns=2)
    assert status == "completed", debate.error
    assert stub.behaviours[:4] == ["ok", "drop", "malformed", "ok"]
    turn_changes = [p["turn"] for p in events.of(protocol.TURN_CHANGE)]
    assert turn_changes.count(2) == 3  # the turn, and each restart
    saved = await _saved(debate)
    assert [turn for turn, _ in saved] == [1, 2, 3]
    for turn, content in saved[:2]:
        assert _turn_text(events, turn) == content
    completes = events.of(protocol.ARGUMENT_COMPLETE)
    assert [c["turn"] for c in completes] == [1, 2, 3]


async def test_a_slow_first_token_waits_and_a_stall_restarts_the_turn(stub, user):
    stub.plan.extend(["slow", "stall"])  # turn 1 slow but in time; turn 2 stalls past the timeout
    status, events, debate = await _run(user, max_turns=2)
    assert status == "completed", debate.error
    assert stub.behaviours[:3] == ["slow", "stall", "ok"]
    saved = await _saved(debate)
    assert [turn for turn, _ in saved] == [1, 2, 3]
    assert _turn_text(events, 2) == saved[1][1]


async def test_429_and_503_with_retry_after_are_retried(stub, user):
    # 429: the client's own retry (after Retry-After); 503 again: the turn is restarted.
    stub.plan.extend(["429", "503"])
    status, _events, debate = await _run(user, max_turns=1)
    assert status == "completed", debate.error
    assert stub.behaviours[:3] == ["429", "503", "ok"]
    assert [turn for turn, _ in await _saved(debate)] == [1, 2]


async def test_an_endpoint_that_keeps_failing_fails_the_debate_clearly(stub, user):
    stub.plan.append("ok")
    stub.default = "503"
    status, events, debate = await _run(user, max_turns=3)
    assert status == "failed"
    assert debate.error == "LLM endpoint returned HTTP 503."
    # Bounded: the client's 1 + 1 attempts, for the turn and each of its restarts.
    assert len(stub.requests) == 1 + 2 * (1 + TURN_RETRIES)
    assert await _saved(debate) == [(1, stub.replies[0])]
    assert events.events[-1]["payload"]["status"] == "failed"
    assert [c["turn"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == [1]
