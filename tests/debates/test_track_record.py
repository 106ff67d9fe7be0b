"""The track record: verdicts priced when given, resolved once when due, aggregated by model
and asset against hand-computed values."""

import asyncio
import socket
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from debates import janitor, selectors, services, track
from debates.engine.market import SampleMarketData
from debates.models import Forecast
from debates.runs.run import DebateRun
from tests.debates.forecasts import SERIES_END, resolved
from tests.debates.forecasts import forecast as make_forecast
from tests.stubs.events import close_async_db_connections  # noqa: F401 - a fixture
from tests.stubs.market_stub import MarketStub

# --- Resolution (services) ----------------------------------------------------------------------


@pytest.mark.django_db
def test_resolving_scores_once_and_a_second_resolution_changes_nothing():
    forecast = make_forecast(recommendation="buy", confidence=0.8, price=100.0)
    assert services.forecast_resolve(forecast=forecast, exit_price=103.0, band_pct=1.0)
    forecast.refresh_from_db()
    assert forecast.return_pct == pytest.approx(3.0)
    assert (forecast.hit, forecast.exit_price, forecast.band_pct) == (True, 103.0, 1.0)
    assert forecast.brier == pytest.approx(0.04)
    first = forecast.resolved_at
    # A second process with a stale copy (and another price) loses: nothing changes.
    assert not services.forecast_resolve(forecast=forecast, exit_price=90.0, band_pct=1.0)
    forecast.refresh_from_db()
    assert (forecast.exit_price, forecast.hit, forecast.resolved_at) == (103.0, True, first)


@pytest.mark.django_db
def test_an_unparsed_verdict_is_tracked_apart_never_as_a_hold(claimed):
    debate = claimed(asset="BTC")
    verdict = {"recommendation": "hold", "confidence": 0.0, "rationale": "?", "parsed": False}
    priced = {
        "model": "m1",
        "asset": "BTC",
        "price": 100.0,
        "priced_at": timezone.now(),
        "source": "sample",
        "is_sample": True,
        "series_end": SERIES_END,
    }
    assert services.run_save_argument(
        debate_id=debate.pk,
        runner_id="r1",
        turn=3,
        agent="moderator",
        content="garbled",
        verdict=verdict,
        forecast=priced,
    )
    forecast = Forecast.objects.get(pk=debate.pk)
    assert forecast.parsed is False
    assert forecast.due_at - forecast.made_at == timedelta(seconds=debate.verdict_horizon_s)
    # In the band, so a silent hold would have been a hit: it is not scored at all.
    assert services.forecast_resolve(forecast=forecast, exit_price=100.5, band_pct=1.0)
    forecast.refresh_from_db()
    assert forecast.return_pct == pytest.approx(0.5)
    assert (forecast.hit, forecast.brier) == (None, None)
    overall = selectors.track_record()["overall"]
    assert (overall["total"], overall["resolved"], overall["unparsed"]) == (1, 0, 1)
    assert (overall["hit_rate"], overall["mean_brier"]) == (None, None)


@pytest.mark.django_db
def test_a_retried_verdict_save_tracks_the_verdict_once(claimed):
    debate = claimed(asset="BTC")
    verdict = {"recommendation": "buy", "confidence": 0.7, "rationale": "r", "parsed": True}
    priced = {
        "model": "m1",
        "asset": "BTC",
        "price": 100.0,
        "priced_at": timezone.now(),
        "source": "sample",
        "is_sample": True,
    }
    save = {"debate_id": debate.pk, "runner_id": "r1", "turn": 3, "agent": "moderator"}
    assert services.run_save_argument(**save, content="v", verdict=verdict, forecast=priced)
    # The reply of that commit was lost: the run saves again, with the price it fetched again.
    again = {**priced, "price": 101.0}
    assert services.run_save_argument(**save, content="v", verdict=verdict, forecast=again)
    assert list(Forecast.objects.values_list("price", flat=True)) == [100.0]


