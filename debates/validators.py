"""Validation of user-supplied debate fields, shared by the API, the admin and commands."""

import re

from django.core.exceptions import ValidationError

ASSET_PATTERN = re.compile(r"^[A-Z0-9./-]{1,15}$")
ASSET_HELP = (
    "An upper-case ticker: 1-15 letters, digits, '.', '-' or '/' (e.g. BTC, AAPL, BTC/USD)."
)


def normalise_asset(raw: str) -> str:
    """Return the asset as an upper-case ticker, or raise ValidationError."""
    if not isinstance(raw, str):
        raise ValidationError("Asset must be a string.", code="invalid")
    asset = raw.strip().upper()
    if not ASSET_PATTERN.fullmatch(asset):
        raise ValidationError(ASSET_HELP, code="invalid")
    return asset
