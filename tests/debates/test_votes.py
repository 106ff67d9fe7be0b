"""Audience votes: the phases, one vote per user per phase, the swing, and the vote API."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

from debates import selectors, services
from debates.models import Argument, Debate, Vote
from streaming import tallies

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_tally_timers():
    tallies.reset()
    yield
    tallies.reset()


def _users(n: int, prefix: str = "voter") -> list:
    model = get_user_model()
    # No password: hashing one per voter would be most of the test's time.
    return model.objects.bulk_create([model(username=f"{prefix}{i}") for i in range(n)])


def _completed(asset="BTC", finished_ago_s: float = 1.0) -> Debate:
    return Debate.objects.create(
        asset=asset,
        status="completed",
        verdict_recommendation="buy",
        verdict_confidence=0.7,
        verdict_rationale="Momentum.",
        finished_at=timezone.now() - timedelta(seconds=finished_ago_s),
    )


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


# --- phases -----------------------------------------------------------------------------------


def test_before_phase_is_open_while_pending_and_until_the_first_argument():
    debate = Debate.objects.create(asset="BTC")
    assert selectors.vote_open_phase(debate=debate) == "before"
    Debate.objects.filter(pk=debate.pk).update(status="running")
    debate.refresh_from_db()
    assert selectors.vote_open_phase(debate=debate) == "before"
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Up.")
    assert selectors.vote_open_phase(debate=debate) is None


@override_settings(VOTE_AFTER_WINDOW_S=60)
def test_after_phase_is_open_from_the_verdict_until_the_window_ends():
    assert selectors.vote_open_phase(debate=_completed(finished_ago_s=59)) == "after"
    assert selectors.vote_open_phase(debate=_completed(finished_ago_s=61)) is None
    no_verdict = Debate.objects.create(asset="BTC", status="cancelled", finished_at=timezone.now())
    assert selectors.vote_open_phase(debate=no_verdict) is None


@override_settings(VOTE_AFTER_WINDOW_S=0)
def test_a_zero_window_never_closes_the_after_phase():
    assert selectors.vote_open_phase(debate=_completed(finished_ago_s=10**6)) == "after"


# --- services ---------------------------------------------------------------------------------


def test_one_vote_per_user_per_phase_changeable_and_spam_counts_once(user):
    debate = Debate.objects.create(asset="BTC")
    vote, changed = services.vote_cast(debate=debate, user=user, side="bull")
    assert (vote.phase, vote.side, changed) == ("before", "bull", True)
    for _ in range(5):
        _vote, changed = services.vote_cast(debate=debate, user=user, side="bull")
        assert changed is False
    vote, changed = services.vote_cast(debate=debate, user=user, side="bear")
    assert (vote.side, vote.changes, changed) == ("bear", 1, True)
    assert Vote.objects.filter(debate=debate).count() == 1
    tallies_now = selectors.vote_tallies(debate_id=debate.pk)
    assert tallies_now.of("before") == {"bull": 0, "bear": 1}
    assert tallies_now.version == 2  # one row written, changed once


def test_the_database_refuses_a_second_vote_in_one_phase(user):
    debate = Debate.objects.create(asset="BTC")
    Vote.objects.create(debate=debate, user=user, phase="before", side="bull")
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(debate=debate, user=user, phase="before", side="bear")


def test_a_user_votes_again_after_the_verdict(user):
    debate = Debate.objects.create(asset="BTC")
    services.vote_cast(debate=debate, user=user, side="bull")
    Debate.objects.filter(pk=debate.pk).update(
        status="completed", verdict_recommendation="sell", finished_at=timezone.now()
    )
    vote, _ = services.vote_cast(debate=debate, user=user, side="bear")
    assert vote.phase == "after"
    assert sorted(Vote.objects.values_list("phase", "side")) == [
        ("after", "bear"),
        ("before", "bull"),
    ]


def test_closed_phase_refuses_and_writes_nothing(user):
    debate = Debate.objects.create(asset="BTC", status="running")
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Up.")
    with pytest.raises(services.VotingClosed):
        services.vote_cast(debate=debate, user=user, side="bull")
    assert not Vote.objects.exists()


def test_swing_is_after_share_minus_before_share():
    debate = Debate.objects.create(asset="BTC")
    voters = _users(4)
    # Before: 3 bull, 1 bear (75 % / 25 %).
    for voter, side in zip(voters, ["bull", "bull", "bull", "bear"], strict=True):
        services.vote_cast(debate=debate, user=voter, side=side)
    Debate.objects.filter(pk=debate.pk).update(
        status="completed", verdict_recommendation="hold", finished_at=timezone.now()
    )
    # After: 1 bull, 2 bear (33.3 % / 66.7 %).
    for voter, side in zip(voters[:3], ["bull", "bear", "bear"], strict=True):
        services.vote_cast(debate=debate, user=voter, side=side)
    result = selectors.vote_swing(selectors.vote_tallies(debate_id=debate.pk))
    assert result["before"] == {"bull": 3, "bear": 1}
    assert result["after"] == {"bull": 1, "bear": 2}
    # bull: 1/3 - 3/4 = -41.7 points; bear: 2/3 - 1/4 = +41.7 points.
    assert result["swing"] == {"bull": -41.7, "bear": 41.7}
    assert result["moved_to"] == "bear"


def test_no_swing_until_both_phases_have_votes_and_none_when_nobody_moved():
    debate = Debate.objects.create(asset="BTC")
    voters = _users(2)
    services.vote_cast(debate=debate, user=voters[0], side="bull")
    assert selectors.vote_swing(selectors.vote_tallies(debate_id=debate.pk))["swing"] is None
    Debate.objects.filter(pk=debate.pk).update(
        status="completed", verdict_recommendation="buy", finished_at=timezone.now()
    )
    services.vote_cast(debate=debate, user=voters[1], side="bull")
    result = selectors.vote_swing(selectors.vote_tallies(debate_id=debate.pk))
    assert result["swing"] == {"bull": 0.0, "bear": 0.0}
    assert result["moved_to"] is None


def test_tallies_of_many_debates_match_each_debates_own():
    first, second = Debate.objects.create(asset="BTC"), Debate.objects.create(asset="ETH")
    voters = _users(3)
    services.vote_cast(debate=first, user=voters[0], side="bull")
    services.vote_cast(debate=first, user=voters[1], side="bear")
    services.vote_cast(debate=first, user=voters[1], side="bull")
    services.vote_cast(debate=second, user=voters[2], side="bear")
    many = selectors.vote_tallies_many(debate_ids=[first.pk, second.pk])
    for debate in (first, second):
        one = selectors.vote_tallies(debate_id=debate.pk)
        for phase in ("before", "after"):
            assert many[debate.pk].of(phase) == one.of(phase)
        assert many[debate.pk].version == one.version
    assert many[first.pk].version == 3


# --- API --------------------------------------------------------------------------------------


def test_vote_api_answers_the_phase_and_the_tallies(user):
    debate = Debate.objects.create(asset="BTC")
    resp = _client(user).post(f"/api/debates/{debate.pk}/vote/", {"side": "bull"}, format="json")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["phase"], body["side"], body["changed"]) == ("before", "bull", True)
    assert body["votes"]["before"] == {"bull": 1, "bear": 0}
    assert body["votes"]["mine"] == {"before": "bull", "after": None}
    assert body["votes"]["open"] == "before"
    again = _client(user).post(f"/api/debates/{debate.pk}/vote/", {"side": "bull"}, format="json")
    assert again.json()["changed"] is False
    assert again.json()["votes"]["before"] == {"bull": 1, "bear": 0}


def test_anonymous_votes_are_refused(api_client):
    debate = Debate.objects.create(asset="BTC")
    resp = api_client.post(f"/api/debates/{debate.pk}/vote/", {"side": "bull"}, format="json")
    assert resp.status_code == 401  # the API's contract for a missing token (DESIGN §3)
    assert not Vote.objects.exists()


@pytest.mark.parametrize("body", [{"side": "buy"}, {"side": ""}, {}, {"side": 1}, {"side": None}])
def test_a_bad_side_is_400_with_a_field_error(user, body):
    debate = Debate.objects.create(asset="BTC")
    resp = _client(user).post(f"/api/debates/{debate.pk}/vote/", body, format="json")
    assert resp.status_code == 400
    assert "side" in resp.json()
    assert not Vote.objects.exists()


def test_a_closed_phase_is_409_and_an_unknown_debate_404(user):
    debate = Debate.objects.create(asset="BTC", status="cancelled", finished_at=timezone.now())
    resp = _client(user).post(f"/api/debates/{debate.pk}/vote/", {"side": "bear"}, format="json")
    assert resp.status_code == 409
    assert "closed" in resp.json()["detail"]
    missing = _client(user).post("/api/debates/not-an-id/vote/", {"side": "bear"}, format="json")
    assert missing.status_code == 404


def test_votes_are_rate_limited_per_user(user, other_user, monkeypatch):
    # DRF reads its rates once, at import: the class attribute is the setting's value.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"votes": "3/minute"})
    debate = Debate.objects.create(asset="BTC")
    codes = [
        _client(user)
        .post(f"/api/debates/{debate.pk}/vote/", {"side": side}, format="json")
        .status_code
        for side in ["bull", "bear", "bull", "bear"]
    ]
    assert codes == [200, 200, 200, 429]
    other = _client(other_user).post(
        f"/api/debates/{debate.pk}/vote/", {"side": "bear"}, format="json"
    )
    assert other.status_code == 200
    assert selectors.vote_tallies(debate_id=debate.pk).of("before") == {"bull": 1, "bear": 1}


def test_debate_detail_and_list_show_the_votes_and_swing(user):
    debate = _completed()
    Vote.objects.create(debate=debate, user=user, phase="before", side="bull")
    Vote.objects.create(debate=debate, user=user, phase="after", side="bear")
    client = _client(user)
    detail = client.get(f"/api/debates/{debate.pk}/").json()["votes"]
    assert detail["swing"] == {"bull": -100.0, "bear": 100.0}
    assert detail["movedTo"] == "bear"
    assert detail["open"] == "after"
    assert detail["mine"] == {"before": "bull", "after": "bear"}
    listed = client.get("/api/debates/").json()["results"][0]["votes"]
    assert listed == detail


# --- admin ------------------------------------------------------------------------------------


def test_admin_lists_votes_read_only_and_summarises_them_on_the_debate(client, staff_user, user):
    debate = _completed()
    Vote.objects.create(debate=debate, user=user, phase="before", side="bear")
    Vote.objects.create(debate=debate, user=staff_user, phase="before", side="bear")
    Vote.objects.create(debate=debate, user=user, phase="after", side="bull")
    client.force_login(staff_user)
    listing = client.get("/admin/debates/vote/?phase__exact=after")
    assert listing.status_code == 200
    assert listing.content.decode().count('<td class="field-side">Bull</td>') == 1
    assert client.get("/admin/debates/vote/add/").status_code == 403
    page = client.get(f"/admin/debates/debate/{debate.pk}/change/").content.decode()
    assert "before: bull 0, bear 2; after: bull 1, bear 0" in page
    assert "swing bull +100.0 pts, moved to bull" in page
