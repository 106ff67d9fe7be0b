"""Forecasts for the track record tests: due (or not), priced on sample or Binance data."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from debates import services
from debates.models import Debate, DebateStatus, Forecast

SERIES_END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def forecast(
    *,
    recommendation="buy",
    confidence=0.8,
    parsed=True,
    price=100.0,
    model="m1",
    asset="BTC",
    due_in=timedelta(hours=-1),
    source="sample",
) -> Forecast:
    """A completed debate's forecast, made a day ago, due ``due_in`` from now."""
    debate = Debate.objects.create(asset=asset, status=DebateStatus.COMPLETED)
    now = timezone.now()
    return Forecast.objects.create(
        debate=debate,
        asset=asset,
        model=model,
        recommendation=recommendation,
        confidence=confidence,
        parsed=parsed,
        made_at=now - timedelta(days=1),
        horizon_s=86400,
        due_at=now + due_in,
        price=price,
        priced_at=now - timedelta(days=1),
        source=source,
        is_sample=source == "sample",
        series_end=SERIES_END if source == "sample" else None,
    )


def resolved(exit_price, **kwargs) -> Forecast:
    """A forecast resolved at ``exit_price`` with a 1 % band."""
    made = forecast(**kwargs)
    assert services.forecast_resolve(forecast=made, exit_price=exit_price, band_pct=1.0)
    return made