# --- Aggregation (selectors) --------------------------------------------------------------------


@pytest.fixture
def six_verdicts():
    """A: buy 0.8 +3 % hit; B: sell 0.6 +1 % miss; C: hold 0.65 +0.5 % hit; D: unparsed;
    E (m2, ETH): buy 0.9 -2 % miss; F (ETH): buy 0.7 not due yet."""
    resolved(103.0, recommendation="buy", confidence=0.8)
    resolved(101.0, recommendation="sell", confidence=0.6)
    resolved(201.0, recommendation="hold", confidence=0.65, price=200.0)
    resolved(90.0, recommendation="hold", confidence=0.0, parsed=False)
    resolved(49.0, recommendation="buy", confidence=0.9, price=50.0, model="m2", asset="ETH")
    make_forecast(recommendation="buy", confidence=0.7, asset="ETH", due_in=timedelta(hours=5))


@pytest.mark.django_db
@pytest.mark.usefixtures("six_verdicts")
def test_track_record_overall_and_per_model_hand_computed():
    record = selectors.track_record()
    overall = record["overall"]
    assert {k: overall[k] for k in ("total", "resolved", "hits", "pending", "unparsed")} == {
        "total": 6,
        "resolved": 4,
        "hits": 2,
        "pending": 1,
        "unparsed": 1,
    }
    assert overall["hit_rate"] == 0.5
    assert overall["mean_brier"] == pytest.approx((0.04 + 0.36 + 0.1225 + 0.81) / 4)
    assert overall["sample"] == 6
    by_model = {row["model"]: row for row in record["by_model"]}
    assert set(by_model) == {"m1", "m2"}
    m1 = by_model["m1"]
    assert (m1["total"], m1["resolved"], m1["hits"], m1["pending"], m1["unparsed"]) == (
        5,
        3,
        2,
        1,
        1,
    )
    assert m1["hit_rate"] == pytest.approx(2 / 3)
    assert m1["mean_brier"] == pytest.approx((0.04 + 0.36 + 0.1225) / 3)
    assert by_model["m2"]["hit_rate"] == 0.0
    assert by_model["m2"]["mean_brier"] == pytest.approx(0.81)


@pytest.mark.django_db
@pytest.mark.usefixtures("six_verdicts")
def test_calibration_bins_per_model_and_asset_hand_computed():
    record = selectors.track_record()
    m1 = next(row for row in record["by_model"] if row["model"] == "m1")
    bins = {b["bin"]: b for b in m1["calibration"] if b["count"]}
    assert len(m1["calibration"]) == 10
    assert set(bins) == {6, 8}  # 0.6 and 0.65 in [0.6, 0.7); 0.8 in [0.8, 0.9)
    assert (bins[6]["count"], bins[6]["hits"], bins[6]["hit_rate"]) == (2, 1, 0.5)
    assert bins[6]["mean_confidence"] == pytest.approx(0.625)
    assert (bins[6]["lower"], bins[6]["upper"]) == (0.6, 0.7)
    assert (bins[8]["count"], bins[8]["hit_rate"]) == (1, 1.0)
    empty = m1["calibration"][0]
    assert (empty["count"], empty["hit_rate"]) == (0, None)
    by_asset = {row["asset"]: row for row in record["by_asset"]}
    eth = by_asset["ETH"]
    assert (eth["total"], eth["resolved"], eth["hits"], eth["pending"]) == (2, 1, 0, 1)
    assert [(b["bin"], b["count"], b["hits"]) for b in eth["calibration"] if b["count"]] == [
        (9, 1, 0)
    ]
    assert (by_asset["BTC"]["resolved"], by_asset["BTC"]["hits"]) == (3, 2)


@pytest.mark.django_db
@pytest.mark.usefixtures("six_verdicts")
def test_track_record_filters_by_model_and_asset():
    assert selectors.track_record(model="m2")["overall"]["total"] == 1
    assert selectors.track_record(asset="ETH/USDT")["overall"]["total"] == 2
    only = selectors.track_record(model="m1", asset="eth")
    assert (only["overall"]["total"], only["overall"]["pending"]) == (1, 1)
    assert [row["asset"] for row in only["by_asset"]] == ["ETH"]


