"""Typed readers for settings that come from the environment."""

import json
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    """Return the variable as a stripped string, or the default when unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    """Return the variable as a boolean; refuse values that are not clearly yes or no."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    """Return the variable as an int, or the default when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    """Return the variable as a float, or the default when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated variable as a list of non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_prices(name: str) -> dict[str, dict[str, float]]:
    """Return a JSON price table {model: {"prompt": usd, "completion": usd}} (per million
    tokens, neither negative), or {} when unset; refuse anything else."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    shape = f'{name} must be JSON {{"model": {{"prompt": usd, "completion": usd}}}} per 1M tokens'
    try:
        table = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{shape}; it is not JSON.") from None
    if not isinstance(table, dict):
        raise ImproperlyConfigured(shape)
    prices = {}
    for model, entry in table.items():
        values = [entry.get(k) for k in ("prompt", "completion")] if isinstance(entry, dict) else []
        if len(values) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
        ):
            raise ImproperlyConfigured(f"{shape}; {model!r} is not.")
        prices[str(model)] = {"prompt": values[0], "completion": values[1]}
    return prices
