"""Usage and cost: the endpoint's own usage, our estimate, the offline model's counts, prices."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from langchain_core.messages import HumanMessage, SystemMessage

from debates import costs, services
from debates.engine.llm import OfflineAnalystModel, tokenize
from debates.engine.market import SampleMarketData
from debates.engine.nodes import speaker_messages
from debates.engine.state import initial_state
from debates.models import Argument
from debates.runs.run import DebateRun
from streaming import protocol
from tests.stubs.events import (
    BIG_LAYER,
    EventCollector,
    close_async_db_connections,  # noqa: F401 - a fixture
)
from tests.stubs.openai_stub import OpenAIStub, usage_for
from tradeapp.env import env_prices

PRICES = {
    "stub-model": {"prompt": 2, "completion": 8},
    "stub-model-mini": {"prompt": 1, "completion": 1},
}


# --- The price table and the cost (no database) ---------------------------------------------


@override_settings(LLM_PRICES=PRICES)
def test_cost_from_the_price_table_by_hand():
    # 1,000 prompt tokens at $2/M + 500 completion tokens at $8/M = 0.002 + 0.004.
    assert costs.cost_of("stub-model", 1000, 500) == Decimal("0.006")
    # A dated release takes its family's price; the longest matching name wins.
    assert costs.cost_of("stub-model-2025-01-01", 1000, 500) == Decimal("0.006")
    assert costs.cost_of("stub-model-mini-2025", 1000, 500) == Decimal("0.0015")
    assert costs.cost_of("stub-model", 1, 0) == Decimal("0.000002")


@override_settings(LLM_PRICES=PRICES)
def test_an_unknown_model_costs_null_and_so_does_any_total_with_it():
    assert costs.cost_of("no-such-model", 1000, 500) is None
    assert costs.cost_of("stub", 1000, 500) is None  # a prefix of a known name is not that name
    usage = costs.DebateUsage()
    usage.add("bull", 1000, 500, costs.cost_of("stub-model", 1000, 500), estimated=False)
    assert usage.wire()["total"] == {"promptTokens": 1000, "completionTokens": 500, "cost": 0.006}
    usage.add("bear", 10, 5, costs.cost_of("no-such-model", 10, 5), estimated=True)
    wire = usage.wire()
    assert wire["perAgent"]["bull"]["cost"] == 0.006
    assert wire["perAgent"]["bear"] == {"promptTokens": 10, "completionTokens": 5, "cost": None}
    assert wire["total"] == {"promptTokens": 1010, "completionTokens": 505, "cost": None}
    assert wire["estimated"] is True
    assert usage.reached(1515, None)
    assert not usage.reached(1516, None)
    assert not usage.reached(
        None, Decimal("0.001")
    )  # an unknown cost never reaches a dollar budget


def test_default_prices_include_common_models_and_the_free_offline_model(settings):
    assert costs.price_of("offline-analyst") == (Decimal(0), Decimal(0))
    assert costs.price_of("gpt-4o-mini-2024-07-18") == (Decimal("0.15"), Decimal("0.6"))
    assert costs.price_of("gpt-4o-2024-08-06") == (Decimal("2.5"), Decimal("10.0"))


def test_llm_prices_from_the_environment(monkeypatch):
    monkeypatch.setenv("LLM_PRICES", '{"my-model": {"prompt": 0.5, "completion": 1}}')
    assert env_prices("LLM_PRICES") == {"my-model": {"prompt": 0.5, "completion": 1}}
    for bad in ("not json", "[1]", '{"m": {"prompt": -1, "completion": 1}}', '{"m": 3}'):
        monkeypatch.setenv("LLM_PRICES", bad)
        with pytest.raises(ImproperlyConfigured, match="LLM_PRICES"):
            env_prices("LLM_PRICES")


# --- The offline model's own counts -----------------------------------------------------------


async def test_offline_model_reports_its_own_token_counts():
    market = (await SampleMarketData().snapshot("BTC")).to_dict()
    messages = speaker_messages(initial_state(asset="BTC", market=market, max_turns=2), "bull", 1)
    model = OfflineAnalystModel(seed="s", tokens_per_s=0)
    reply = await model.ainvoke(messages)
    prompt = "\n".join(m.content for m in messages)
    assert reply.usage_metadata["input_tokens"] == len(tokenize(prompt))
    assert reply.usage_metadata["output_tokens"] == len(tokenize(reply.content))
    assert reply.response_metadata["model_name"] == "offline-analyst"
    short = [SystemMessage(content="ROLE: bull"), HumanMessage(content="two words")]
    assert model.usage(short, "a b c") == {"input_tokens": 4, "output_tokens": 3, "total_tokens": 7}


# --- Through a run: the database and the live meter -------------------------------------------


@pytest.fixture
def stub():
    server = OpenAIStub().start()
    with override_settings(
        DEBATE_LLM="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.base_url,
        OPENAI_MODEL="stub-model",
        OPENAI_TIMEOUT_S=2,
        OPENAI_MAX_RETRIES=0,
        TOKEN_FLUSH_INTERVAL_MS=0,
        CHANNEL_LAYERS=BIG_LAYER,
        LLM_PRICES=PRICES,
        USAGE_EVERY_N_TOKENS=0,
    ):
        yield server
    server.stop()


def _prompt_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_the_endpoints_usage_chunk_is_recorded_with_its_cost(stub, claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    async with EventCollector(debate.id) as events:
        assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
        await events.finished.wait()
    # stream_usage is on although a base URL is set: every request asked for the usage chunk.
    assert all(r["stream_options"] == {"include_usage": True} for r in stub.requests)
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    assert [a.agent for a in rows] == ["bull", "bear", "moderator"]
    total = Decimal(0)
    for row, request, reply in zip(rows, stub.requests, stub.replies, strict=True):
        sent = usage_for(request, reply)
        assert (row.prompt_tokens, row.completion_tokens) == (
            sent["prompt_tokens"],
            sent["completion_tokens"],
        )
        assert row.usage_estimated is False
        assert row.model == "stub-model"
        # $2 per million prompt tokens, $8 per million completion tokens.
        expected = (
            Decimal(2) * sent["prompt_tokens"] + Decimal(8) * sent["completion_tokens"]
        ) / Decimal(1_000_000)
        assert row.cost == expected
        total += expected
    # The meter's last reading is the sum of the saved rows.
    last = events.of(protocol.USAGE)[-1]
    assert last["total"]["promptTokens"] == sum(r.prompt_tokens for r in rows)
    assert last["total"]["completionTokens"] == sum(r.completion_tokens for r in rows)
    assert last["total"]["cost"] == pytest.approx(float(total))
    assert last["perAgent"]["moderator"]["completionTokens"] == rows[2].completion_tokens
    assert last["estimated"] is False
    assert last["budget"] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_without_a_usage_chunk_the_counts_are_our_estimate(stub, claimed):
    stub.default = "no_usage"
    debate = await sync_to_async(claimed)(max_turns=2)
    assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    for row, request, reply in zip(rows, stub.requests, stub.replies, strict=True):
        # One token per four characters, rounded up: prompt (messages joined by newlines), answer.
        assert row.prompt_tokens == -(-len(_prompt_text(request)) // 4)
        assert row.completion_tokens == -(-len(reply) // 4)
        assert row.usage_estimated is True
        assert row.model == "stub-model"
    assert rows[0].completion_tokens == (len(rows[0].content) + 3) // 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
async def test_offline_runs_record_the_models_counts_and_a_zero_cost(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    with override_settings(USAGE_EVERY_N_TOKENS=10):
        async with EventCollector(debate.id) as events:
            assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
            await events.finished.wait()
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    for row in rows:
        assert row.completion_tokens == len(tokenize(row.content))
        assert row.prompt_tokens > 0
        assert (row.usage_estimated, row.model, row.cost) == (False, "offline-analyst", Decimal(0))
    # Coalesced: one reading every 10 tokens of an argument and one at each argument's end.
    readings = events.of(protocol.USAGE)
    assert len(readings) == sum(r.completion_tokens // 10 + 1 for r in rows)
    assert readings[-1]["total"] == {
        "promptTokens": sum(r.prompt_tokens for r in rows),
        "completionTokens": sum(r.completion_tokens for r in rows),
        "cost": 0.0,
    }
    # Coalesced with the tokens: each reading goes out in one message with the token or the
    # ARGUMENT_COMPLETE it follows, never in a message of its own.
    with_usage = [m for m in events.messages if protocol.USAGE in m]
    assert len(with_usage) == len(readings)
    ends = [m for m in with_usage if protocol.ARGUMENT_COMPLETE in m]
    assert ends == [[protocol.ARGUMENT_COMPLETE, protocol.USAGE]] * len(rows)
    assert all(m == [protocol.TOKEN_RECEIVED, protocol.USAGE] for m in with_usage if m not in ends)
    # Mid-argument readings count the argument's tokens so far, marked as our count.
    first = readings[0]
    assert first["perAgent"]["bull"] == {"promptTokens": 0, "completionTokens": 10, "cost": 0.0}
    assert first["estimated"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_a_turn_retried_after_the_budget_was_reached_still_ends_with_the_verdict(stub, user):
    # The budget is reached at the bull's first token (CONCLUDING at once); then its stream
    # breaks and the turn is retried: the bull's opening is said, then the moderator concludes.
    stub.plan.extend(["drop", "ok", "ok"])
    debate = await sync_to_async(services.debate_create)(
        asset="ETH", max_turns=4, created_by=user, budget_tokens=1
    )
    debate = await sync_to_async(services.debate_claim)(debate=debate, runner_id="r1")
    with override_settings(USAGE_EVERY_N_TOKENS=1, DEBATE_LLM_TURN_RETRIES=1):
        async with EventCollector(debate.id) as events:
            assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
            await events.finished.wait()
    assert stub.behaviours == ["drop", "ok", "ok"]
    assert [c["reason"] for c in events.of(protocol.CONCLUDING)] == ["budget"]
    done = [(c["agent"], c["turn"]) for c in events.of(protocol.ARGUMENT_COMPLETE)]
    assert done == [("bull", 1), ("moderator", 2)]
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    assert [r.content for r in rows] == stub.replies
    assert (
        rows[0].completion_tokens
        == usage_for(stub.requests[1], stub.replies[0])["completion_tokens"]
    )
