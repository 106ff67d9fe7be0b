"""The real langchain-openai client against a local OpenAI-compatible SSE stub, end to end."""

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from debates import services
from debates.models import Argument
from debates.runs.run import DebateRun, llm_turn_retries
from streaming import protocol
from tests.stubs.events import (
    BIG_LAYER,
    EventCollector,
    close_async_db_connections,  # noqa: F401 - a fixture
)
from tests.stubs.openai_stub import OpenAIStub, tokens_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


@pytest.fixture
def stub():
    server = OpenAIStub().start()
    with override_settings(
        DEBATE_LLM="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.base_url,
        OPENAI_MODEL="stub-model",
        OPENAI_TIMEOUT_S=0.5,
        OPENAI_MAX_RETRIES=0,
        TOKEN_FLUSH_INTERVAL_MS=0,
        CHANNEL_LAYERS=BIG_LAYER,
    ):
        yield server
    server.stop()


@pytest.fixture
def claimed(user):
    def make(max_turns=2):
        debate = services.debate_create(asset="ETH", max_turns=max_turns, created_by=user)
        return services.debate_claim(debate=debate, runner_id="r1")

    return make


async def test_chatopenai_streams_through_the_runner_in_order(stub, claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    async with EventCollector(debate.id) as events:
        assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
        await events.finished.wait()
    assert len(stub.requests) == 3
    assert all(r["stream"] is True and r["model"] == "stub-model" for r in stub.requests)
    for turn, reply in enumerate(stub.replies, start=1):
        got = [t["token"] for t in events.of(protocol.TOKEN_RECEIVED) if t["turn"] == turn]
        assert "".join(got) == reply
        assert got == tokens_of(reply)  # token by token, in order
    rows = [(a.agent, a.content) async for a in Argument.objects.filter(debate=debate)]
    assert rows == list(zip(["bull", "bear", "moderator"], stub.replies, strict=True))
    # The bear's prompt quoted the bull's streamed argument verbatim.
    bear_prompt = "\n".join(m["content"] for m in stub.requests[1]["messages"])
    assert stub.replies[0] in bear_prompt
    await debate.arefresh_from_db()
    assert debate.verdict == {
        "recommendation": "buy",
        "confidence": 0.8,
        "rationale": "The bull cited stronger numbers.",
    }


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("500", "LLM endpoint returned HTTP 500."),
        ("hang", "LLM request timed out."),
        ("drop", "LLM connection failed or was closed mid-stream"),
        ("malformed", "LLM sent a malformed stream chunk (invalid JSON)."),
        ("no_done", "LLM answer incomplete: The model's stream ended before the answer was"),
    ],
)
async def test_llm_failures_fail_the_debate_clearly_and_keep_finished_turns(
    stub, claimed, behaviour, error
):
    # The first turn succeeds; then the endpoint keeps failing: the turn is retried
    # DEBATE_LLM_TURN_RETRIES times (tests/faults/test_llm_faults.py), then the debate fails.
    stub.plan.append("ok")
    stub.default = behaviour
    debate = await sync_to_async(claimed)(max_turns=3)
    async with EventCollector(debate.id) as events:
        assert await DebateRun(debate.id, runner_id="r1").run() == "failed"
        await events.finished.wait()
    await debate.arefresh_from_db()
    assert debate.status == "failed"
    assert debate.error.startswith(error), debate.error
    assert "Traceback" not in debate.error
    rows = [(a.turn, a.content) async for a in Argument.objects.filter(debate=debate)]
    assert rows == [(1, stub.replies[0])]
    assert events.events[-1]["payload"]["status"] == "failed"
    assert [c["turn"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == [1]
    assert len(stub.requests) == 2 + llm_turn_retries()
