"""What can end a run, and the short, stack-free error a failed debate shows."""

import json
import sys

import httpx

from debates.engine.market import MarketDataError
from debates.engine.nodes import IncompleteResponseError

MAX_ERROR_CHARS = 300


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
    return None


def describe_error(exc: BaseException) -> str:
    """A short, stack-free description of why a debate failed."""
    known = known_failure(exc)
    if known is not None:
        return known[:MAX_ERROR_CHARS]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_CHARS]
