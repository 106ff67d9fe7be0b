"""debate_create and the selectors."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from debates import selectors, services
from debates.models import Argument, Debate
from debates.validators import normalise_asset
from streaming import presence
from streaming import selectors as streaming_selectors
from streaming.models import Viewer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("btc", "BTC"),
        (" aapl ", "AAPL"),
        ("btc/usd", "BTC/USD"),
        ("brk.b", "BRK.B"),
        ("x-1", "X-1"),
    ],
)
def test_normalise_asset_accepts_tickers(raw, expected):
    assert normalise_asset(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "BTC USD", "<script>", "A" * 16, "bitcoin!", "Ω", "BTC;DROP", 42, None]
)
def test_normalise_asset_rejects_everything_else(raw):
    with pytest.raises(ValidationError):
        normalise_asset(raw)


@pytest.mark.django_db
def test_debate_create_normalises_and_saves(user):
    debate = services.debate_create(asset="eth", max_turns=4, created_by=user)
    debate.refresh_from_db()
    assert (debate.asset, debate.max_turns, debate.status, debate.created_by) == (
        "ETH",
        4,
        "pending",
        user,
    )


@pytest.mark.django_db
def test_debate_create_refuses_bad_turns(user):
    with pytest.raises(ValidationError):
        services.debate_create(asset="BTC", max_turns=0, created_by=user)
    assert not Debate.objects.exists()


@pytest.mark.django_db
def test_debate_list_filters_and_live_viewers_are_the_open_rows():
    btc = Debate.objects.create(asset="BTC", status="running")
    eth = Debate.objects.create(asset="ETH")
    Viewer.objects.create(debate=btc)
    Viewer.objects.create(debate=btc)
    Viewer.objects.create(debate=btc, disconnected_at=timezone.now())
    Argument.objects.create(debate=btc, turn=2, agent="bear", content="2")
    Argument.objects.create(debate=btc, turn=1, agent="bull", content="1")

    assert [d.asset for d in selectors.debate_list()] == ["ETH", "BTC"]
    assert [d.asset for d in selectors.debate_list(status="running")] == ["BTC"]
    assert [d.asset for d in selectors.debate_list(asset="eth")] == ["ETH"]
    assert [a.turn for a in selectors.debate_arguments(debate_id=btc.id)] == [1, 2]
    assert streaming_selectors.live_viewers(debate_id=btc.id).count() == 2
    assert streaming_selectors.live_viewers(debate_id=eth.id).count() == 0
    presence.joined(str(btc.id))
    assert presence.audience_counts([btc.id, eth.id]) == {btc.id: 1, eth.id: 0}
