"""What can end a run, and the short, stack-free error a failed debate shows."""

import json
import re
import sys

import httpx
import redis
from django.db import DatabaseError

from debates.engine.market import MarketDataError
from debates.engine.nodes import IncompleteResponseError
from tradeapp.retry import ServiceUnavailable, service_of

MAX_ERROR_CHARS = 300
# Host:port, IP addresses and URLs never reach a debate's error (it is shown to users).
_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-f:]+\](?::\d+)?"
    r"|\b[a-z][\w.-]*:\d{2,5}\b",
    re.IGNORECASE,
)


class StopRun(Exception):
    """The run must stop because its row is no longer `running` under this runner."""


class RunawayOutputError(RuntimeError):
    """The model kept writing past the longest argument a turn may have."""


class UnfinishedGraphError(RuntimeError):
    """The debate graph stopped streaming before the moderator's verdict was saved."""


def known_failure(exc: BaseException) -> str | None:
    """A short description of an expected outside failure (LLM, market data), else None."""
    # openai is loaded only once a debate used the OpenAI client (debates.engine.llm): if it is
    # not, no exception can be one of its own.
    openai = sys.modules.get("openai")
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            return "LLM request timed out."
        if isinstance(exc, openai.APIStatusError):
            return f"LLM endpoint returned HTTP {exc.status_code}."
        if isinstance(exc, openai.APIConnectionError):
            return "LLM connection failed or was closed mid-stream."
    if isinstance(exc, httpx.TimeoutException):
        return "LLM request timed out."
    if isinstance(exc, httpx.TransportError):
        return f"LLM connection failed or was closed mid-stream ({type(exc).__name__})."
    if isinstance(exc, json.JSONDecodeError):
        return "LLM sent a malformed stream chunk (invalid JSON)."
    if isinstance(exc, IncompleteResponseError):
        return f"LLM answer incomplete: {exc}"
    if isinstance(exc, MarketDataError):
        return f"Market data unavailable: {exc}"
    if isinstance(exc, RunawayOutputError):
        return f"LLM answer too long: {exc}"
    if isinstance(exc, ServiceUnavailable):
        return str(exc)
    service = service_of(exc)
    if service is not None:
        return f"The {service} failed ({type(exc).__name__})."
    if isinstance(exc, redis.RedisError):
        return f"The event service (Redis) failed ({type(exc).__name__})."
    if isinstance(exc, DatabaseError):
        return f"The database failed ({type(exc).__name__})."
    return None


def describe_error(exc: BaseException) -> str:
    """A short, stack-free description of why a debate failed."""
    known = known_failure(exc)
    if known is not None:
        return known[:MAX_ERROR_CHARS]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return scrub(f"{type(exc).__name__}: {text}")[:MAX_ERROR_CHARS]


def scrub(text: str) -> str:
    """The text without network addresses (hosts with ports, IPs, URLs)."""
    return _ADDRESS.sub("<address>", text)


# Longest Retry-After honoured between two attempts at a turn.
MAX_RETRY_AFTER_S = 30.0


def retryable_llm_failure(exc: BaseException) -> bool:
    """Whether a turn that failed with `exc` may be tried again: the model's connection, a
    timeout, a malformed or incomplete stream, 429 or a 5xx (not bad input or a runaway)."""
    openai = sys.modules.get("openai")
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code == 429 or exc.status_code >= 500
        if isinstance(exc, openai.APIConnectionError):  # timeouts included
            return True
    transient = httpx.TimeoutException | httpx.TransportError | json.JSONDecodeError
    return isinstance(exc, transient | IncompleteResponseError)


def retry_after_s(exc: BaseException) -> float:
    """The Retry-After (seconds) of a failed model response, 0 when it has none."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return min(max(float(headers.get("retry-after", 0)), 0.0), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return 0.0
