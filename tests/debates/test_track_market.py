"""Prices for the track record: the sample series continued past its end, Binance one-minute
klines from a local stub."""

from datetime import UTC, datetime, timedelta

import pytest

from debates.engine import market
from debates.engine.market import (
    CANDLE_COUNT,
    BinanceMarketData,
    MarketDataError,
    PriceNotYetKnown,
    SampleMarketData,
)
from tests.stubs.market_stub import MarketStub

END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


async def test_the_sample_series_continues_past_its_end_deterministically():
    seen = SampleMarketData(END).candles("BTC")
    continued = SampleMarketData(END).candles("BTC", extra=30)
    assert continued[:CANDLE_COUNT] == seen  # the past is unchanged
    assert continued[CANDLE_COUNT].t == "2026-03-02T15:00:00Z"
    snap = await SampleMarketData(END).snapshot("BTC")
    provider = SampleMarketData()  # no fixed now: the series is the one that ended at END
    assert await provider.price_at("BTC", END, series_end=END) == snap.last_price
    later = END + timedelta(hours=24)
    assert (
        await provider.price_at("BTC", later, series_end=END) == continued[CANDLE_COUNT - 1 + 24].c
    )
    assert await provider.price_at("BTC", later, series_end=END) == await SampleMarketData(
        datetime(2030, 1, 1, tzinfo=UTC)
    ).price_at("BTC", later, series_end=END)


async def test_the_sample_price_is_linear_within_an_hour():
    closes = [c.c for c in SampleMarketData(END).candles("ETH", extra=3)]
    i = CANDLE_COUNT - 1 + 2
    half = await SampleMarketData().price_at(
        "ETH", END + timedelta(hours=2, minutes=30), series_end=END
    )
    assert half == pytest.approx((closes[i] + closes[i + 1]) / 2, rel=1e-5)
    with pytest.raises(MarketDataError):
        await SampleMarketData().price_at("ETH", END + timedelta(days=500), series_end=END)


@pytest.fixture
def minute_stub():
    stub = MarketStub().start()
    yield stub
    stub.stop()


def _minute_row(t_ms: int, open_: float) -> list:
    return [
        t_ms,
        str(open_),
        str(open_),
        str(open_),
        str(open_),
        "1",
        t_ms + 59_999,
        "0",
        1,
        "0",
        "0",
        "0",
    ]


async def test_binance_prices_a_time_with_the_open_of_its_minute(minute_stub):
    at = datetime(2026, 3, 2, 14, 7, 31, tzinfo=UTC)
    minute_ms = int(datetime(2026, 3, 2, 14, 7, tzinfo=UTC).timestamp() * 1000)
    minute_stub.rows = [_minute_row(minute_ms - 60_000, 99.0), _minute_row(minute_ms, 101.5)]
    assert await BinanceMarketData(minute_stub.url).price_at("BTC/USDT", at) == 101.5
    assert minute_stub.queries == [
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(minute_ms), "limit": "1"}
    ]


async def test_binance_after_a_gap_takes_the_next_minute(minute_stub):
    at = datetime(2026, 3, 2, 14, 7, tzinfo=UTC)
    minute_ms = int(at.timestamp() * 1000)
    minute_stub.rows = [
        _minute_row(minute_ms - 60_000, 99.0),
        _minute_row(minute_ms + 180_000, 98.5),
    ]
    assert await BinanceMarketData(minute_stub.url).price_at("BTC", at) == 98.5


async def test_binance_without_that_minute_yet_or_failing(minute_stub):
    at = datetime(2026, 3, 2, 14, 7, tzinfo=UTC)
    minute_stub.rows = []
    with pytest.raises(PriceNotYetKnown):
        await BinanceMarketData(minute_stub.url).price_at("ETH", at)
    minute_stub.status = 500
    with pytest.raises(MarketDataError, match="HTTP 500"):
        await BinanceMarketData(minute_stub.url).price_at("ETH", at)
    minute_stub.status, minute_stub.rows = 200, [["garbage"]]
    with pytest.raises(MarketDataError, match="malformed"):
        await BinanceMarketData(minute_stub.url).price_at("ETH", at)


def test_provider_for_source():
    assert market.provider_for_source("sample").name == "sample"
    provider = market.provider_for_source("binance:BTCUSDT", "http://x")
    assert (provider.name, provider.base_url) == ("binance", "http://x")
