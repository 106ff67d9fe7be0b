"""GET /api/track-record/ and the per-debate verdict horizon over REST."""

import pytest
from django.test import override_settings

from debates.models import Debate
from tests.debates.forecasts import forecast, resolved

pytestmark = pytest.mark.django_db


def test_a_debate_takes_a_verdict_horizon_or_the_default(auth_client):
    with override_settings(VERDICT_HORIZON_S=7200):
        default = auth_client.post("/api/debates/", {"asset": "BTC"}, format="json")
    assert default.status_code == 201
    assert default.json()["verdictHorizonS"] == 7200
    chosen = auth_client.post(
        "/api/debates/", {"asset": "BTC", "verdictHorizonS": 3600}, format="json"
    )
    assert chosen.status_code == 201
    assert Debate.objects.get(pk=chosen.json()["id"]).verdict_horizon_s == 3600


@pytest.mark.parametrize("bad", [59, 0, -5, 366 * 86400 + 1, "soon", 1.5, None])
def test_a_bad_verdict_horizon_is_a_400_with_its_field(auth_client, bad):
    resp = auth_client.post(
        "/api/debates/", {"asset": "BTC", "verdictHorizonS": bad}, format="json"
    )
    assert resp.status_code == 400
    assert "verdictHorizonS" in resp.json()
    assert not Debate.objects.exists()


def test_the_track_record_over_rest(auth_client):
    resolved(103.0, recommendation="buy", confidence=0.8)  # +3 %: hit, Brier 0.04
    resolved(101.0, recommendation="sell", confidence=0.6, model="m2")  # +1 %: miss, 0.36
    resolved(100.0, recommendation="hold", confidence=0.0, parsed=False)
    with override_settings(VERDICT_HOLD_BAND_PCT=1.0, VERDICT_HORIZON_S=86400):
        resp = auth_client.get("/api/track-record/")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {
        "sampleData",
        "holdBandPct",
        "defaultHorizonS",
        "overall",
        "byModel",
        "byAsset",
    }
    assert (body["sampleData"], body["holdBandPct"], body["defaultHorizonS"]) == (True, 1.0, 86400)
    overall = body["overall"]
    assert (overall["total"], overall["resolved"], overall["hits"], overall["unparsed"]) == (
        3,
        2,
        1,
        1,
    )
    assert overall["hitRate"] == 0.5
    assert overall["meanBrier"] == pytest.approx(0.2)
    assert [b["count"] for b in overall["calibration"]] == [0, 0, 0, 0, 0, 0, 1, 0, 1, 0]
    assert set(overall["calibration"][8]) == {
        "bin",
        "lower",
        "upper",
        "count",
        "hits",
        "hitRate",
        "meanConfidence",
    }
    assert [row["model"] for row in body["byModel"]] == ["m1", "m2"]
    filtered = auth_client.get("/api/track-record/", {"model": "m2", "asset": "btc"}).json()
    assert (filtered["overall"]["total"], filtered["overall"]["hits"]) == (1, 0)


def test_the_track_record_with_nothing_yet_and_with_real_data_only(auth_client):
    body = auth_client.get("/api/track-record/").json()
    assert body["sampleData"] is False
    assert (body["overall"]["total"], body["overall"]["hitRate"], body["byModel"]) == (0, None, [])
    forecast(source="binance:BTCUSDT")
    assert auth_client.get("/api/track-record/").json()["sampleData"] is False


def test_the_track_record_needs_a_sign_in_and_bounded_filters(api_client, auth_client):
    assert api_client.get("/api/track-record/").status_code == 401
    resp = auth_client.get("/api/track-record/", {"model": "m" * 101})
    assert resp.status_code == 400
    assert "model" in resp.json()


def test_a_debate_carries_its_tracked_verdict(auth_client, django_assert_max_num_queries):
    made = resolved(101.5, recommendation="hold", confidence=0.7, price=100.0)
    body = auth_client.get(f"/api/debates/{made.pk}/").json()
    assert body["forecast"]["price"] == 100.0
    assert body["forecast"]["exitPrice"] == 101.5
    assert body["forecast"]["returnPct"] == pytest.approx(1.5)
    assert (body["forecast"]["hit"], body["forecast"]["isSample"]) == (False, True)
    assert body["forecast"]["brier"] == pytest.approx(0.49)
    Debate.objects.create(asset="ETH")  # no verdict yet
    # user, count, debates (and their forecasts, one join), arguments, questions, and the
    # votes' tallies and the user's own votes (each one query for the whole page)
    with django_assert_max_num_queries(7):
        listed = auth_client.get("/api/debates/").json()["results"]
    assert [d["forecast"] is None for d in listed] == [True, False]
