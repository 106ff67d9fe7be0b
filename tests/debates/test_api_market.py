"""The API's read-only `market` field: null before the run, a stable camelCase subset after."""

import asyncio

import pytest

from debates.engine.market import SampleMarketData
from debates.models import Debate

pytestmark = pytest.mark.django_db

MARKET_KEYS = {
    "asset",
    "name",
    "source",
    "isSample",
    "asOf",
    "lastPrice",
    "change24hPct",
    "change7dPct",
    "volatility24hPct",
    "rsi14",
    "sma20",
    "sma50",
    "priceVsSma20Pct",
    "priceVsSma50Pct",
    "volumeChange24hPct",
    "recentCloses",
}


def test_market_is_null_until_the_run_stores_a_snapshot(auth_client, user):
    debate = Debate.objects.create(asset="BTC", created_by=user)
    body = auth_client.get(f"/api/debates/{debate.id}/").json()
    assert body["market"] is None
    listed = auth_client.get("/api/debates/").json()["results"][0]
    assert listed["market"] is None


def test_market_shows_the_stored_snapshot_in_camel_case(auth_client, user):
    snapshot = asyncio.run(SampleMarketData().snapshot("ETH"))
    stored = snapshot.to_dict()
    debate = Debate.objects.create(
        asset="ETH", created_by=user, status="running", market_context=stored
    )
    market = auth_client.get(f"/api/debates/{debate.id}/").json()["market"]
    assert set(market) == MARKET_KEYS
    assert market["isSample"] is True
    assert market["source"] == stored["source"]
    assert market["lastPrice"] == stored["last_price"]
    assert market["change24hPct"] == stored["change_24h_pct"]
    assert market["change7dPct"] == stored["change_7d_pct"]
    assert market["rsi14"] == stored["rsi_14"]
    assert market["priceVsSma50Pct"] == stored["price_vs_sma_50_pct"]
    assert market["volumeChange24hPct"] == stored["volume_change_24h_pct"]
    assert market["recentCloses"] == [c["c"] for c in stored["recent_candles"]]


def test_market_keeps_its_shape_for_an_older_partial_snapshot(auth_client, user):
    debate = Debate.objects.create(
        asset="BTC",
        created_by=user,
        market_context={"asset": "BTC", "last_price": 100.5, "unknown_extra": {"x": 1}},
    )
    market = auth_client.get(f"/api/debates/{debate.id}/").json()["market"]
    assert set(market) == MARKET_KEYS
    assert market["lastPrice"] == 100.5
    assert market["rsi14"] is None
    assert market["isSample"] is None
    assert market["recentCloses"] == []


def test_market_is_read_only(auth_client):
    resp = auth_client.post(
        "/api/debates/", {"asset": "BTC", "market": {"lastPrice": 1}}, format="json"
    )
    assert resp.status_code == 201
    assert resp.json()["market"] is None
    assert Debate.objects.get(pk=resp.json()["id"]).market_context is None


def test_schema_documents_the_market_field(api_client, staff_user):
    api_client.force_login(staff_user)  # the schema is for staff unless API_DOCS_PUBLIC
    schema = api_client.get("/api/schema/?format=json").json()
    market = schema["components"]["schemas"]["Market"]
    assert "lastPrice" in market["properties"]
    assert "recentCloses" in market["properties"]
