"""Fixtures shared by the runner tests: fast, offline settings and claimed debates."""

import pytest
from django.test import override_settings

from debates import services
from debates.models import Debate
from tests.stubs.events import BIG_LAYER


@pytest.fixture
def fast_settings():
    """The offline model at full speed, no coalescing, and a channel layer that never drops."""
    with override_settings(
        OFFLINE_LLM_TOKENS_PER_S=0,
        TOKEN_FLUSH_INTERVAL_MS=0,
        DEBATE_LLM="offline",
        MARKET_DATA_PROVIDER="sample",
        CHANNEL_LAYERS=BIG_LAYER,
    ):
        yield


@pytest.fixture
def claimed(user):
    """Create and claim a debate (without launching it); returns a factory."""

    def make(asset="BTC", max_turns=2, runner_id="r1") -> Debate:
        debate = services.debate_create(asset=asset, max_turns=max_turns, created_by=user)
        return services.debate_claim(debate=debate, runner_id=runner_id)

    return make
