"""Market context: typed snapshots, indicators from real price series, sample and Binance providers.

Every number in a snapshot is computed by the pure functions below from a candle series; nothing is
made up. The `sample` provider generates that series offline (seeded by the asset, so the same asset
gives the same numbers everywhere) and flags it with `is_sample=True`; the `binance` provider reads
public hourly klines from MARKET_DATA_URL (no key needed).
"""

import hashlib
import itertools
import math
import random
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

HOURS_24 = 24
HOURS_7D = 24 * 7
CANDLE_COUNT = 200  # enough for SMA-50, RSI-14 and 7 d of hourly history
RECENT_CANDLES = 6

# Canonical symbol -> (display name, kind, reference price, hourly volatility)
SAMPLE_ASSETS: dict[str, tuple[str, str, float, float]] = {
    "BTC": ("Bitcoin", "crypto", 64000.0, 0.006),
    "ETH": ("Ether", "crypto", 3200.0, 0.008),
    "SOL": ("Solana", "crypto", 150.0, 0.011),
    "XRP": ("XRP", "crypto", 0.55, 0.010),
    "ADA": ("Cardano", "crypto", 0.45, 0.011),
    "DOGE": ("Dogecoin", "crypto", 0.15, 0.013),
    "BNB": ("BNB", "crypto", 580.0, 0.007),
    "AAPL": ("Apple", "stock", 190.0, 0.003),
    "MSFT": ("Microsoft", "stock", 420.0, 0.003),
    "NVDA": ("Nvidia", "stock", 120.0, 0.006),
    "TSLA": ("Tesla", "stock", 180.0, 0.007),
    "AMZN": ("Amazon", "stock", 185.0, 0.004),
    "GOOGL": ("Alphabet", "stock", 170.0, 0.004),
    "META": ("Meta", "stock", 490.0, 0.005),
    "SPY": ("S&P 500 ETF", "etf", 540.0, 0.002),
    "QQQ": ("Nasdaq-100 ETF", "etf", 460.0, 0.0025),
    "EURUSD": ("Euro / US dollar", "fx", 1.08, 0.0008),
    "GBPUSD": ("Pound / US dollar", "fx", 1.27, 0.0009),
    "USDJPY": ("US dollar / Yen", "fx", 155.0, 0.0008),
}
QUOTE_CURRENCIES = ("USDT", "USDC", "USD")
FX_CODES = {"EUR", "USD", "GBP", "JPY"}
BINANCE_DEFAULT_URL = "https://api.binance.com"
MAX_SAMPLE_HOURS_AHEAD = 24 * 400  # how far the sample walk is continued (bounds the work)


class MarketDataError(Exception):
    """The market data provider could not produce a snapshot."""


class PriceNotYetKnown(MarketDataError):
    """The provider has no price for that time yet (it is still to come)."""


@dataclass(frozen=True)
class Candle:
    """One OHLCV candle; `t` is its open time in ISO 8601 UTC."""

    t: str
    o: float
    h: float
    l: float  # noqa: E741 - the OHLC convention
    c: float
    v: float


@dataclass(frozen=True)
class MarketSnapshot:
    """What the debaters know about the market, computed from one hourly candle series."""

    asset: str
    name: str
    source: str
    is_sample: bool
    as_of: str
    last_price: float
    change_24h_pct: float
    change_7d_pct: float
    volatility_24h_pct: float
    rsi_14: float
    sma_20: float
    sma_50: float
    price_vs_sma_20_pct: float
    price_vs_sma_50_pct: float
    volume_change_24h_pct: float
    recent_candles: list[Candle] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (stored in Debate.market_context)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MarketSnapshot":
        """Rebuild a snapshot stored by to_dict."""
        candles = [Candle(**c) for c in data.get("recent_candles", [])]
        return cls(**{**data, "recent_candles": candles})


# --- Pure indicator functions -------------------------------------------------------------------


