"""Market snapshots: indicators against hand-computed values, sample and Binance providers."""

from datetime import UTC, datetime

import pytest

from debates.engine import market
from debates.engine.market import (
    BinanceMarketData,
    Candle,
    MarketDataError,
    MarketSnapshot,
    SampleMarketData,
    canonical_asset,
    snapshot_from_candles,
)
from tests.stubs.market_stub import MarketStub, make_klines

NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)


def test_pct_change_and_sma():
    assert market.pct_change(100, 110) == pytest.approx(10.0)
    assert market.pct_change(200, 150) == pytest.approx(-25.0)
    assert market.sma([1, 2, 3, 4, 5], 3) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="SMA-3"):
        market.sma([1, 2], 3)


def test_rsi_wilder_hand_computed():
    # deltas 1, -1, 2 | 1: seed gain 1.0, loss 1/3; then gain (2*1+1)/3 = 1, loss (2/3)/3 = 2/9.
    # RS = 4.5, RSI = 100 - 100/5.5
    assert market.rsi([10, 11, 10, 12, 13], period=3) == pytest.approx(100 - 100 / 5.5)
    assert market.rsi(list(range(20)), period=14) == 100.0
    assert market.rsi([5.0] * 20, period=14) == 50.0
    with pytest.raises(ValueError, match="RSI-14"):
        market.rsi([1, 2, 3], period=14)


def test_volatility_and_volume_change_hand_computed():
    # returns +10 %, -10 % -> sample stdev sqrt((100 + 100) / 1)
    assert market.volatility_pct([100, 110, 99], window=2) == pytest.approx(200**0.5)
    assert market.volume_change_pct([1, 1, 2, 2], window=2) == pytest.approx(100.0)


def linear_candles(n: int = 200) -> list[Candle]:
    return [
        Candle(t=f"t{i}", o=100 + i - 1, h=100 + i, l=99 + i, c=100 + i, v=100) for i in range(n)
    ]


def test_snapshot_from_a_linear_series():
    snap = snapshot_from_candles(
        asset="X", name="X", source="test", is_sample=False, candles=linear_candles()
    )
    assert snap.last_price == 299
    assert snap.change_24h_pct == round((299 - 275) / 275 * 100, 2)
    assert snap.change_7d_pct == round((299 - 131) / 131 * 100, 2)
    assert snap.sma_20 == 289.5  # mean of 280..299
    assert snap.sma_50 == 274.5  # mean of 250..299
    assert snap.price_vs_sma_20_pct == round((299 - 289.5) / 289.5 * 100, 2)
    assert snap.rsi_14 == 100.0  # only gains
    assert snap.volume_change_24h_pct == 0.0
    assert len(snap.recent_candles) == market.RECENT_CANDLES
    assert snap.recent_candles[-1].c == 299


def test_snapshot_needs_a_week_of_candles():
    with pytest.raises(MarketDataError, match="169"):
        snapshot_from_candles(
            asset="X", name="X", source="t", is_sample=False, candles=linear_candles(100)
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTC", "BTC"),
        ("BTC/USD", "BTC"),
        ("BTC-USD", "BTC"),
        ("BTC/USDT", "BTC"),
        ("BTCUSDT", "BTC"),
        ("ETHUSD", "ETH"),
        ("EUR/USD", "EURUSD"),
        ("EURUSD", "EURUSD"),
        ("AAPL", "AAPL"),
        ("BRK.B", "BRK.B"),
    ],
)
def test_canonical_asset(raw, expected):
    assert canonical_asset(raw) == expected


async def test_sample_provider_is_deterministic_and_says_so():
    a = await SampleMarketData(now=NOW).snapshot("BTC/USD")
    b = await SampleMarketData(now=NOW).snapshot("BTC-USD")
    assert a == b
    assert (a.asset, a.source, a.is_sample) == ("BTC", "sample", True)
    assert a.as_of == "2026-01-05T12:00:00Z"
    eth = await SampleMarketData(now=NOW).snapshot("ETH")
    assert eth.last_price != a.last_price
    # A later clock moves the timestamps but not the numbers.
    later = await SampleMarketData(now=datetime(2026, 3, 1, tzinfo=UTC)).snapshot("BTC")
    assert later.rsi_14 == a.rsi_14
    assert later.last_price == a.last_price