# --- Resolution against the providers (track.resolve_due, the command, the janitor) -------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_due_sample_verdicts_resolve_on_the_continued_series_and_only_once():
    due = await sync_to_async(make_forecast)(recommendation="sell", confidence=0.7, price=60000.0)
    later = await sync_to_async(make_forecast)(due_in=timedelta(hours=3))
    done = await track.resolve_due()
    assert (done.resolved, done.failed) == ([due.pk], {})
    await due.arefresh_from_db()
    expected = await SampleMarketData().price_at("BTC", due.due_at, series_end=SERIES_END)
    assert due.exit_price == expected
    assert due.return_pct == pytest.approx((expected - 60000.0) / 60000.0 * 100)
    assert due.hit is (due.return_pct < -1.0)
    await later.arefresh_from_db()
    assert later.resolved_at is None
    assert (await track.resolve_due()).resolved == []  # nothing twice
    # Two passes at once (two processes): one resolution each, never two.
    passes = await asyncio.gather(
        *(track.resolve_due(now=later.due_at + timedelta(seconds=1)) for _ in range(2))
    )
    assert sorted(len(p.resolved) for p in passes) == [0, 1]


@pytest.fixture
def minute_stub():
    stub = MarketStub().start()
    yield stub
    stub.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_a_binance_verdict_resolves_against_the_stub_hand_computed(minute_stub):
    forecast = await sync_to_async(make_forecast)(
        recommendation="hold", confidence=0.7, price=100.0, source="binance:BTCUSDT"
    )
    minute_ms = int(forecast.due_at.timestamp() // 60 * 60_000)
    row = [
        minute_ms,
        "101.5",
        "102",
        "101",
        "101.7",
        "3",
        minute_ms + 59_999,
        "0",
        1,
        "0",
        "0",
        "0",
    ]
    minute_stub.rows = [row]
    with override_settings(MARKET_DATA_URL=minute_stub.url, VERDICT_HOLD_BAND_PCT=1.0):
        pending = await track.resolve_due(now=forecast.due_at - timedelta(seconds=1))
        assert pending.resolved == []  # not due yet: no request at all
        assert minute_stub.queries == []
        done = await track.resolve_due()
    assert done.resolved == [forecast.pk]
    await forecast.arefresh_from_db()
    # +1.5 %, outside the 1 % band: a hold that missed; Brier (0.7 - 0)^2.
    assert forecast.return_pct == pytest.approx(1.5)
    assert forecast.hit is False
    assert forecast.brier == pytest.approx(0.49)


@pytest.mark.django_db(transaction=True)
def test_the_command_resolves_due_verdicts_and_fails_on_unpriced_ones(minute_stub, capsys):
    sample = make_forecast(recommendation="buy", confidence=0.6)
    make_forecast(due_in=timedelta(hours=2))
    call_command("resolve_verdicts")
    assert "Resolved 1 verdict(s); 0 not priced yet; 0 failed." in capsys.readouterr().out
    sample.refresh_from_db()
    assert sample.resolved_at is not None
    stuck = make_forecast(source="binance:BTCUSDT")
    minute_stub.status = 503
    with override_settings(MARKET_DATA_URL=minute_stub.url):
        with pytest.raises(CommandError, match=f"Could not price 1 verdict.*{stuck.pk}.*HTTP 503"):
            call_command("resolve_verdicts")
        minute_stub.status, minute_stub.rows = 200, []
        call_command("resolve_verdicts")  # not there yet: retried later, not a failure
    assert "0 verdict(s); 1 not priced yet" in capsys.readouterr().out
    stuck.refresh_from_db()
    assert stuck.resolved_at is None
    with pytest.raises(CommandError):
        call_command("resolve_verdicts", "--limit", "-1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_the_janitor_resolves_due_verdicts_on_its_timer():
    forecast = await sync_to_async(make_forecast)()
    with override_settings(DEBATE_STALE_AFTER_S=30):
        tasks_before = set(janitor._tasks)
        janitor.ensure_janitor()
        started = [t for t in janitor._tasks - tasks_before if not t.done()]
        assert len(started) == 1
        try:
            for _ in range(600):
                await forecast.arefresh_from_db()
                if forecast.resolved_at is not None:
                    break
                await asyncio.sleep(0.05)
            assert forecast.resolved_at is not None
            assert forecast.hit is not None
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)


@pytest.fixture
def silent_market():
    """A market API that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_a_silent_market_api_holds_up_neither_other_verdicts_nor_the_janitor(
    silent_market, caplog
):
    stuck = await sync_to_async(make_forecast)(source="binance:BTCUSDT", due_in=timedelta(hours=-2))
    sample = await sync_to_async(make_forecast)()
    with override_settings(VERDICT_RESOLVE_INTERVAL_S=1, MARKET_DATA_URL=silent_market):
        tasks_before = set(janitor._tasks)
        janitor.ensure_janitor()
        started = [t for t in janitor._tasks - tasks_before if not t.done()]
        try:
            for _ in range(600):  # a pass on a busy machine may need a few tries
                await sample.arefresh_from_db()
                if sample.resolved_at and "verdict resolution cut short" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            assert "verdict resolution cut short" in caplog.text
            assert sample.resolved_at is not None  # priced while the other one waited
            await stuck.arefresh_from_db()
            assert stuck.resolved_at is None
            assert not started[0].done()  # the janitor goes on to its next pass
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)


# --- The whole path offline: a run prices its verdict, the sample series resolves it -----------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
async def test_a_run_prices_its_verdict_and_the_sample_series_resolves_it(user):
    debate = await sync_to_async(services.debate_create)(
        asset="ETH", max_turns=2, created_by=user, verdict_horizon_s=3600
    )
    await sync_to_async(services.debate_claim)(debate=debate, runner_id="r1")
    assert await DebateRun(debate.pk, runner_id="r1").run() == "completed"
    await debate.arefresh_from_db()
    forecast = await Forecast.objects.aget(pk=debate.pk)
    series_end = datetime.fromisoformat(debate.market_context["as_of"].replace("Z", "+00:00"))
    assert forecast.series_end == series_end
    assert (forecast.model, forecast.asset, forecast.source) == ("offline-analyst", "ETH", "sample")
    assert forecast.is_sample
    assert forecast.parsed
    assert (forecast.recommendation, forecast.confidence) == (
        debate.verdict_recommendation,
        debate.verdict_confidence,
    )
    provider = SampleMarketData()
    assert forecast.price == await provider.price_at(
        "ETH", forecast.priced_at, series_end=series_end
    )
    assert forecast.due_at - forecast.made_at == timedelta(hours=1)
    done = await track.resolve_due(now=forecast.due_at)
    assert done.resolved == [forecast.pk]
    await forecast.arefresh_from_db()
    exit_price = await provider.price_at("ETH", forecast.due_at, series_end=series_end)
    assert forecast.return_pct == pytest.approx(
        (exit_price - forecast.price) / forecast.price * 100
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_an_unusable_price_fails_the_forecast_and_leaves_it_for_later(minute_stub):
    forecast = await sync_to_async(make_forecast)(source="binance:BTCUSDT")
    minute_ms = int(forecast.due_at.timestamp() // 60 * 60_000)
    minute_stub.rows = [[minute_ms, "0", "0", "0", "0", "0", minute_ms + 59_999]]
    with override_settings(MARKET_DATA_URL=minute_stub.url):
        done = await track.resolve_due()
    assert (done.resolved, list(done.failed)) == ([], [forecast.pk])
    await forecast.arefresh_from_db()
    assert forecast.resolved_at is None