def pct_change(old: float, new: float) -> float:
    """Percentage change from old to new."""
    if old == 0:
        raise ValueError("pct_change from zero")
    return (new - old) / old * 100.0


def sma(values: list[float], period: int) -> float:
    """Simple moving average of the last `period` values."""
    if period <= 0 or len(values) < period:
        raise ValueError(f"need {period} values for SMA-{period}, got {len(values)}")
    return sum(values[-period:]) / period


def rsi(closes: list[float], period: int = 14) -> float:
    """Wilder's RSI of a close series (seeded with the simple average of the first `period`)."""
    if len(closes) < period + 1:
        raise ValueError(f"need {period + 1} closes for RSI-{period}, got {len(closes)}")
    deltas = [b - a for a, b in itertools.pairwise(closes)]
    avg_gain = sum(max(d, 0.0) for d in deltas[:period]) / period
    avg_loss = sum(max(-d, 0.0) for d in deltas[:period]) / period
    for d in deltas[period:]:
        avg_gain = (avg_gain * (period - 1) + max(d, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(-d, 0.0)) / period
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def volatility_pct(closes: list[float], window: int = HOURS_24) -> float:
    """Sample standard deviation of the last `window` simple returns, in percent."""
    if len(closes) < window + 1:
        raise ValueError(f"need {window + 1} closes for volatility, got {len(closes)}")
    tail = closes[-(window + 1) :]
    returns = [(b - a) / a * 100.0 for a, b in itertools.pairwise(tail)]
    return statistics.stdev(returns)


def volume_change_pct(volumes: list[float], window: int = HOURS_24) -> float:
    """Volume of the last `window` candles against the `window` before them, in percent."""
    if len(volumes) < 2 * window:
        raise ValueError(f"need {2 * window} volumes, got {len(volumes)}")
    return pct_change(sum(volumes[-2 * window : -window]), sum(volumes[-window:]))


def snapshot_from_candles(
    *, asset: str, name: str, source: str, is_sample: bool, candles: list[Candle]
) -> MarketSnapshot:
    """Compute every indicator of a snapshot from an hourly candle series, oldest first."""
    if len(candles) < HOURS_7D + 1:
        raise MarketDataError(f"need {HOURS_7D + 1} hourly candles, got {len(candles)}")
    closes = [c.c for c in candles]
    last = closes[-1]
    s20, s50 = sma(closes, 20), sma(closes, 50)
    return MarketSnapshot(
        asset=asset,
        name=name,
        source=source,
        is_sample=is_sample,
        as_of=candles[-1].t,
        last_price=_round(last),
        change_24h_pct=round(pct_change(closes[-1 - HOURS_24], last), 2),
        change_7d_pct=round(pct_change(closes[-1 - HOURS_7D], last), 2),
        volatility_24h_pct=round(volatility_pct(closes), 3),
        rsi_14=round(rsi(closes), 1),
        sma_20=_round(s20),
        sma_50=_round(s50),
        price_vs_sma_20_pct=round(pct_change(s20, last), 2),
        price_vs_sma_50_pct=round(pct_change(s50, last), 2),
        volume_change_24h_pct=round(volume_change_pct([c.v for c in candles]), 1),
        recent_candles=candles[-RECENT_CANDLES:],
    )


def _round(price: float) -> float:
    """Round a price to a sensible number of significant digits."""
    if price == 0:
        return 0.0
    digits = max(2, 6 - math.floor(math.log10(abs(price))) - 1)
    return round(price, digits)


# --- Asset names --------------------------------------------------------------------------------


def canonical_asset(asset: str) -> str:
    """Map a validated ticker or pair (BTC, BTC/USD, BTC-USDT, EUR/USD) to its canonical symbol."""
    symbol = asset.strip().upper()
    for sep in ("/", "-", "."):
        if sep in symbol:
            base, _, quote = symbol.partition(sep)
            if base in FX_CODES and quote in FX_CODES:
                return base + quote
            if quote in QUOTE_CURRENCIES:
                return base
            return symbol
    for quote in QUOTE_CURRENCIES:
        base = symbol[: -len(quote)]
        if symbol.endswith(quote) and base in SAMPLE_ASSETS and SAMPLE_ASSETS[base][1] == "crypto":
            return base
    return symbol


# --- Providers ----------------------------------------------------------------------------------


class MarketDataProvider(Protocol):
    """Where snapshots come from."""

    name: str

    def supports(self, asset: str) -> bool:
        """True if this provider has data for the asset (no network call)."""

    async def snapshot(self, asset: str) -> MarketSnapshot:
        """The current snapshot of a supported asset; MarketDataError otherwise."""

    async def price_at(
        self, asset: str, at: datetime, *, series_end: datetime | None = None
    ) -> float:
        """The asset's price at a time (PriceNotYetKnown when still to come)."""


class SampleMarketData:
    """Deterministic offline candles: a seeded random walk per asset, flagged as sample data."""

    name = "sample"

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now

    def supports(self, asset: str) -> bool:
        """True for the known sample assets (and their pairs)."""
        return canonical_asset(asset) in SAMPLE_ASSETS

    def candles(self, asset: str, count: int = CANDLE_COUNT, extra: int = 0) -> list[Candle]:
        """Hourly candles ending at the current hour; prices depend only on the asset.

        ``extra`` continues the same seeded walk that many hours past the current hour (the
        series a snapshot saw, carried on: what resolves a sample verdict).
        """
        symbol = canonical_asset(asset)
        if symbol not in SAMPLE_ASSETS:
            raise MarketDataError(f"No sample market data for {asset!r}.")
        _, _, ref_price, hourly_vol = SAMPLE_ASSETS[symbol]
        seed = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        drift = rng.uniform(-0.6, 0.6) * hourly_vol / 4
        base_volume = rng.uniform(0.5, 2.0) * 1_000_000 / ref_price
        end = (self._now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        price = ref_price * rng.uniform(0.85, 1.15)
        out = []
        for i in range(count + extra):
            ret = rng.gauss(drift, hourly_vol)
            close = price * math.exp(ret)
            wick = abs(rng.gauss(0, hourly_vol / 2))
            high = max(price, close) * (1 + wick)
            low = min(price, close) * (1 - wick)
            volume = base_volume * math.exp(rng.gauss(0, 0.35)) * (1 + 20 * abs(ret))
            t = end - timedelta(hours=count - 1 - i)
            out.append(
                Candle(
                    t=t.isoformat().replace("+00:00", "Z"),
                    o=_round(price),
                    h=_round(high),
                    l=_round(low),
                    c=_round(close),
                    v=round(volume, 2),
                )
            )
            price = close
        return out

    async def price_at(self, asset: str, at: datetime, *, series_end: datetime | None = None):
        """The sample price at ``at`` on the series that ended at ``series_end`` (a snapshot's
        ``as_of``; default the current hour), continued past it: each hour's close, linear
        in between (deterministic, so sample verdicts resolve offline)."""
        end = (series_end or self._now or datetime.now(UTC)).replace(
            minute=0, second=0, microsecond=0
        )
        hours = (at - end).total_seconds() / 3600
        step = math.floor(hours)
        if step < -(CANDLE_COUNT - 1) or step > MAX_SAMPLE_HOURS_AHEAD:
            raise MarketDataError(f"No sample price {hours:.0f} hours from its series.")
        closes = [c.c for c in SampleMarketData(end).candles(asset, extra=max(step + 1, 0))]
        i = CANDLE_COUNT - 1 + step
        return _round(closes[i] + (closes[i + 1] - closes[i]) * (hours - step))

    async def snapshot(self, asset: str) -> MarketSnapshot:
        """The sample snapshot of the asset."""
        symbol = canonical_asset(asset)
        candles = self.candles(asset)
        return snapshot_from_candles(
            asset=symbol,
            name=SAMPLE_ASSETS[symbol][0],
            source="sample",
            is_sample=True,
            candles=candles,
        )


class BinanceMarketData:
    """Public Binance-style klines (GET /api/v3/klines, no key) for crypto assets, over httpx."""

    name = "binance"

    def __init__(self, base_url: str = "", timeout: float = 10.0) -> None:
        self.base_url = (base_url or BINANCE_DEFAULT_URL).rstrip("/")
        self.timeout = timeout

    def supports(self, asset: str) -> bool:
        """True for the known crypto assets (quoted in USDT)."""
        symbol = canonical_asset(asset)
        return symbol in SAMPLE_ASSETS and SAMPLE_ASSETS[symbol][1] == "crypto"

    async def snapshot(self, asset: str) -> MarketSnapshot:
        """Fetch hourly klines and compute the snapshot."""
        if not self.supports(asset):
            raise MarketDataError(f"{self.name} has no data for {asset!r}.")
        symbol = canonical_asset(asset)
        params = {"symbol": f"{symbol}USDT", "interval": "1h", "limit": CANDLE_COUNT}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
                response = await client.get("/api/v3/klines", params=params)
                response.raise_for_status()
                rows = response.json()
            candles = [
                Candle(
                    t=datetime.fromtimestamp(int(r[0]) / 1000, UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    o=float(r[1]),
                    h=float(r[2]),
                    l=float(r[3]),
                    c=float(r[4]),
                    v=float(r[5]),
                )
                for r in rows
            ]
        except httpx.HTTPStatusError as exc:
            raise MarketDataError(
                f"Market data request failed: HTTP {exc.response.status_code}."
            ) from exc
        except httpx.HTTPError as exc:
            raise MarketDataError(f"Market data request failed: {type(exc).__name__}.") from exc
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise MarketDataError("Market data response was malformed.") from exc
        return snapshot_from_candles(
            asset=symbol,
            name=SAMPLE_ASSETS[symbol][0],
            source=f"binance:{symbol}USDT",
            is_sample=False,
            candles=candles,
        )

    async def price_at(self, asset: str, at: datetime, *, series_end: datetime | None = None):
        """The open of the one-minute kline that holds ``at``, or of the next one after a gap
        (``series_end`` is unused)."""
        if not self.supports(asset):
            raise MarketDataError(f"{self.name} has no data for {asset!r}.")
        symbol = canonical_asset(asset)
        minute_ms = int(at.timestamp() // 60 * 60_000)
        params = {"symbol": f"{symbol}USDT", "interval": "1m", "startTime": minute_ms, "limit": 1}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
                response = await client.get("/api/v3/klines", params=params)
                response.raise_for_status()
                rows = response.json()
            if not rows:
                raise PriceNotYetKnown(f"No {symbol}USDT kline at {at.isoformat()} yet.")
            # The first price at or after the time (the minute itself unless the market had a gap).
            return float(rows[0][1])
        except httpx.HTTPStatusError as exc:
            raise MarketDataError(
                f"Market data request failed: HTTP {exc.response.status_code}."
            ) from exc
        except httpx.HTTPError as exc:
            raise MarketDataError(f"Market data request failed: {type(exc).__name__}.") from exc
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise MarketDataError("Market data response was malformed.") from exc


def get_provider(name: str, url: str = "") -> MarketDataProvider:
    """The provider for a MARKET_DATA_PROVIDER value."""
    if name in ("", "sample"):
        return SampleMarketData()
    if name == "binance":
        return BinanceMarketData(url)
    raise ValueError(f"Unknown MARKET_DATA_PROVIDER {name!r} (use 'sample' or 'binance').")


def provider_for_source(source: str, url: str = "") -> MarketDataProvider:
    """The provider that produced a snapshot's ``source`` ('sample', 'binance:BTCUSDT')."""
    return get_provider(source.partition(":")[0], url)
