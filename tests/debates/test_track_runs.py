"""A run records its verdict for the track record: the model's name, an unreadable verdict kept
apart, and the snapshot's price when the provider cannot price the verdict's moment."""

from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from debates import selectors, services, track
from debates.engine.market import MarketDataError, SampleMarketData
from debates.models import Forecast
from debates.runs.run import DebateRun
from tests.stubs.events import BIG_LAYER, close_async_db_connections  # noqa: F401 - a fixture
from tests.stubs.openai_stub import OpenAIStub

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
        OPENAI_TIMEOUT_S=5,
        OPENAI_MAX_RETRIES=0,
        TOKEN_FLUSH_INTERVAL_MS=0,
        MARKET_DATA_PROVIDER="sample",
        CHANNEL_LAYERS=BIG_LAYER,
    ):
        yield server
    server.stop()


def _claimed(user, **kwargs):
    debate = services.debate_create(asset="ETH", max_turns=2, created_by=user, **kwargs)
    return services.debate_claim(debate=debate, runner_id="r1")


async def test_a_verdict_is_tracked_under_the_endpoints_model(stub, user):
    debate = await sync_to_async(_claimed)(user)
    assert await DebateRun(debate.pk, runner_id="r1").run() == "completed"
    forecast = await Forecast.objects.aget(pk=debate.pk)
    assert (forecast.model, forecast.recommendation, forecast.confidence) == (
        "stub-model",
        "buy",
        0.8,
    )
    assert forecast.parsed is True


async def test_an_unreadable_verdict_is_tracked_apart_not_as_a_hold(stub, user):
    stub.verdict_reply = "I would rather not say."
    debate = await sync_to_async(_claimed)(user, verdict_horizon_s=600)
    assert await DebateRun(debate.pk, runner_id="r1").run() == "completed"
    await debate.arefresh_from_db()
    assert debate.verdict["recommendation"] == "hold"  # what the page shows, said to be a fallback
    forecast = await Forecast.objects.aget(pk=debate.pk)
    assert forecast.parsed is False
    assert (await track.resolve_due(now=forecast.due_at)).resolved == [forecast.pk]
    record = await sync_to_async(selectors.track_record)()
    overall = record["overall"]
    assert (overall["total"], overall["resolved"], overall["unparsed"], overall["hits"]) == (
        1,
        0,
        1,
        0,
    )
    assert [b["count"] for b in overall["calibration"]] == [0] * 10


class NoPrices(SampleMarketData):
    """Sample snapshots, but no price for any moment (an unreachable market API)."""

    async def price_at(self, asset, at, *, series_end=None):
        raise MarketDataError("Market data request failed: ConnectTimeout.")


async def test_without_a_price_now_the_verdict_takes_its_snapshots_price(user, fast_settings):
    debate = await sync_to_async(_claimed)(user)
    run = DebateRun(debate.pk, runner_id="r1", market_provider=NoPrices())
    assert await run.run() == "completed"
    await debate.arefresh_from_db()
    forecast = await Forecast.objects.aget(pk=debate.pk)
    as_of = datetime.fromisoformat(debate.market_context["as_of"].replace("Z", "+00:00"))
    assert forecast.price == debate.market_context["last_price"]
    assert forecast.priced_at == as_of
    assert forecast.due_at == forecast.made_at + timedelta(seconds=debate.verdict_horizon_s)
