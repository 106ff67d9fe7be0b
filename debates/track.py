"""Resolving due verdicts against the market (the janitor's timer and manage.py resolve_verdicts).

Each forecast is priced at its due time by the provider that priced its verdict (a sample verdict
on the continued sample series, a Binance one on Binance), then scored once by
``services.forecast_resolve``: a conditional update, so two processes never resolve one twice.
"""

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from debates import selectors, services
from debates.engine.market import MarketDataError, PriceNotYetKnown, provider_for_source
from debates.models import Forecast

logger = logging.getLogger(__name__)

CONCURRENT_PRICES = 8  # price requests in flight at once in one pass


@dataclass
class Resolution:
    """What one pass did: forecasts resolved, not priced yet, and failed (retried next pass)."""

    resolved: list = field(default_factory=list)
    not_yet: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)


async def price_at_due(forecast: Forecast) -> float:
    """The forecast asset's price at its due time, from the provider that priced the verdict."""
    provider = provider_for_source(forecast.source, settings.MARKET_DATA_URL)
    return await provider.price_at(forecast.asset, forecast.due_at, series_end=forecast.series_end)


async def resolve_due(*, now: datetime | None = None, limit: int | None = None) -> Resolution:
    """Resolve up to ``limit`` forecasts due by ``now`` (default: all of them, now), a few at
    a time: a slow or unreachable market API holds up only its own forecasts."""
    now = now or timezone.now()
    band = float(settings.VERDICT_HOLD_BAND_PCT)

    def due() -> list[Forecast]:
        qs = selectors.forecasts_due(now=now)
        return list(qs[:limit] if limit else qs)

    done = Resolution()
    slots = asyncio.Semaphore(CONCURRENT_PRICES)

    async def resolve(forecast: Forecast) -> None:
        async with slots:
            try:
                exit_price = await price_at_due(forecast)
            except PriceNotYetKnown:
                done.not_yet.append(forecast.pk)
                return
            except MarketDataError as exc:
                logger.warning("could not price forecast %s: %s", forecast.pk, exc)
                done.failed[forecast.pk] = str(exc)
                return
        if not (math.isfinite(exit_price) and exit_price > 0 and forecast.price > 0):
            done.failed[forecast.pk] = f"unusable prices {forecast.price} -> {exit_price}"
            return
        if await sync_to_async(services.forecast_resolve)(
            forecast=forecast, exit_price=exit_price, band_pct=band, now=now
        ):
            done.resolved.append(forecast.pk)

    await asyncio.gather(*(resolve(f) for f in await sync_to_async(due)()))
    return done