async def test_sample_numbers_are_computed_from_its_candles():
    provider = SampleMarketData(now=NOW)
    candles = provider.candles("SOL")
    closes = [c.c for c in candles]
    snap = await provider.snapshot("SOL")
    assert snap.rsi_14 == round(market.rsi(closes), 1)
    assert snap.last_price == closes[-1]
    assert snap.change_24h_pct == round(market.pct_change(closes[-25], closes[-1]), 2)
    assert MarketSnapshot.from_dict(snap.to_dict()) == snap


def test_sample_supports_known_assets_only():
    provider = SampleMarketData()
    for asset in ["BTC", "ETH", "SOL", "AAPL", "MSFT", "NVDA", "TSLA", "SPY", "EURUSD", "BTC/USD"]:
        assert provider.supports(asset), asset
    assert not provider.supports("ZZZZ")
    assert not provider.supports("FOO/USD")


@pytest.fixture
def klines_stub():
    closes = [100.0 + i for i in range(200)]
    stub = MarketStub(rows=make_klines(closes, start_ms=1_700_000_000_000)).start()
    yield stub
    stub.stop()


async def test_binance_provider_reads_klines_from_the_stub(klines_stub):
    provider = BinanceMarketData(klines_stub.url)
    snap = await provider.snapshot("btc/usd".upper())
    assert klines_stub.queries == [{"symbol": "BTCUSDT", "interval": "1h", "limit": "200"}]
    assert (snap.asset, snap.source, snap.is_sample) == ("BTC", "binance:BTCUSDT", False)
    assert snap.last_price == 299
    assert snap.sma_50 == 274.5
    assert snap.rsi_14 == 100.0
    assert snap.as_of.endswith("Z")


async def test_binance_provider_errors_are_clear(klines_stub):
    klines_stub.status = 500
    with pytest.raises(MarketDataError, match="HTTP 500"):
        await BinanceMarketData(klines_stub.url).snapshot("ETH")
    klines_stub.status, klines_stub.rows = 200, [["garbage"]]
    with pytest.raises(MarketDataError, match="malformed"):
        await BinanceMarketData(klines_stub.url).snapshot("ETH")
    assert not BinanceMarketData(klines_stub.url).supports("AAPL")
    with pytest.raises(MarketDataError, match="no data"):
        await BinanceMarketData(klines_stub.url).snapshot("AAPL")


def test_get_provider():
    assert market.get_provider("sample").name == "sample"
    assert market.get_provider("binance", "http://x").base_url == "http://x"
    with pytest.raises(ValueError, match="MARKET_DATA_PROVIDER"):
        market.get_provider("nope")


@pytest.mark.django_db
def test_unknown_asset_is_a_400_with_field_errors(auth_client):
    resp = auth_client.post("/api/debates/", {"asset": "ZZZZ"}, format="json")
    assert resp.status_code == 400
    assert "ZZZZ" in resp.json()["asset"][0]
    resp = auth_client.post("/api/debates/", {"asset": "btc-usd"}, format="json")
    assert resp.status_code == 201
    assert resp.json()["asset"] == "BTC-USD"


@pytest.mark.django_db
def test_service_rejects_unknown_asset(user, settings):
    from django.core.exceptions import ValidationError

    from debates import services

    with pytest.raises(ValidationError) as exc:
        services.debate_create(asset="ZZZZ", created_by=user)
    assert "asset" in exc.value.message_dict
    settings.MARKET_DATA_PROVIDER = "binance"
    with pytest.raises(ValidationError):
        services.debate_create(asset="AAPL", created_by=user)
    assert services.debate_create(asset="ETH", created_by=user).asset == "ETH"
